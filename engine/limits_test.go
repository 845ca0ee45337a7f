package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
)

// episodes returns n firing alerts of instance, each its own episode.
func episodesOf(instance string, n int, t0 time.Time) []alert.Alert {
	out := make([]alert.Alert, n)
	for i := range out {
		labels := map[string]string{"alertname": "DiskFull", "instance": instance}
		out[i] = alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: t0.Add(time.Duration(i) * time.Second), Fingerprint: alert.Fingerprint(labels)}
	}
	return out
}

func (f *fixture) put(t *testing.T, alerts []alert.Alert) {
	t.Helper()
	_, err := f.inbox.Put(context.Background(), alert.Batch{Alerts: alerts})
	require.NoError(t, err)
}

// byState counts the records of playbook by state and skip reason.
func (f *fixture) byState(t *testing.T, playbook string) map[string]int {
	t.Helper()
	recs, err := f.log.List(0)
	require.NoError(t, err)
	out := map[string]int{}
	for _, r := range recs {
		if r.Playbook == playbook {
			out[string(r.State)+" "+r.SkipReason]++
		}
	}
	return out
}

func (f *fixture) skippedMetric(playbook, reason string) float64 {
	families, err := f.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, fam := range families {
		if fam.GetName() != "selfheal_engine_runs_skipped_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["playbook"] == playbook && l["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRateLimitHoldsAcrossARestart: 50 episodes for one key, max_runs 3
// per 1h: 3 runs and 47 skips recorded with their reason and the time a
// run would next be allowed, counted in the metric; after a restart, the
// same deliveries add nothing, and new episodes are still limited by the
// runs on disk until the hour has passed.
func TestRateLimitHoldsAcrossARestart(t *testing.T) {
	const pbs = `playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    limits: {key: '{{ .Labels.instance }}', max_runs: 3, per: 1h}
    steps: [{name: s, action: record}]
`
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, dir, pbs, engine.Options{Now: clock})
	storm := episodesOf("w1", 50, t0.Add(-time.Hour))
	f.put(t, storm)
	f.put(t, episodesOf("w2", 1, t0.Add(-time.Hour)))
	f.settle(t)
	require.Equal(t, 4, f.rec.count(), "3 for w1, 1 for w2")
	require.Equal(t, map[string]int{"succeeded ": 4, "skipped rate_limited": 47}, f.byState(t, "clean"))
	require.Equal(t, 47.0, f.skippedMetric("clean", "rate_limited"))
	skipped, found, err := f.log.Get(ha.RunID("clean", storm[49].Episode()))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "w1", skipped.LimitKey)
	require.Equal(t, t0.Add(time.Hour), skipped.NextAllowedAt)
	require.Equal(t, "rate limited: 3 runs for this key in the last 1h (max_runs: 3); next allowed at 2026-12-07T10:00:00Z", skipped.Reason)
	require.Empty(t, skipped.Steps)
	f.stop()

	mu.Lock()
	now = t0.Add(59 * time.Minute)
	mu.Unlock()
	f = newFixture(t, dir, pbs, engine.Options{Now: clock})
	f.put(t, storm)
	f.put(t, episodesOf("w1", 52, t0.Add(-time.Hour))[50:])
	f.settle(t)
	require.Zero(t, f.rec.count(), "re-delivered episodes are decided already; new ones are still limited")
	require.Equal(t, map[string]int{"succeeded ": 4, "skipped rate_limited": 49}, f.byState(t, "clean"))

	mu.Lock()
	now = t0.Add(time.Hour)
	mu.Unlock()
	f.put(t, episodesOf("w1", 56, t0.Add(-time.Hour))[52:])
	f.settle(t)
	require.Equal(t, 3, f.rec.count(), "an hour after the first runs, 3 more are allowed")
}

// TestConcurrencyWithSlowSteps: with concurrency 1, a second episode for a
// key whose run is still in its step is skipped; once that run ends, the
// next one runs.
func TestConcurrencyWithSlowSteps(t *testing.T) {
	const pbs = `playbooks:
  - name: restart
    match: ['alertname="DiskFull"']
    limits: {key: '{{ .Labels.instance }}', concurrency: 1}
    steps: [{name: s, action: record}]
`
	f := newFixture(t, t.TempDir(), pbs, engine.Options{})
	f.rec.block = make(chan struct{})
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	all := episodesOf("w1", 3, t0)
	f.put(t, all[:1])
	require.Eventually(t, func() bool { return f.rec.count() == 1 }, 10*time.Second, time.Millisecond)
	f.put(t, all[1:2])
	require.Eventually(t, func() bool { return f.byState(t, "restart")["skipped concurrency"] == 1 }, 10*time.Second, time.Millisecond)
	close(f.rec.block)
	f.settle(t)
	f.put(t, all[2:])
	f.settle(t)
	require.Equal(t, map[string]int{"succeeded ": 2, "skipped concurrency": 1}, f.byState(t, "restart"))
	rec, _, err := f.log.Get(ha.RunID("restart", all[1].Episode()))
	require.NoError(t, err)
	require.Equal(t, "concurrency: 1 of at most 1 runs for this key are in flight", rec.Reason)
	require.Equal(t, 1.0, f.skippedMetric("restart", "concurrency"))
}
