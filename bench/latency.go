//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// actionResult is the alert-to-action latency of one setup: from just
// before the POST to the moment the exec step's bash read its clock.
type actionResult struct {
	Nodes       int     `json:"nodes"`
	Rate        float64 `json:"rate"`
	Sent        int     `json:"sent"`
	Started     int     `json:"started"`    // distinct episodes whose step ran
	Duplicates  int     `json:"duplicates"` // episodes whose step ran more than once
	P50ms       float64 `json:"p50Ms"`
	P99ms       float64 `json:"p99Ms"`
	Maxms       float64 `json:"maxMs"`
	WebhookP99  float64 `json:"webhookP99Ms"`
	SettleS     float64 `json:"settleS,omitempty"` // 3 nodes: start to all ready
	SpawnP50ms  float64 `json:"spawnP50Ms"`        // bash started from Go, same stamp
	Rejected503 int     `json:"rejected503"`
	// Medians of where the time goes, from the run records' own times:
	// POST to claimedAt, claimedAt to the step's startedAt, that to bash.
	ToClaimMs, ToStepMs, ToProcessMs float64
}

const (
	actionRate = 100 // alerts/s: latency, not saturation
	actionDur  = 10 * time.Second
)

func actionLatency1(o options, b binaries, r *report) error {
	return actionLatency(o, b, r, 1)
}

func actionLatency3(o options, b binaries, r *report) error {
	return actionLatency(o, b, r, 3)
}

// actionLatency starts n replicas (a cluster when n > 1), posts every
// 1-alert payload to all of them at once, as an HA Alertmanager pair
// does, and reads the stamps the exec steps wrote.
func actionLatency(o options, b binaries, r *report, n int) error {
	nodes, err := replicas(o, n)
	if err != nil {
		return err
	}
	res := actionResult{Nodes: n, Rate: actionRate}
	servers, err := startReplicas(b, nodes, &res)
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	if err != nil {
		return err
	}
	targets := make([]target, n)
	for i, s := range servers {
		targets[i] = s.webhook
	}
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	load, err := openLoop(targets, &Generator{Job: jobStamp}, actionRate, actionDur, 32, func(inst string, at time.Time) {
		mu.Lock()
		sentAt[inst] = at
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	if load.Failed > 0 {
		return fmt.Errorf("%d requests failed, first: %s", load.Failed, load.FirstErr)
	}
	res.Sent, res.Rejected503, res.WebhookP99 = len(sentAt), load.Rejected503, ms(load.pct(0.99))
	stamps, err := waitStamps(nodes, len(sentAt), 20*time.Second)
	if err != nil {
		return err
	}
	first := score(&res, stamps, sentAt)
	if err := breakdown(&res, servers[0], sentAt, first); err != nil {
		return err
	}
	if res.SpawnP50ms, err = spawnCost(); err != nil {
		return err
	}
	r.Action = append(r.Action, res)
	progress("%d node(s): %d sent, %d started, %d duplicates; alert->action p50 %.2f ms p99 %.2f ms max %.2f ms; medians: POST->claimed %.2f, ->step %.2f, ->bash %.2f ms (bash spawn alone: %.2f ms)",
		n, res.Sent, res.Started, res.Duplicates, res.P50ms, res.P99ms, res.Maxms, res.ToClaimMs, res.ToStepMs, res.ToProcessMs, res.SpawnP50ms)
	if res.Started < res.Sent {
		return fmt.Errorf("%d of %d episodes never started their step", res.Sent-res.Started, res.Sent)
	}
	return nil
}

// replicas describes n replicas; with n > 1, each gossips on a port of
// its own and has the others as peers.
func replicas(o options, n int) ([]node, error) {
	nodes := make([]node, n)
	ports := make([]int, n)
	for i := range nodes {
		nodes[i] = node{name: fmt.Sprintf("n%d", i+1), dir: o.dir(fmt.Sprintf("action-%d-n%d", n, i+1))}
		if n > 1 {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			ports[i] = p
		}
	}
	for i := range nodes {
		if n == 1 {
			break
		}
		nodes[i].gossip = ports[i]
		for j, p := range ports {
			if j != i {
				nodes[i].peers = append(nodes[i].peers, p)
			}
		}
	}
	return nodes, nil
}

// startReplicas starts every node at once and waits until each is ready
// and, for a cluster, sees them all; it returns the servers started, also
// on failure, for the caller to stop.
func startReplicas(b binaries, nodes []node, res *actionResult) ([]*server, error) {
	t0 := time.Now()
	var servers []*server
	for _, nd := range nodes {
		s, err := startSelfheal(b, nd, false)
		if err != nil {
			return servers, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		if err := s.waitReady(40 * time.Second); err != nil {
			return servers, err
		}
	}
	if len(nodes) > 1 {
		res.SettleS = time.Since(t0).Seconds()
		if err := waitMembers(servers, len(nodes), 20*time.Second); err != nil {
			return servers, err
		}
		progress("%d replicas ready (settled) %.2fs after they were started; each sees %d members", len(nodes), res.SettleS, len(nodes))
	}
	return servers, nil
}

// score sets the latencies and the duplicates in res from the stamps, and
// returns when each episode's step first ran.
func score(res *actionResult, stamps []stamp, sentAt map[string]time.Time) map[string]time.Time {
	var lats []time.Duration
	first := map[string]time.Time{}
	count := map[string]int{}
	for _, st := range stamps {
		count[st.inst]++
		if count[st.inst] > 1 {
			continue
		}
		first[st.inst] = st.at
		if at, ok := sentAt[st.inst]; ok {
			lats = append(lats, st.at.Sub(at))
		}
	}
	for _, c := range count {
		if c > 1 {
			res.Duplicates++
		}
	}
	res.Started = len(lats)
	slices.Sort(lats)
	lr := loadResult{Lat: lats}
	res.P50ms, res.P99ms, res.Maxms = ms(lr.pct(0.5)), ms(lr.pct(0.99)), ms(lr.pct(1))
	return first
}

// breakdown reads the run records (every replica holds the whole log)
// and sets the medians of where the time went.
func breakdown(res *actionResult, s *server, sentAt, stamped map[string]time.Time) error {
	req, err := http.NewRequest(http.MethodGet, s.base+"/api/v1/runs?limit=1000", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Runs []struct {
			Alert     struct{ Labels map[string]string }
			ClaimedAt time.Time
			Steps     []struct{ StartedAt time.Time }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET /api/v1/runs: %w", err)
	}
	var claim, step, proc []float64
	for _, rn := range body.Runs {
		inst := rn.Alert.Labels["instance"]
		sent, ok1 := sentAt[inst]
		ran, ok2 := stamped[inst]
		if !ok1 || !ok2 || len(rn.Steps) == 0 {
			continue
		}
		claim = append(claim, ms(rn.ClaimedAt.Sub(sent)))
		step = append(step, ms(rn.Steps[0].StartedAt.Sub(rn.ClaimedAt)))
		proc = append(proc, ms(ran.Sub(rn.Steps[0].StartedAt)))
	}
	res.ToClaimMs, res.ToStepMs, res.ToProcessMs = median(claim), median(step), median(proc)
	return nil
}

// waitMembers waits until every server counts n cluster members alive.
func waitMembers(servers []*server, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range servers {
		for {
			got, err := metric(ctx, s.base, "selfheal_cluster_members")
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if int(got) == n {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s sees %.0f cluster members, want %d, after %s", s.name, got, n, timeout)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

type stamp struct {
	inst string
	at   time.Time
}

// waitStamps reads the nodes' stamp files until want distinct episodes
// are in them or timeout passes.
func waitStamps(nodes []node, want int, timeout time.Duration) ([]stamp, error) {
	deadline := time.Now().Add(timeout)
	for {
		var all []stamp
		distinct := map[string]bool{}
		for _, nd := range nodes {
			st, err := readStamps(filepath.Join(nd.dir, "stamps.log"))
			if err != nil {
				return nil, err
			}
			for _, s := range st {
				distinct[s.inst] = true
			}
			all = append(all, st...)
		}
		if len(distinct) >= want || time.Now().After(deadline) {
			return all, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readStamps parses "SECONDS.MICROS INSTANCE" lines; a missing file is none.
func readStamps(path string) ([]stamp, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []stamp
	s := bufio.NewScanner(f)
	for s.Scan() {
		ts, inst, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue // a line being written
		}
		at, err := parseEpochRealtime(ts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, stamp{inst: inst, at: at})
	}
	return out, s.Err()
}

// parseEpochRealtime parses bash's $EPOCHREALTIME: seconds, a point, microseconds.
func parseEpochRealtime(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 6 {
		return time.Time{}, fmt.Errorf("not an EPOCHREALTIME: %q", s)
	}
	si, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(si, us*1000), nil
}

// spawnCost is what starting the step's bash costs by itself: from just
// before a Go exec.Cmd.Start to the same $EPOCHREALTIME read, median of 50.
func spawnCost() (float64, error) {
	var lats []time.Duration
	for range 50 {
		cmd := exec.Command("/bin/bash", "-c", `echo "$EPOCHREALTIME"`)
		t0 := time.Now()
		out, err := cmd.Output()
		if err != nil {
			return 0, fmt.Errorf("bash: %w", err)
		}
		at, err := parseEpochRealtime(strings.TrimSpace(string(out)))
		if err != nil {
			return 0, err
		}
		lats = append(lats, at.Sub(t0))
	}
	slices.Sort(lats)
	return ms(lats[len(lats)/2]), nil
}
