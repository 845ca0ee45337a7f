package engine_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
)

const repeating = `playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    repeat_after: 10m
    limits: {max_runs: 3, per: 1h}
    steps: [{name: s, action: record}]
`

// runsOf returns the state and skip reason of each record of ep's runs of
// playbook, by id.
func (f *fixture) runsOf(t *testing.T, playbook string, ep alert.Episode) map[string]string {
	t.Helper()
	recs, err := f.log.List(0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, r := range recs {
		if r.Playbook == playbook && r.Episode == ep {
			out[r.ID] = string(r.State) + " " + r.SkipReason
		}
	}
	return out
}

// TestRepeatAfterRunsAgainWhileFiring: repeat_after runs the playbook again
// at its interval while the episode fires; each repeat is its own run,
// decided against the limits like any other; a resolve stops the repeats.
// Deliveries of the same episode (Alertmanager's repeat_interval) add
// nothing.
func TestRepeatAfterRunsAgainWhileFiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, t.TempDir(), repeating, engine.Options{})
		a := episodesOf("w1", 1, time.Now())
		ep := a[0].Episode()
		f.put(t, a)
		synctest.Wait()
		require.Equal(t, 1, f.rec.count())
		rec, _, err := f.log.Get(ha.RunID("clean", ep))
		require.NoError(t, err)
		require.Equal(t, ha.Succeeded, rec.State)
		require.True(t, time.Now().Add(10*time.Minute).Equal(rec.RepeatAt), rec.RepeatAt)
		require.Equal(t, 1.0, f.gauge("selfheal_engine_runs_waiting"), "the repeat waits")

		time.Sleep(10*time.Minute - time.Second)
		f.put(t, a) // Alertmanager sends the episode again
		synctest.Wait()
		require.Equal(t, 1, f.rec.count(), "a second before the repeat is due, and a re-delivery, start nothing")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 2, f.rec.count(), "the first repeat ran at 10m")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		require.Equal(t, 3, f.rec.count(), "the second repeat ran at 20m")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		require.Equal(t, 3, f.rec.count(), "the third repeat is over max_runs")

		time.Sleep(5 * time.Minute)
		f.put(t, []alert.Alert{resolvedOf(a[0], time.Now())})
		synctest.Wait()
		time.Sleep(time.Hour)
		synctest.Wait()
		f.settle(t)
		require.Equal(t, 3, f.rec.count(), "nothing repeats after the resolve")
		require.Equal(t, 0.0, f.gauge("selfheal_engine_runs_waiting"))
		require.Equal(t, map[string]string{
			ha.RunID("clean", ep):       "succeeded ",
			ha.RepeatID("clean", ep, 1): "succeeded ",
			ha.RepeatID("clean", ep, 2): "succeeded ",
			ha.RepeatID("clean", ep, 3): "skipped rate_limited",
		}, f.runsOf(t, "clean", ep))
		third, _, err := f.log.Get(ha.RepeatID("clean", ep, 3))
		require.NoError(t, err)
		require.Equal(t, 3, third.Repeat)
		require.Equal(t, 1.0, f.skippedMetric("clean", "rate_limited"))
	})
}

// TestRepeatSurvivesARestart: a repeat that is due while the daemon is
// down runs once it is back, once; the next one keeps its interval.
func TestRepeatSurvivesARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		f := newFixture(t, dir, repeating, engine.Options{})
		a := episodesOf("w1", 1, time.Now())
		ep := a[0].Episode()
		f.put(t, a)
		synctest.Wait()
		f.stop()
		require.Equal(t, 1, f.rec.count())

		time.Sleep(15 * time.Minute)
		f = newFixture(t, dir, repeating, engine.Options{})
		synctest.Wait()
		require.Equal(t, 1, f.rec.count(), "the overdue repeat ran at the start")
		second, _, err := f.log.Get(ha.RepeatID("clean", ep, 1))
		require.NoError(t, err)
		require.Equal(t, ha.Succeeded, second.State)
		require.True(t, time.Now().Add(10*time.Minute).Equal(second.RepeatAt), second.RepeatAt)
		f.stop()

		f = newFixture(t, dir, repeating, engine.Options{})
		synctest.Wait()
		require.Zero(t, f.rec.count(), "a restart before the next repeat is due runs nothing")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		require.Equal(t, 1, f.rec.count(), "the next repeat ran at its time")
		require.Len(t, f.runsOf(t, "clean", ep), 3)
	})
}
