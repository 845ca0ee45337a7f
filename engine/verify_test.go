package engine_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
)

const verified = `playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    steps: [{name: s, action: record}]
    verify: {resolved_within: 15m}
    on_failure: [{name: page, action: record}]
`

// steps returns the names of the steps f's recorder was called for, in order.
func (f *fixture) steps() []string {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	var out []string
	for _, c := range f.rec.calls {
		out = append(out, c.Step)
	}
	return out
}

// TestVerifyUnhealedRunsOnFailure: the steps succeed; an episode that
// resolves within verify.resolved_within ends succeeded (verified), one
// that does not ends unhealed, runs on_failure, and counts for the breaker.
func TestVerifyUnhealedRunsOnFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, t.TempDir(), verified, engine.Options{})
		a := episodesOf("w1", 2, time.Now())
		f.put(t, a)
		synctest.Wait()
		for _, x := range a {
			rec, _, err := f.log.Get(ha.RunID("clean", x.Episode()))
			require.NoError(t, err)
			require.Equal(t, ha.Verifying, rec.State)
			require.True(t, time.Now().Add(15*time.Minute).Equal(rec.VerifyBy), rec.VerifyBy)
		}
		time.Sleep(10 * time.Minute)
		f.put(t, []alert.Alert{resolvedOf(a[0], time.Now())})
		synctest.Wait()
		healed, _, err := f.log.Get(ha.RunID("clean", a[0].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Succeeded, healed.State)
		require.Contains(t, healed.Reason, "verified")

		time.Sleep(5*time.Minute - time.Second)
		synctest.Wait()
		rec, _, err := f.log.Get(ha.RunID("clean", a[1].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Verifying, rec.State, "a second before its deadline")
		time.Sleep(time.Second)
		synctest.Wait()
		f.settle(t)
		rec, _, err = f.log.Get(ha.RunID("clean", a[1].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Unhealed, rec.State)
		require.Contains(t, rec.Reason, "did not resolve by")
		require.Len(t, rec.Steps, 2)
		require.Equal(t, "page", rec.Steps[1].Name)
		require.Equal(t, "on_failure", rec.Steps[1].Phase)
		require.Equal(t, ha.Succeeded, rec.Steps[1].State)
		require.Equal(t, []string{"s", "s", "page"}, f.steps(), "on_failure ran for the unhealed run only")
		_, failed, err := f.log.Outcomes(time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, failed, "the breaker counts the unhealed run")
	})
}

// TestVerifySurvivesARestart: a run waiting for its verification is held
// again after a restart; it is not run again.
func TestVerifySurvivesARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		f := newFixture(t, dir, verified, engine.Options{})
		a := episodesOf("w1", 1, time.Now())
		f.put(t, a)
		synctest.Wait()
		f.stop()
		time.Sleep(10 * time.Minute)
		f = newFixture(t, dir, verified, engine.Options{})
		synctest.Wait()
		require.Zero(t, f.rec.count(), "the steps are not run again")
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		f.settle(t)
		rec, _, err := f.log.Get(ha.RunID("clean", a[0].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Unhealed, rec.State)
		require.Equal(t, []string{"page"}, f.steps())
	})
}

// TestOnFailureAndContinueOnError: a failed step ends the run failed and
// runs on_failure; a continue_on_error step's failure is recorded and the
// run goes on to succeed.
func TestOnFailureAndContinueOnError(t *testing.T) {
	const pbs = `playbooks:
  - name: p
    match: ['alertname="DiskFull"']
    steps:
      - {name: a, action: record, continue_on_error: true}
      - {name: b, action: record}
    on_failure: [{name: page, action: record}]
`
	for _, c := range []struct {
		name    string
		failing int // the call that fails
		state   ha.State
		calls   []string
	}{
		{"continue_on_error", 0, ha.Succeeded, []string{"a", "b"}},
		{"step fails", 1, ha.Failed, []string{"a", "b", "page"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, t.TempDir(), pbs, engine.Options{})
			f.rec.fail = func(n int) error {
				if n == c.failing {
					return errors.New("boom")
				}
				return nil
			}
			a := episodesOf("w1", 1, time.Now())
			f.put(t, a)
			f.settle(t)
			rec, _, err := f.log.Get(ha.RunID("p", a[0].Episode()))
			require.NoError(t, err)
			require.Equal(t, c.state, rec.State, rec.Reason)
			require.Equal(t, c.calls, f.steps())
			require.Equal(t, ha.Failed, rec.Steps[c.failing].State)
		})
	}
}
