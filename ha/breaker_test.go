package ha

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// TestOutcomesCountWhatTheBreakerCounts: runs started (not skipped, not dry
// runs) by claim time, and runs that ended failed or unhealed by end time,
// strictly after since; the breaker's state survives a restart.
func TestOutcomesCountWhatTheBreakerCounts(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	l := openLog(t, dir, nil)
	n := 0
	claim := func(at time.Duration, set func(*Record)) Record {
		t.Helper()
		n++
		a := testAlert(alert.Firing, t0.Add(time.Duration(n)*time.Second))
		rec := Record{ID: RunID("pb", a.Episode()), Playbook: "pb", Episode: a.Episode(), Alert: a, ClaimedAt: t0.Add(at)}
		if set != nil {
			set(&rec)
		}
		got, _, err := l.Claim(context.Background(), rec)
		require.NoError(t, err)
		return got
	}
	end := func(rec Record, state State, at time.Duration) {
		t.Helper()
		rec.State, rec.FinishedAt = state, t0.Add(at)
		require.NoError(t, l.Update(rec))
	}
	end(claim(-time.Hour, nil), Failed, 5*time.Minute) // claimed long ago, failed in the window
	end(claim(time.Minute, nil), Unhealed, 6*time.Minute)
	end(claim(2*time.Minute, nil), Succeeded, 3*time.Minute)
	end(claim(3*time.Minute, nil), Failed, -time.Minute) // failed before the window
	claim(4*time.Minute, func(r *Record) { r.State, r.SkipReason = Skipped, "rate_limited" })
	dry := claim(5*time.Minute, func(r *Record) { r.DryRun = true })
	end(dry, Skipped, 5*time.Minute)
	claim(0, nil) // claimed exactly at since: not after it

	started, failed, err := l.Outcomes(t0)
	require.NoError(t, err)
	require.Equal(t, 3, started, "claimed at 1m, 2m and 3m")
	require.Equal(t, 2, failed, "ended failed at 5m and unhealed at 6m")

	st := BreakerState{Open: true, OpenedAt: t0, Reason: "5 runs failed in 10m"}
	require.NoError(t, l.SetBreaker(st))
	require.NoError(t, l.Close())
	l = openLog(t, dir, nil)
	defer l.Close()
	got, err := l.Breaker()
	require.NoError(t, err)
	require.Equal(t, st, got)
}
