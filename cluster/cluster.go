// Package cluster is the gossip peer of a selfheal replica, on
// hashicorp/memberlist, as Alertmanager's cluster package is: membership
// and failure detection, changes broadcast at once and relayed on first
// receipt, full state exchanged on join and every push/pull interval, and a
// settle gate for readiness. It adds what a claim needs: asking every live
// member and waiting for their answers. What is exchanged is the State's
// business (the execution log, package ha).
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// State is what the peer keeps in sync between the members.
type State interface {
	// Merge applies a change another member broadcast, and reports
	// whether it was news; news is relayed.
	Merge(msg []byte) (bool, error)
	// Answer handles another member's request (a claim) and returns the
	// answer.
	Answer(req []byte) ([]byte, error)
	// LocalState and MergeState are the full state, for push/pull.
	LocalState() ([]byte, error)
	MergeState(data []byte) error
}

// Defaults, as Alertmanager's.
const (
	DefaultListenAddr       = "0.0.0.0:9596"
	DefaultPeerTimeout      = 15 * time.Second
	DefaultGossipInterval   = 200 * time.Millisecond
	DefaultPushPullInterval = time.Minute
	// DefaultAskTimeout bounds how long a claim waits for the members'
	// answers.
	DefaultAskTimeout = 2 * time.Second
	// DefaultSettleTimeout is how long a member waits for its first full
	// state exchange before it is ready anyway: alone, it has no one to
	// exchange with.
	DefaultSettleTimeout          = 30 * time.Second
	defaultReconnectInterval      = 10 * time.Second
	maxGossipPacketSize           = 1400
	retransmitMultMin             = 3
	kindGossip               byte = 'g'
	kindRequest              byte = 'q'
	kindAnswer               byte = 'a'
)

// Config configures a Peer.
type Config struct {
	// Name is this member's name, unique in the cluster; it is the node
	// name in run records. Default: the hostname.
	Name string
	// ListenAddr is host:port for gossip, TCP and UDP.
	ListenAddr string
	// AdvertiseAddr is host:port the others reach this member at; empty:
	// derived from ListenAddr (a private address when it is 0.0.0.0).
	AdvertiseAddr string
	// Peers are host:port of members to join; a DNS name is resolved to
	// all its addresses (a headless Service), again at every reconnect.
	Peers []string
	// PeerTimeout is how long a member that left is waited for before its
	// unfinished runs are taken over.
	PeerTimeout      time.Duration
	GossipInterval   time.Duration
	PushPullInterval time.Duration
	// AskTimeout bounds each Ask; SettleTimeout the wait for the first
	// full state exchange.
	AskTimeout    time.Duration
	SettleTimeout time.Duration
	// ProbeInterval and ProbeTimeout tune failure detection; zero:
	// memberlist's LAN defaults (1s, 500ms).
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// ReconnectInterval is how often configured peers that are not
	// members are joined again; zero: 10s.
	ReconnectInterval time.Duration
	// SecretKey, 16, 24 or 32 bytes, encrypts gossip (AES-GCM); empty:
	// none.
	SecretKey []byte
	// Transport replaces memberlist's network transport (tests).
	Transport memberlist.Transport
	Logger    *slog.Logger
	// Registerer gets the peer's metrics; nil: none.
	Registerer prometheus.Registerer
}

// Peer is this replica's member of the cluster.
type Peer struct {
	cfg   Config
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	state State
	lg    *slog.Logger
	m     *metrics

	started time.Time
	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan []byte
	left    map[string]time.Time // members that left, and when
	// nodes are copies of the members joined and not left, taken in
	// memberlist's callbacks: the *Node that memberlist.Members returns
	// is written by memberlist while it is read.
	nodes map[string]memberlist.Node

	settleOnce sync.Once
	settled    chan struct{}
	stop       chan struct{}
	wg         sync.WaitGroup
}

// Create starts the member: it listens, and joins cfg.Peers in the
// background until it has (Join). It is ready (Ready) once it has
// exchanged full state with a member, or at once without peers.
func Create(cfg Config, st State) (*Peer, error) {
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster: no --cluster.name and no hostname: %w", err)
		}
		cfg.Name = h
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = DefaultListenAddr
	}
	defaults := []struct {
		v *time.Duration
		d time.Duration
	}{
		{&cfg.PeerTimeout, DefaultPeerTimeout},
		{&cfg.GossipInterval, DefaultGossipInterval},
		{&cfg.PushPullInterval, DefaultPushPullInterval},
		{&cfg.AskTimeout, DefaultAskTimeout},
		{&cfg.SettleTimeout, DefaultSettleTimeout},
		{&cfg.ReconnectInterval, defaultReconnectInterval},
	}
	for _, d := range defaults {
		if *d.v <= 0 {
			*d.v = d.d
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bindHost, bindPort, err := splitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: --cluster.listen-address %q: %w", cfg.ListenAddr, err)
	}
	p := &Peer{
		cfg: cfg, state: st, lg: cfg.Logger.With("component", "cluster"),
		m:       newMetrics(cfg.Registerer),
		started: time.Now(), pending: map[uint64]chan []byte{}, left: map[string]time.Time{}, nodes: map[string]memberlist.Node{},
		settled: make(chan struct{}), stop: make(chan struct{}),
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr, mc.BindPort = bindHost, bindPort
	mc.AdvertisePort = bindPort
	if cfg.AdvertiseAddr != "" {
		host, port, err := splitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: --cluster.advertise-address %q: %w", cfg.AdvertiseAddr, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	if cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.ProbeTimeout
	}
	mc.TCPTimeout = 10 * time.Second
	mc.UDPBufferSize = maxGossipPacketSize
	mc.GossipNodes = max(len(cfg.Peers)/2, retransmitMultMin)
	mc.RetransmitMult = mc.GossipNodes
	mc.Delegate = (*delegate)(p)
	mc.Events = (*events)(p)
	mc.LogOutput = &logWriter{lg: p.lg}
	if len(cfg.SecretKey) > 0 {
		mc.SecretKey = cfg.SecretKey
	}
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	p.queue = &memberlist.TransmitLimitedQueue{NumNodes: p.numMembers, RetransmitMult: mc.RetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.ListenAddr, err)
	}
	p.ml = ml
	if len(cfg.Peers) == 0 {
		p.settle("no peers: a cluster of one")
	} else {
		p.wg.Go(p.joinLoop)
	}
	p.wg.Go(p.settleTimeout)
	return p, nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", port)
	}
	return host, n, nil
}

// Name is this member's name.
func (p *Peer) Name() string { return p.cfg.Name }

// PeerTimeout is Config.PeerTimeout.
func (p *Peer) PeerTimeout() time.Duration { return p.cfg.PeerTimeout }

func (p *Peer) numMembers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.nodes)
}

// joinLoop joins the configured peers, then again every reconnect
// interval those that are not members (a peer that restarted, or that
// was not up yet), resolving their names each time.
func (p *Peer) joinLoop() {
	t := time.NewTicker(p.cfg.ReconnectInterval)
	defer t.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	joined := false
	for {
		select {
		case <-p.stop:
			return
		case <-retry.C:
		case <-t.C:
		}
		missing := p.missingPeers()
		if len(missing) == 0 {
			joined = true
			continue
		}
		n, err := p.ml.Join(missing)
		switch {
		case n > 0:
			if !joined {
				p.lg.Info("joined the cluster", "contacted", n, "members", p.numMembers())
			}
			joined = true
		case err != nil && !joined:
			p.lg.Warn("could not join any peer yet; retrying", "peers", p.cfg.Peers, "err", err)
			retry.Reset(time.Second) // faster until the first join
		}
	}
}

// missingPeers are the configured peers no member is at.
func (p *Peer) missingPeers() []string {
	have := map[string]bool{}
	for _, n := range p.members() {
		have[n.Address()] = true
	}
	var out []string
	for _, peer := range p.cfg.Peers {
		host, port, err := net.SplitHostPort(peer)
		if err != nil {
			continue
		}
		ips, err := net.LookupIP(host)
		if err != nil {
			out = append(out, peer) // memberlist says why
			continue
		}
		for _, ip := range ips {
			if a := net.JoinHostPort(ip.String(), port); !have[a] && a != p.selfAddr() {
				out = append(out, peer)
				break
			}
		}
	}
	return out
}

func (p *Peer) selfAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.nodes[p.cfg.Name]
	return n.Address()
}

func (p *Peer) settle(why string) {
	p.settleOnce.Do(func() {
		p.m.settled.Set(1)
		p.lg.Info("cluster settled", "why", why, "members", p.numMembers(), "after", time.Since(p.started).Round(time.Millisecond))
		close(p.settled)
	})
}

func (p *Peer) settleTimeout() {
	t := time.NewTimer(p.cfg.SettleTimeout)
	defer t.Stop()
	select {
	case <-p.stop:
	case <-p.settled:
	case <-t.C:
		p.settle(fmt.Sprintf("no full state exchange within %s; ready with what is on disk", p.cfg.SettleTimeout))
	}
}

// Ready reports whether the member has settled: it exchanged full state
// with a member, has no peers, or waited SettleTimeout.
func (p *Peer) Ready() bool {
	select {
	case <-p.settled:
		return true
	default:
		return false
	}
}

// WaitReady waits until Ready or ctx ends.
func (p *Peer) WaitReady(ctx context.Context) error {
	select {
	case <-p.settled:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Member is a member of the cluster, as Status shows it.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`
	Self    bool   `json:"self,omitempty"`
}

// members returns copies of the members, this one included.
func (p *Peer) members() []*memberlist.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*memberlist.Node, 0, len(p.nodes))
	for _, n := range p.nodes {
		out = append(out, &n)
	}
	return out
}

// Members returns the members that joined and have not left (alive, or
// suspect), by name.
func (p *Peer) Members() []Member {
	var out []Member
	for _, n := range p.members() {
		out = append(out, Member{Name: n.Name, Address: n.Address(), State: stateName(n.State), Self: n.Name == p.cfg.Name})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

// Gone reports whether no member is named name, and since when: when it
// left, or, for a name this member never saw (a replica that ran before
// it started), when this member started.
func (p *Peer) Gone(name string) (time.Time, bool) {
	if name == p.cfg.Name {
		return time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.nodes[name]; ok {
		return time.Time{}, false
	}
	if at, ok := p.left[name]; ok {
		return at, true
	}
	return p.started, true
}

// Broadcast sends msg to every member: by gossip when it fits a packet,
// else over TCP to each.
func (p *Peer) Broadcast(msg []byte) {
	data := append([]byte{kindGossip}, msg...)
	p.m.sent.WithLabelValues("gossip").Inc()
	if len(data) <= maxGossipPacketSize/2 {
		p.queue.QueueBroadcast(broadcast(data))
		return
	}
	for _, n := range p.others() {
		go func() {
			if err := p.ml.SendReliable(n, data); err != nil {
				p.lg.Debug("send a change over TCP", "to", n.Name, "err", err)
			}
		}()
	}
}

func (p *Peer) others() []*memberlist.Node {
	var out []*memberlist.Node
	for _, n := range p.members() {
		if n.Name != p.cfg.Name && n.State == memberlist.StateAlive {
			out = append(out, n)
		}
	}
	return out
}

// Ask sends req to every other live member and returns their answers, as
// they come, until all answered, ctx ended or AskTimeout passed. Alone, it
// returns at once.
func (p *Peer) Ask(ctx context.Context, req []byte) ([][]byte, error) {
	others := p.others()
	if len(others) == 0 {
		return nil, nil
	}
	start := time.Now()
	defer func() { p.m.askDuration.Observe(time.Since(start).Seconds()) }()
	id := p.nextID.Add(1)
	ch := make(chan []byte, len(others))
	p.mu.Lock()
	p.pending[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}()
	var hdr bytes.Buffer
	hdr.WriteByte(kindRequest)
	hdr.Write(binary.BigEndian.AppendUint64(nil, id))
	hdr.WriteByte(byte(len(p.cfg.Name)))
	hdr.WriteString(p.cfg.Name)
	data := append(hdr.Bytes(), req...)
	for _, n := range others {
		go func() {
			if err := p.ml.SendReliable(n, data); err != nil {
				p.lg.Debug("ask a member", "to", n.Name, "err", err)
			}
		}()
	}
	p.m.sent.WithLabelValues("request").Add(float64(len(others)))
	t := time.NewTimer(p.cfg.AskTimeout)
	defer t.Stop()
	var out [][]byte
	for len(out) < len(others) {
		select {
		case a := <-ch:
			out = append(out, a)
		case <-t.C:
			p.m.askTimeouts.Inc()
			p.lg.Warn("members did not answer a claim in time; going on without them",
				"answered", len(out), "asked", len(others), "timeout", p.cfg.AskTimeout)
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}

// answer handles a request from another member, off memberlist's
// goroutine: an fsync must not hold up gossip.
func (p *Peer) answer(msg []byte) {
	if len(msg) < 9 {
		return
	}
	id := msg[:8]
	n := int(msg[8])
	if len(msg) < 9+n {
		return
	}
	from, req := string(msg[9:9+n]), msg[9+n:]
	ans, err := p.state.Answer(req)
	if err != nil {
		p.lg.Warn("answer a member's claim", "from", from, "err", err)
		return
	}
	for _, node := range p.members() {
		if node.Name == from {
			data := append(append([]byte{kindAnswer}, id...), ans...)
			p.m.sent.WithLabelValues("answer").Inc()
			if err := p.ml.SendReliable(node, data); err != nil {
				p.lg.Debug("answer a member", "to", from, "err", err)
			}
			return
		}
	}
}

// Leave tells the others this member goes, and stops it.
func (p *Peer) Leave(timeout time.Duration) error {
	close(p.stop)
	err := p.ml.Leave(timeout)
	p.wg.Wait()
	return errors.Join(err, p.ml.Shutdown())
}

// broadcast is a change in the gossip queue; each is its own message.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}
func (b broadcast) UniqueBroadcast()                      {}

// delegate is the Peer as memberlist's Delegate.
type delegate Peer

func (d *delegate) NodeMeta(int) []byte { return nil }

func (d *delegate) NotifyMsg(msg []byte) {
	p := (*Peer)(d)
	if len(msg) == 0 {
		return
	}
	body := slices.Clone(msg[1:])
	switch msg[0] {
	case kindGossip:
		p.m.received.WithLabelValues("gossip").Inc()
		news, err := p.state.Merge(body)
		if err != nil {
			p.lg.Warn("merge a change from a member", "err", err)
			return
		}
		if news { // relay on first receipt: gossip alone misses members
			data := append([]byte{kindGossip}, body...)
			if len(data) <= maxGossipPacketSize/2 {
				p.queue.QueueBroadcast(broadcast(data))
			}
		}
	case kindRequest:
		p.m.received.WithLabelValues("request").Inc()
		go p.answer(body)
	case kindAnswer:
		p.m.received.WithLabelValues("answer").Inc()
		if len(body) < 8 {
			return
		}
		id := binary.BigEndian.Uint64(body[:8])
		p.mu.Lock()
		ch := p.pending[id]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- body[8:]:
			default:
			}
		}
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return (*Peer)(d).queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(bool) []byte {
	p := (*Peer)(d)
	data, err := p.state.LocalState()
	if err != nil {
		p.lg.Error("full state for a push/pull", "err", err)
		return nil
	}
	p.m.fullStateBytes.Set(float64(len(data)))
	return data
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	p := (*Peer)(d)
	if len(buf) == 0 {
		return
	}
	if err := p.state.MergeState(buf); err != nil {
		p.lg.Error("merge a member's full state", "err", err)
		return
	}
	p.m.pushPulls.Inc()
	p.settle("exchanged full state with a member")
}

// events is the Peer as memberlist's EventDelegate.
type events Peer

func (e *events) NotifyJoin(n *memberlist.Node) {
	p := (*Peer)(e)
	p.mu.Lock()
	delete(p.left, n.Name)
	p.nodes[n.Name] = *n
	p.m.members.Set(float64(len(p.nodes)))
	p.mu.Unlock()
	if n.Name != p.cfg.Name {
		p.lg.Info("member joined", "member", n.Name, "address", n.Address())
	}
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	p := (*Peer)(e)
	p.mu.Lock()
	p.left[n.Name] = time.Now()
	delete(p.nodes, n.Name)
	p.m.members.Set(float64(len(p.nodes)))
	p.mu.Unlock()
	p.lg.Warn("member left", "member", n.Name, "address", n.Address())
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	p := (*Peer)(e)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.nodes[n.Name]; ok {
		p.nodes[n.Name] = *n
	}
}

// logWriter turns memberlist's log lines ("[DEBUG] memberlist: ...") into
// slog records at their level.
type logWriter struct{ lg *slog.Logger }

func (w *logWriter) Write(b []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		// The standard logger's date and time come first.
		if i := strings.Index(line, "["); i >= 0 {
			line = line[i:]
		}
		level := slog.LevelDebug
		switch {
		case strings.HasPrefix(line, "[ERR]"):
			level = slog.LevelError
		case strings.HasPrefix(line, "[WARN]"):
			level = slog.LevelWarn
		case strings.HasPrefix(line, "[INFO]"):
			level = slog.LevelInfo
		}
		if _, msg, ok := strings.Cut(line, "] "); ok {
			line = msg
		}
		w.lg.Log(context.Background(), level, line)
	}
	return len(b), nil
}

var _ io.Writer = (*logWriter)(nil)
