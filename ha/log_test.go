package ha

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

func testAlert(status alert.Status, startsAt time.Time) alert.Alert {
	labels := map[string]string{"alertname": "DiskFull", "instance": "w1"}
	return alert.Alert{Status: status, Labels: labels, StartsAt: startsAt, Fingerprint: alert.Fingerprint(labels)}
}

func openLog(t *testing.T, dir string, now func() time.Time) *Log {
	t.Helper()
	l, err := Open(dir, Options{Node: "n1", Now: now})
	require.NoError(t, err)
	return l
}

func TestObserveClassifiesDeliveries(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	t0 := time.Date(2026, 11, 21, 19, 8, 21, 800e6, time.UTC)
	steps := []struct {
		name string
		a    alert.Alert
		want Observation
	}{
		{"first firing", testAlert(alert.Firing, t0), New},
		{"repeat", testAlert(alert.Firing, t0), Duplicate},
		{"resolved", testAlert(alert.Resolved, t0), Ended},
		{"resolved again", testAlert(alert.Resolved, t0), Duplicate},
		{"stale firing after resolved", testAlert(alert.Firing, t0), Stale},
		{"new episode", testAlert(alert.Firing, t0.Add(time.Minute)), New},
		{"resolved for an unseen episode", testAlert(alert.Resolved, t0.Add(-time.Hour)), Ended},
	}
	for _, s := range steps {
		got, err := l.Observe(s.a)
		require.NoError(t, err)
		require.Equal(t, s.want, got, s.name)
	}
}

func TestClaimIsOncePerIDAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	a := testAlert(alert.Firing, time.Unix(100, 0))
	rec := Record{ID: RunID("pb", a.Episode()), Playbook: "pb", Episode: a.Episode(), Alert: a}

	got, won, err := l.Claim(context.Background(), rec)
	require.NoError(t, err)
	require.True(t, won)
	require.Equal(t, Claimed, got.State)
	require.Equal(t, "n1", got.Node)

	_, won, err = l.Claim(context.Background(), rec)
	require.NoError(t, err)
	require.False(t, won, "a second claim for the same run must lose")
	require.NoError(t, l.Close())

	l = openLog(t, dir, nil)
	defer l.Close()
	_, won, err = l.Claim(context.Background(), rec)
	require.NoError(t, err)
	require.False(t, won, "a claim must survive a restart")
	un, err := l.Unfinished()
	require.NoError(t, err)
	require.Len(t, un, 1)
	require.Equal(t, rec.ID, un[0].ID)
}

func TestUpdateOnlyMovesForward(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	a := testAlert(alert.Firing, time.Unix(100, 0))
	rec, _, err := l.Claim(context.Background(), Record{ID: RunID("pb", a.Episode()), Episode: a.Episode(), Alert: a})
	require.NoError(t, err)

	rec.State = Running
	require.NoError(t, l.Update(rec))
	rec.State = Succeeded
	require.NoError(t, l.Update(rec))
	rec.State = Running
	require.ErrorIs(t, l.Update(rec), ErrBackwards)
	rec.State = Failed
	require.ErrorIs(t, l.Update(rec), ErrBackwards, "a final state never changes")
	require.ErrorIs(t, l.Update(Record{ID: "nope", State: Running}), ErrNotFound)

	got, ok, err := l.Get(rec.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Succeeded, got.State)
	un, err := l.Unfinished()
	require.NoError(t, err)
	require.Empty(t, un)
}

func TestListNewestFirst(t *testing.T) {
	now := time.Unix(1000, 0)
	l := openLog(t, t.TempDir(), func() time.Time { return now })
	defer l.Close()
	for i := range 3 {
		now = now.Add(time.Second)
		a := testAlert(alert.Firing, time.Unix(int64(i), 0))
		_, _, err := l.Claim(context.Background(), Record{ID: RunID("pb", a.Episode()), Episode: a.Episode()})
		require.NoError(t, err)
	}
	recs, err := l.List(2)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.True(t, recs[0].ClaimedAt.After(recs[1].ClaimedAt))
}

func TestPruneKeepsRunsOfEpisodesStillDelivered(t *testing.T) {
	now := time.Unix(1000, 0)
	l := openLog(t, t.TempDir(), func() time.Time { return now })
	defer l.Close()
	old := testAlert(alert.Firing, time.Unix(1, 0))
	active := testAlert(alert.Firing, time.Unix(2, 0))
	for _, a := range []alert.Alert{old, active} {
		_, err := l.Observe(a)
		require.NoError(t, err)
		rec, _, err := l.Claim(context.Background(), Record{ID: RunID("pb", a.Episode()), Episode: a.Episode()})
		require.NoError(t, err)
		rec.State = Succeeded
		require.NoError(t, l.Update(rec))
	}
	resolved := old
	resolved.Status = alert.Resolved
	_, err := l.Observe(resolved)
	require.NoError(t, err)
	now = now.Add(48 * time.Hour)
	_, err = l.Observe(active) // still repeating
	require.NoError(t, err)

	n, err := l.Prune(now.Add(-24 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, ok, _ := l.Get(RunID("pb", old.Episode()))
	require.False(t, ok)
	_, ok, _ = l.Get(RunID("pb", active.Episode()))
	require.True(t, ok, "the run of a still-firing episode must be kept, or it would run again")
}

// An episode Alertmanager stopped repeating (a long group_interval or
// repeat_interval, an outage of the sender, a retention shorter than both)
// has not ended: forgetting it would make its next delivery "new" and run
// its playbooks again. Only resolved episodes are pruned.
func TestPruneNeverForgetsAnUnresolvedEpisode(t *testing.T) {
	now := time.Unix(1000, 0)
	l := openLog(t, t.TempDir(), func() time.Time { return now })
	defer l.Close()
	firing := testAlert(alert.Firing, time.Unix(1, 0))
	ended := testAlert(alert.Firing, time.Unix(2, 0))
	for _, a := range []alert.Alert{firing, ended} {
		_, err := l.Observe(a)
		require.NoError(t, err)
		rec, _, err := l.Claim(context.Background(), Record{ID: RunID("pb", a.Episode()), Episode: a.Episode()})
		require.NoError(t, err)
		rec.State = Succeeded
		require.NoError(t, l.Update(rec))
	}
	resolved := ended
	resolved.Status = alert.Resolved
	_, err := l.Observe(resolved)
	require.NoError(t, err)

	now = now.Add(30 * 24 * time.Hour) // nothing delivered for 30 days
	n, err := l.Prune(now.Add(-24 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n, "the run of the resolved episode goes")
	_, ok, _ := l.Get(RunID("pb", firing.Episode()))
	require.True(t, ok, "the run of an unresolved episode is kept")
	obs, err := l.Observe(firing)
	require.NoError(t, err)
	require.Equal(t, Duplicate, obs, "a repeat of an unresolved episode, however late, is not new")
	obs, err = l.Observe(ended)
	require.NoError(t, err)
	require.Equal(t, New, obs, "a resolved episode is forgotten after retention")
}
