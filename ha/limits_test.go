package ha

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// TestKeyRunsHoldsWhatCountsAgainstLimits: the runs of a playbook for a
// limit key, oldest first, are those decided to run (or that would have, in
// a dry run), whatever their state now; a guard's skip, a claim that ended
// skipped, another key or playbook, and pruned runs are not among them.
// The index survives a restart.
func TestKeyRunsHoldsWhatCountsAgainstLimits(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	now := t0
	l := openLog(t, dir, func() time.Time { return now })
	claim := func(pb, key string, at time.Duration, set func(*Record)) Record {
		t.Helper()
		a := testAlert(alert.Firing, t0.Add(at))
		rec := Record{ID: RunID(pb, a.Episode()), Playbook: pb, Episode: a.Episode(), Alert: a, LimitKey: key, ClaimedAt: t0.Add(at)}
		if set != nil {
			set(&rec)
		}
		got, won, err := l.Claim(context.Background(), rec)
		require.NoError(t, err)
		require.True(t, won)
		return got
	}
	ids := func(pb, key string) []string {
		t.Helper()
		recs, err := l.KeyRuns(pb, key, time.Time{})
		require.NoError(t, err)
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}

	ran := claim("pb", "w1", 2*time.Minute, nil)
	ran.State = Succeeded
	require.NoError(t, l.Update(ran))
	first := claim("pb", "w1", time.Minute, nil) // claimed earlier, listed first
	guarded := claim("pb", "w1", 3*time.Minute, func(r *Record) { r.State, r.SkipReason = Skipped, "rate_limited" })
	require.Equal(t, Skipped, guarded.State, "a guard's skip is stored skipped in the claim's own write")
	require.Equal(t, guarded.ClaimedAt, guarded.FinishedAt)
	dry := claim("pb", "w1", 4*time.Minute, func(r *Record) { r.DryRun = true })
	dry.State, dry.Reason = Skipped, "dry run: nothing was executed"
	require.NoError(t, l.Update(dry))
	dropped := claim("pb", "w1", 5*time.Minute, nil)
	dropped.State, dropped.Reason = Skipped, "playbook is no longer loaded"
	require.NoError(t, l.Update(dropped))
	claim("pb", "w2", 6*time.Minute, nil)
	claim("other", "w1", 7*time.Minute, nil)
	claim("pb", "", 8*time.Minute, nil)

	want := []string{first.ID, ran.ID, dry.ID}
	require.Equal(t, want, ids("pb", "w1"))
	require.Len(t, ids("pb", "w2"), 1)
	require.Empty(t, ids("pb", "w"), "a key is matched whole, not as a prefix")

	require.NoError(t, l.Close())
	l = openLog(t, dir, func() time.Time { return now })
	defer l.Close()
	require.Equal(t, want, ids("pb", "w1"), "the index is on disk")

	// Resolve the episodes and prune: the runs leave the index with their
	// records.
	for _, at := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		_, err := l.Observe(testAlert(alert.Resolved, t0.Add(at)))
		require.NoError(t, err)
	}
	first.State = Failed
	require.NoError(t, l.Update(first))
	now = t0.Add(48 * time.Hour)
	_, err := l.Prune(now.Add(-24 * time.Hour))
	require.NoError(t, err)
	require.Empty(t, ids("pb", "w1"))
}
