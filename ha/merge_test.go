package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// versions are versions of one run as different replicas could hold them.
func versions(t0 time.Time) []Record {
	base := Record{ID: "p/x", Playbook: "p", ClaimedAt: t0, Node: "a", State: Claimed}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	return []Record{
		base,
		with(func(r *Record) { r.Node = "b" }),
		with(func(r *Record) { r.ClaimedAt = t0.Add(time.Millisecond); r.Node = "0" }),
		with(func(r *Record) { r.State = Running; r.Rev = 1 }),
		with(func(r *Record) { r.State = Running; r.Rev = 2 }),
		with(func(r *Record) { r.State = Verifying; r.Rev = 3 }),
		with(func(r *Record) { r.State = Succeeded; r.Rev = 3 }),
		with(func(r *Record) { r.State = Failed; r.Rev = 3 }),
		with(func(r *Record) { r.State = Skipped; r.Node = "b" }),
		with(func(r *Record) { r.State = Shadow }),
		with(func(r *Record) { r.State = Unhealed; r.Node = "b" }),
		with(func(r *Record) { r.Epoch = 1; r.Node = "c"; r.TakenOverFrom = "a" }),
		with(func(r *Record) { r.Epoch = 1; r.Node = "d"; r.TakenOverFrom = "a" }),
		with(func(r *Record) { r.State = Succeeded; r.Rev = 3; r.Reason = "other words" }),
	}
}

// TestSupersedesIsATotalOrder: of any two different versions exactly one
// supersedes the other, and the order is transitive: every replica picks
// the same winner whatever it saw first. (A Succeeded and a Failed from two
// replicas: the Failed stands.)
func TestSupersedesIsATotalOrder(t *testing.T) {
	vs := versions(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	for i, a := range vs {
		require.False(t, Supersedes(a, a), "%d over itself", i)
		for j, b := range vs {
			if i != j {
				require.NotEqual(t, Supersedes(a, b), Supersedes(b, a), "%d vs %d", i, j)
			}
			for k, c := range vs {
				if Supersedes(a, b) && Supersedes(b, c) {
					require.True(t, Supersedes(a, c), "%d > %d > %d", i, j, k)
				}
			}
		}
	}
	require.True(t, Supersedes(vs[7], vs[6]), "failed stands over succeeded")
	require.True(t, Supersedes(vs[0], vs[1]), "same time: the smaller node name")
	require.True(t, Supersedes(vs[0], vs[2]), "the earlier claim")
	require.True(t, Supersedes(vs[11], vs[7]), "a take-over (later epoch) stands")
}

// TestMergeConvergesInAnyOrder: replicas that get the same versions in
// different orders, as changes or in full states, hold the same log.
func TestMergeConvergesInAnyOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	vs := versions(t0)
	var msgs [][]byte
	for _, v := range vs {
		v.LimitKey = "k"
		m, err := json.Marshal(message{Record: &v})
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	var want []byte
	for seed := range uint64(20) {
		l := openLog(t, t.TempDir(), nil)
		order := rand.New(rand.NewPCG(seed, 1)).Perm(len(msgs))
		for _, i := range order {
			_, err := l.Merge(msgs[i])
			require.NoError(t, err)
		}
		got, err := l.LocalState()
		require.NoError(t, err)
		if want == nil {
			want = got
		}
		require.JSONEq(t, string(want), string(got), "order %v", order)
		runs, err := l.KeyRuns("p", "k", time.Time{})
		require.NoError(t, err)
		require.Len(t, runs, 1, "one index entry for the version that stands")

		// A full state merged into an empty replica gives the same.
		other := openLog(t, t.TempDir(), nil)
		require.NoError(t, other.MergeState(got))
		again, err := other.LocalState()
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(again))
		require.NoError(t, l.Close())
		require.NoError(t, other.Close())
	}
}

// TestMergeKeepsTheAlert: a compact change (no alert) keeps the alert the
// claim brought, whichever arrives first.
func TestMergeKeepsTheAlert(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	a := testAlert(alert.Firing, t0)
	claim := Record{ID: RunID("p", a.Episode()), Playbook: "p", Episode: a.Episode(), Alert: a, Node: "b", ClaimedAt: t0, State: Claimed}
	running := compact(claim)
	running.State, running.Rev = Running, 1
	for _, first := range []Record{claim, running} {
		l := openLog(t, t.TempDir(), nil)
		for _, r := range []Record{first, claim, running} {
			m, err := json.Marshal(message{Record: &r})
			require.NoError(t, err)
			_, err = l.Merge(m)
			require.NoError(t, err)
		}
		got, _, err := l.Get(claim.ID)
		require.NoError(t, err)
		require.Equal(t, Running, got.State)
		require.Equal(t, a.Labels, got.Alert.Labels)
		require.NoError(t, l.Close())
	}
}

// mesh connects logs in memory, as a cluster would: broadcasts reach every
// other log (relayed as Merge says), and Ask asks them all. Links can be
// cut, as a partition does.
type mesh struct {
	mu   sync.Mutex
	logs map[string]*Log
	cut  map[[2]string]bool
}

type meshPeer struct {
	m    *mesh
	name string
}

func newMesh() *mesh { return &mesh{logs: map[string]*Log{}, cut: map[[2]string]bool{}} }

func (m *mesh) join(t *testing.T, name string) *Log {
	l, err := Open(t.TempDir(), Options{Node: name})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	l.SetGossip(meshPeer{m, name})
	m.mu.Lock()
	m.logs[name] = l
	m.mu.Unlock()
	return l
}

func (m *mesh) others(from string) []*Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Log
	for name, l := range m.logs {
		if name != from && !m.cut[[2]string{from, name}] && !m.cut[[2]string{name, from}] {
			out = append(out, l)
		}
	}
	return out
}

func (p meshPeer) Broadcast(msg []byte) {
	for _, l := range p.m.others(p.name) {
		if news, err := l.Merge(msg); err == nil && news {
			meshPeer{p.m, l.node}.Broadcast(msg)
		}
	}
}

func (p meshPeer) Ask(_ context.Context, req []byte) ([][]byte, error) {
	var out [][]byte
	for _, l := range p.m.others(p.name) {
		a, err := l.Answer(req)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// TestClaimRaceHasOneWinner: three replicas claim the same runs at the same
// moment; for each run exactly one claim wins, and all three agree on it.
func TestClaimRaceHasOneWinner(t *testing.T) {
	m := newMesh()
	logs := []*Log{m.join(t, "n1"), m.join(t, "n2"), m.join(t, "n3")}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const runs = 200
	wins := make([][]bool, len(logs))
	var wg sync.WaitGroup
	for i, l := range logs {
		wins[i] = make([]bool, runs)
		wg.Go(func() {
			for r := range runs {
				a := testAlert(alert.Firing, t0.Add(time.Duration(r)*time.Second))
				// Claim times differ by replica and run, as clocks do.
				at := t0.Add(time.Duration((r*7+i*3)%5) * time.Millisecond)
				_, won, err := l.Claim(context.Background(), Record{ID: RunID("p", a.Episode()), Playbook: "p", Episode: a.Episode(), Alert: a, ClaimedAt: at})
				require.NoError(t, err)
				wins[i][r] = won
			}
		})
	}
	wg.Wait()
	for r := range runs {
		n := 0
		for i := range logs {
			if wins[i][r] {
				n++
			}
		}
		require.Equal(t, 1, n, "run %d", r)
	}
	var states []string
	for _, l := range logs {
		s, err := l.LocalState()
		require.NoError(t, err)
		states = append(states, string(s))
	}
	require.JSONEq(t, states[0], states[1])
	require.JSONEq(t, states[0], states[2])
}

// TestPartitionBothSidesActThenMerge: cut off, each side claims the same
// run and wins it (availability over consistency); after the partition
// heals, a full-state exchange makes both hold the same version.
func TestPartitionBothSidesActThenMerge(t *testing.T) {
	m := newMesh()
	a, b := m.join(t, "a"), m.join(t, "b")
	m.cut[[2]string{"a", "b"}] = true
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	al := testAlert(alert.Firing, t0)
	id := RunID("p", al.Episode())
	for i, l := range []*Log{a, b} {
		rec, won, err := l.Claim(context.Background(), Record{ID: id, Playbook: "p", Episode: al.Episode(), Alert: al, ClaimedAt: t0.Add(time.Duration(i) * time.Second)})
		require.NoError(t, err)
		require.True(t, won, "both sides act")
		rec.State, rec.FinishedAt = Succeeded, t0.Add(time.Minute)
		require.NoError(t, l.Update(rec))
	}
	delete(m.cut, [2]string{"a", "b"})
	sa, err := a.LocalState()
	require.NoError(t, err)
	sb, err := b.LocalState()
	require.NoError(t, err)
	require.NoError(t, a.MergeState(sb))
	require.NoError(t, b.MergeState(sa))
	ra, _, err := a.Get(id)
	require.NoError(t, err)
	rb, _, err := b.Get(id)
	require.NoError(t, err)
	require.Equal(t, ra, rb)
	require.Equal(t, "a", ra.Node, "the earlier claim stands")
}

// TestTakeOverHasOneWinner: two replicas take over the run of one that
// left; one version (a new epoch) stands everywhere, and the old owner's
// late update does not overwrite it.
func TestTakeOverHasOneWinner(t *testing.T) {
	m := newMesh()
	gone, b, c := m.join(t, "gone"), m.join(t, "b"), m.join(t, "c")
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	al := testAlert(alert.Firing, t0)
	rec, won, err := gone.Claim(context.Background(), Record{ID: RunID("p", al.Episode()), Playbook: "p", Episode: al.Episode(), Alert: al})
	require.NoError(t, err)
	require.True(t, won)
	rec.State = Running
	require.NoError(t, gone.Update(rec))
	m.mu.Lock()
	delete(m.logs, "gone")
	m.mu.Unlock()

	var wg sync.WaitGroup
	results := make([]bool, 2)
	for i, l := range []*Log{b, c} {
		wg.Go(func() {
			held, _, err := l.Get(rec.ID)
			require.NoError(t, err)
			held.State = Claimed
			_, won, err := l.TakeOver(context.Background(), held)
			require.NoError(t, err)
			results[i] = won
		})
	}
	wg.Wait()
	require.NotEqual(t, results[0], results[1], "one takes it over: %v", results)
	rb, _, err := b.Get(rec.ID)
	require.NoError(t, err)
	rc, _, err := c.Get(rec.ID)
	require.NoError(t, err)
	require.Equal(t, rb, rc)
	require.Equal(t, 1, rb.Epoch)
	require.Equal(t, "gone", rb.TakenOverFrom)

	rec.State = Succeeded
	err = gone.Update(rec)
	m.mu.Lock()
	m.logs["gone"] = gone
	m.mu.Unlock()
	s, err2 := b.LocalState()
	require.NoError(t, err2)
	require.NoError(t, gone.MergeState(s))
	back, _, err2 := gone.Get(rec.ID)
	require.NoError(t, err2)
	require.Equal(t, rb.Node, back.Node, "the take-over stands on the old owner too (its update: %v)", err)
}

// TestEpisodesAndBreakerReplicate: a resolve seen by one replica makes a
// later firing stale on the others; an opened breaker pauses them, a reset
// closes it everywhere.
func TestEpisodesAndBreakerReplicate(t *testing.T) {
	m := newMesh()
	a, b := m.join(t, "a"), m.join(t, "b")
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	_, err := a.Observe(testAlert(alert.Firing, t0))
	require.NoError(t, err)
	_, err = a.Observe(testAlert(alert.Resolved, t0))
	require.NoError(t, err)
	obs, err := b.Observe(testAlert(alert.Firing, t0))
	require.NoError(t, err)
	require.Equal(t, Stale, obs)

	require.NoError(t, a.SetBreaker(BreakerState{Open: true, OpenedAt: t0, Reason: "3 failed"}))
	st, err := b.Breaker()
	require.NoError(t, err)
	require.True(t, st.Open)
	require.NoError(t, b.SetBreaker(BreakerState{ResetAt: t0.Add(time.Minute)}))
	st, err = a.Breaker()
	require.NoError(t, err)
	require.False(t, st.Open, fmt.Sprint(st))
}
