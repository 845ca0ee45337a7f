package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/cluster"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// partition is a network that can be cut between two sides: a memberlist
// transport wrapper drops packets and refuses connections across the cut.
type partition struct {
	mu   sync.Mutex
	side map[string]int // address -> side; 0: no cut
}

func (n *partition) blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, b := n.side[from], n.side[to]
	return a != 0 && b != 0 && a != b
}

func (n *partition) cut(sides map[string]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.side = sides
}

type cutTransport struct {
	*memberlist.NetTransport
	net  *partition
	self string
}

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.net.blocked(t.self, addr) {
		return time.Now(), nil // lost on the way
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.net.blocked(t.self, addr) {
		return nil, errors.New("partitioned")
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type replica struct {
	name string
	addr string
	log  *ha.Log
	peer *cluster.Peer
}

// start runs a replica: a real execution log and a real memberlist peer on
// loopback, with fast failure detection.
func start(t testing.TB, name string, nw *partition, peers ...string) *replica {
	t.Helper()
	return startKeyed(t, name, nw, nil, peers...)
}

// startKeyed is start with gossip encrypted by key.
func startKeyed(t testing.TB, name string, nw *partition, key []byte, peers ...string) *replica {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	lg, err := ha.Open(t.TempDir(), ha.Options{Node: name})
	require.NoError(t, err)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: port})
	require.NoError(t, err)
	p, err := cluster.Create(cluster.Config{
		Name: name, ListenAddr: addr, Peers: peers,
		GossipInterval: 20 * time.Millisecond, PushPullInterval: 300 * time.Millisecond,
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond,
		ReconnectInterval: 200 * time.Millisecond, AskTimeout: time.Second,
		Transport:  &cutTransport{NetTransport: nt, net: nw, self: addr},
		SecretKey:  key,
		Registerer: prometheus.NewRegistry(),
	}, lg)
	require.NoError(t, err)
	lg.SetGossip(p)
	r := &replica{name: name, addr: addr, log: lg, peer: p}
	t.Cleanup(func() {
		r.peer.Leave(time.Second)
		r.log.Close()
	})
	return r
}

func startThree(t testing.TB, nw *partition) []*replica {
	a := start(t, "a", nw)
	b := start(t, "b", nw, a.addr)
	c := start(t, "c", nw, a.addr, b.addr)
	rs := []*replica{a, b, c}
	for _, r := range rs {
		require.Eventually(t, func() bool { return len(r.peer.Members()) == 3 && r.peer.Ready() }, 10*time.Second, 10*time.Millisecond, r.name)
	}
	return rs
}

func claimOn(r *replica, a alert.Alert, at time.Time) (ha.Record, bool, error) {
	return r.log.Claim(context.Background(), ha.Record{ID: ha.RunID("p", a.Episode()), Playbook: "p", Episode: a.Episode(), Alert: a, ClaimedAt: at, LimitKey: "p"})
}

func episode(i int, t0 time.Time) alert.Alert {
	labels := map[string]string{"alertname": "DiskFull", "instance": fmt.Sprintf("w%d", i)}
	return alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: t0, Fingerprint: alert.Fingerprint(labels)}
}

// TestClaimsOverRealGossip: three replicas on loopback; each of 300 runs is
// claimed by all three at once, as when every replica gets the same
// notification; exactly one claim wins each, and the three logs agree.
func TestClaimsOverRealGossip(t *testing.T) {
	rs := startThree(t, &partition{})
	t0 := time.Now().UTC()
	const runs = 300
	won := make([][]bool, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		won[i] = make([]bool, runs)
		wg.Go(func() {
			for n := range runs {
				_, w, err := claimOn(r, episode(n, t0), t0.Add(time.Duration((n+i)%3)*time.Microsecond))
				require.NoError(t, err)
				won[i][n] = w
			}
		})
	}
	wg.Wait()
	for n := range runs {
		winners := 0
		for i := range rs {
			if won[i][n] {
				winners++
			}
		}
		require.Equal(t, 1, winners, "run %d", n)
	}
	// The winner's update reaches the others by gossip.
	rec, _, err := rs[0].log.Get(ha.RunID("p", episode(0, t0).Episode()))
	require.NoError(t, err)
	owner := map[string]*replica{"a": rs[0], "b": rs[1], "c": rs[2]}[rec.Node]
	rec.State = ha.Running
	require.NoError(t, owner.log.Update(rec))
	for _, r := range rs {
		require.Eventually(t, func() bool {
			got, _, err := r.log.Get(rec.ID)
			return err == nil && got.State == ha.Running
		}, 5*time.Second, 10*time.Millisecond, r.name)
	}
}

// TestPartitionActsOnBothSidesAndHeals: cut {a} from {b, c}; a claim of the
// same run wins on each side (both act: availability over consistency),
// and a cooldown then holds on each side for the key;
// once the cut heals, push/pull makes every log hold the same version, and
// membership comes back whole.
func TestPartitionActsOnBothSidesAndHeals(t *testing.T) {
	nw := &partition{}
	rs := startThree(t, nw)
	a, b, c := rs[0], rs[1], rs[2]
	nw.cut(map[string]int{a.addr: 1, b.addr: 2, c.addr: 2})
	require.Eventually(t, func() bool { return len(a.peer.Members()) == 1 && len(b.peer.Members()) == 2 }, 15*time.Second, 10*time.Millisecond)
	since, gone := b.peer.Gone("a")
	require.True(t, gone)
	require.False(t, since.IsZero())

	t0 := time.Now().UTC()
	al := episode(1, t0)
	_, wonA, err := claimOn(a, al, t0)
	require.NoError(t, err)
	_, wonB, err := claimOn(b, al, t0.Add(time.Millisecond))
	require.NoError(t, err)
	require.True(t, wonA && wonB, "each side acts")
	// The duplicate is bounded by the cooldown: on each side, the next
	// episode for the same key is skipped (cooldown), as each side counts
	// its own run.
	pb := &playbooks.Playbook{Name: "p", Limits: &playbooks.Limits{Cooldown: time.Hour}}
	for _, r := range []*replica{a, b} {
		d, err := engine.Decide(t0.Add(time.Minute), r.log, episode(2, t0), pb)
		require.NoError(t, err)
		require.Equal(t, engine.ReasonCooldown, d.Reason, r.name)
	}

	nw.cut(nil)
	for _, r := range rs {
		require.Eventually(t, func() bool { return len(r.peer.Members()) == 3 }, 15*time.Second, 10*time.Millisecond, r.name)
	}
	id := ha.RunID("p", al.Episode())
	for _, r := range rs {
		require.Eventually(t, func() bool {
			got, _, err := r.log.Get(id)
			return err == nil && got.Node == "a"
		}, 10*time.Second, 10*time.Millisecond, "%s holds the earlier claim", r.name)
	}
}

// TestAloneIsReadyAtOnceAndAsksNoOne: without peers a replica is a cluster
// of one: ready at once, and a claim waits for no one.
func TestAloneIsReadyAtOnceAndAsksNoOne(t *testing.T) {
	r := start(t, "solo", &partition{})
	require.True(t, r.peer.Ready())
	answers, err := r.peer.Ask(context.Background(), []byte("x"))
	require.NoError(t, err)
	require.Empty(t, answers)
	_, won, err := claimOn(r, episode(1, time.Now()), time.Now())
	require.NoError(t, err)
	require.True(t, won)
}

// TestGossipKey: replicas with the same key form a cluster; one with
// another key is not let in.
func TestGossipKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	nw := &partition{}
	a := startKeyed(t, "a", nw, key)
	b := startKeyed(t, "b", nw, key, a.addr)
	require.Eventually(t, func() bool { return len(a.peer.Members()) == 2 && len(b.peer.Members()) == 2 }, 10*time.Second, 10*time.Millisecond)
	c := startKeyed(t, "c", nw, []byte("fedcba9876543210fedcba9876543210"), a.addr)
	require.Never(t, func() bool { return len(a.peer.Members()) > 2 || len(c.peer.Members()) > 1 }, time.Second, 50*time.Millisecond)
}
