package engine_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// TestBreakerOpensPausesEverythingAndResets: after 3 failed runs in 10m the
// breaker opens; a second playbook is paused too, its runs recorded skipped
// (breaker_open). The breaker stays open across a restart; once reset, runs
// resume, and the failures before the reset no longer count.
func TestBreakerOpensPausesEverythingAndResets(t *testing.T) {
	const pbs = `playbooks:
  - name: failing
    match: ['alertname="DiskFull"']
    steps: [{name: s, action: record}]
  - name: other
    match: ['alertname="Other"']
    steps: [{name: s, action: record}]
`
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	opts := engine.Options{Now: clock, Breaker: engine.Breaker{MaxFailures: 3, Window: 10 * time.Minute}}
	f := newFixture(t, dir, pbs, opts)
	f.rec.fail = func(int) error { return errors.New("exit status 1") }

	for i, a := range episodesOf("w1", 4, t0) {
		f.put(t, []alert.Alert{a})
		f.settle(t)
		advance(time.Minute)
		if i == 2 {
			// The breaker is checked once the failed run is recorded.
			require.Eventually(t, func() bool { return f.gauge("selfheal_engine_breaker_open") == 1 },
				10*time.Second, time.Millisecond, "open after the third failure")
		}
	}
	require.Equal(t, 3, f.rec.count(), "the fourth run is not started")
	require.Equal(t, map[string]int{"failed ": 3, "skipped breaker_open": 1}, f.byState(t, "failing"))
	other := episodesOf("x", 1, t0)
	other[0].Labels = map[string]string{"alertname": "Other"}
	other[0].Fingerprint = alert.Fingerprint(other[0].Labels)
	f.put(t, other)
	f.settle(t)
	require.Equal(t, map[string]int{"skipped breaker_open": 1}, f.byState(t, "other"), "every playbook is paused")
	require.Equal(t, 1.0, f.skippedMetric("other", "breaker_open"))
	st, err := f.eng.BreakerState()
	require.NoError(t, err)
	require.True(t, st.Open)
	require.Equal(t, "3 runs failed or unhealed in the last 10m (max_failures: 3)", st.Reason)
	f.stop()

	f = newFixture(t, dir, pbs, opts)
	require.Equal(t, 1.0, f.gauge("selfheal_engine_breaker_open"), "still open after a restart")
	require.NoError(t, f.eng.ResetBreaker())
	require.Equal(t, 0.0, f.gauge("selfheal_engine_breaker_open"))
	next := episodesOf("w2", 1, t0)
	f.put(t, next)
	f.settle(t)
	require.Equal(t, 1, f.rec.count(), "runs resume after the reset, though 3 failures are still in the window")
}

// TestBreakerOnOpenPages: when the breaker opens, its on_open steps run
// once, as a run of their own recorded under breaker.on_open, with why it
// opened in the alert they get; the paused runs do not start them again.
func TestBreakerOnOpenPages(t *testing.T) {
	const pbs = `playbooks:
  - name: failing
    match: ['alertname="DiskFull"']
    steps: [{name: s, action: record}]
`
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{fail: func(n int) error {
			if n < 2 {
				return errors.New("exit status 1")
			}
			return nil
		}}
		var node yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(`[{name: page, action: record, with: {note: '{{ .Annotations.description }}'}}]`), &node))
		steps, err := playbooks.ParseSteps(recording(t, rec), "selfheal.yml", "limits.breaker.on_open", node.Content[0])
		require.NoError(t, err)
		opts := engine.Options{Breaker: engine.Breaker{MaxFailures: 2, Window: 10 * time.Minute, OnOpen: steps}}
		f := newFixtureRec(t, t.TempDir(), pbs, opts, rec, nil)
		a := episodesOf("w1", 4, time.Now())
		f.put(t, a[:2])
		synctest.Wait()
		f.settle(t)
		f.put(t, a[2:])
		synctest.Wait()
		f.settle(t)
		require.Equal(t, map[string]int{"failed ": 2, "skipped breaker_open": 2}, f.byState(t, "failing"))
		require.Equal(t, map[string]int{"succeeded ": 1}, f.byState(t, engine.BreakerOnOpen), "on_open ran once")
		require.Equal(t, []string{"s", "s", "page"}, f.steps())
		recs, err := f.log.List(0)
		require.NoError(t, err)
		i := slices.IndexFunc(recs, func(r ha.Record) bool { return r.Playbook == engine.BreakerOnOpen })
		require.Equal(t, "SelfhealCircuitBreakerOpen", recs[i].Alert.Name())
		require.Equal(t, "2 runs failed or unhealed in the last 10m (max_failures: 2)", recs[i].Alert.Annotations["description"])
	})
}

// TestBreakerGaugeShowsTheClusterState: selfheal_engine_breaker_open says
// what the log holds, so a replica whose log learned by gossip that
// another one opened or reset the breaker shows it too.
func TestBreakerGaugeShowsTheClusterState(t *testing.T) {
	f := newFixture(t, t.TempDir(), `playbooks: []`, engine.Options{})
	require.Equal(t, 0.0, f.gauge("selfheal_engine_breaker_open"))
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	// As ha's merge of a gossiped opening writes it.
	require.NoError(t, f.log.SetBreaker(ha.BreakerState{Open: true, OpenedAt: t0, Reason: "opened on n2"}))
	require.Equal(t, 1.0, f.gauge("selfheal_engine_breaker_open"))
	require.NoError(t, f.log.SetBreaker(ha.BreakerState{ResetAt: t0.Add(time.Minute)}))
	require.Equal(t, 0.0, f.gauge("selfheal_engine_breaker_open"))
}
