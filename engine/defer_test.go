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

const delayed = `playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    delay: 2m
    steps: [{name: s, action: record}]
`

func resolvedOf(a alert.Alert, at time.Time) alert.Alert {
	a.Status, a.EndsAt = alert.Resolved, at
	return a
}

// TestDelayRunsIfStillFiring: a run waits its delay after the alert's
// startsAt, claimed and visible as waiting, then runs once.
func TestDelayRunsIfStillFiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, t.TempDir(), delayed, engine.Options{})
		a := episodesOf("w1", 1, time.Now().Add(-30*time.Second))
		f.put(t, a)
		synctest.Wait()
		rec, _, err := f.log.Get(ha.RunID("clean", a[0].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Claimed, rec.State)
		require.True(t, a[0].StartsAt.Add(2*time.Minute).Equal(rec.NotBefore), rec.NotBefore)
		require.Contains(t, rec.Waiting, "delay: acts at ")
		require.Equal(t, 1.0, f.gauge("selfheal_engine_runs_waiting"))

		time.Sleep(89 * time.Second) // fake time: 1s before it is due
		synctest.Wait()
		require.Zero(t, f.rec.count())
		time.Sleep(time.Second)
		synctest.Wait()
		f.settle(t)
		require.Equal(t, 1, f.rec.count())
		require.Equal(t, 0.0, f.gauge("selfheal_engine_runs_waiting"))
	})
}

// TestDelayCancelledByResolve: the alert resolves during the delay; the run
// is recorded skipped (resolved) at once and never starts.
func TestDelayCancelledByResolve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, t.TempDir(), delayed, engine.Options{})
		a := episodesOf("w1", 1, time.Now())
		f.put(t, a)
		synctest.Wait()
		time.Sleep(time.Minute)
		f.put(t, []alert.Alert{resolvedOf(a[0], time.Now())})
		synctest.Wait()
		f.settle(t)
		rec, _, err := f.log.Get(ha.RunID("clean", a[0].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Skipped, rec.State)
		require.Equal(t, "resolved", rec.SkipReason)
		require.Contains(t, rec.Reason, "resolved while the run waited (delay: acts at ")
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Zero(t, f.rec.count())
		require.Equal(t, 1.0, f.skippedMetric("clean", "resolved"))
	})
}

// TestDelaySurvivesARestart: the daemon stops while a run waits; the next
// start waits for the rest of the delay and runs it once, or skips it if
// the resolve arrived while it was down.
func TestDelaySurvivesARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		f := newFixture(t, dir, delayed, engine.Options{})
		a := episodesOf("w1", 2, time.Now())
		f.put(t, a)
		synctest.Wait()
		f.stop()

		time.Sleep(time.Minute)
		f = newFixture(t, dir, delayed, engine.Options{})
		f.put(t, []alert.Alert{resolvedOf(a[1], time.Now())})
		synctest.Wait()
		require.Zero(t, f.rec.count(), "a minute of the delay is left")
		require.Equal(t, 1.0, f.gauge("selfheal_engine_runs_waiting"))
		time.Sleep(time.Minute)
		synctest.Wait()
		f.settle(t)
		require.Equal(t, 1, f.rec.count(), "the still-firing episode ran once, after its delay")
		rec, _, err := f.log.Get(ha.RunID("clean", a[1].Episode()))
		require.NoError(t, err)
		require.Equal(t, "resolved", rec.SkipReason)
	})
}

// TestWindowsDeferAndBlackoutsSkip: outside its window a run waits for the
// window to open (in the window's timezone); in a blackout it is skipped.
func TestWindowsDeferAndBlackoutsSkip(t *testing.T) {
	const pbs = `playbooks:
  - name: night
    match: ['alertname="DiskFull"']
    windows: [{schedule: "0 22 * * *", duration: 8h, timezone: Europe/Paris}]
    steps: [{name: s, action: record}]
  - name: not-on-sundays
    match: ['alertname="DiskFull"']
    blackouts: [{schedule: "0 0 * * SUN", duration: 24h, timezone: Europe/Paris}]
    steps: [{name: s, action: record}]
`
	synctest.Test(t, func(t *testing.T) {
		// The bubble starts at 2000-01-01 00:00 UTC, a Saturday; move to
		// Saturday 12:00 in Paris (11:00 UTC).
		time.Sleep(11 * time.Hour)
		f := newFixture(t, t.TempDir(), pbs, engine.Options{})
		a := episodesOf("w1", 1, time.Now())
		f.put(t, a)
		synctest.Wait()
		require.Equal(t, 1, f.rec.count(), "not-on-sundays runs on a Saturday")
		rec, _, err := f.log.Get(ha.RunID("night", a[0].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Claimed, rec.State)
		paris, err := time.LoadLocation("Europe/Paris")
		require.NoError(t, err)
		require.True(t, time.Date(2000, 1, 1, 22, 0, 0, 0, paris).Equal(rec.NotBefore), rec.NotBefore)
		require.Contains(t, rec.Waiting, "outside its windows; next opens 2000-01-01T22:00:00+01:00")

		time.Sleep(10 * time.Hour) // 22:00 in Paris
		synctest.Wait()
		require.Equal(t, 2, f.rec.count(), "night ran when its window opened")

		b := episodesOf("w2", 1, time.Now()) // Sunday 01:00 in Paris
		time.Sleep(2 * time.Hour)
		f.put(t, b)
		synctest.Wait()
		rec, _, err = f.log.Get(ha.RunID("not-on-sundays", b[0].Episode()))
		require.NoError(t, err)
		require.Equal(t, ha.Skipped, rec.State)
		require.Equal(t, "blackout", rec.SkipReason)
		require.Equal(t, 3, f.rec.count(), "night ran for w2 (in its window), not-on-sundays did not")
	})
}
