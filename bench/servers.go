//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// token is the receiver's bearer token in every generated config.
const token = "bench-token"

// The job label values the generator uses: each picks the playbooks.
const (
	jobTrue      = "node-exporter" // matched by bench-true: one exec of /bin/true per episode
	jobStamp     = "latency"       // matched by bench-stamp: writes when it started
	jobUnmatched = "footprint"     // matched by no playbook: the episode is only tracked
)

// selfhealConfig writes dir/selfheal.yml and dir/playbooks.yaml. The
// bench-stamp step appends "$EPOCHREALTIME $SELFHEAL_LABEL_INSTANCE" to
// stamps, from bash's own clock (no date process to fork).
//
// inboxSize -1 leaves receiver.inbox_size at its default (10000 alerts).
func selfhealConfig(dir, stamps string, inboxSize int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	inbox := `  # Big enough that no run is refused (503) however far the engine is
  # behind: the webhook path is what is measured.
  inbox_size: 1000000
`
	if inboxSize < 0 {
		inbox = ""
	}
	cfg := `receiver:
  bearer_token: ` + token + `
` + inbox + `playbooks:
  files: [playbooks.yaml]
  watch_files: false
engine:
  workers: 4
  queue: 256
  shutdown_grace: 1s
`
	pbs := `playbooks:
  - name: bench-true
    match: ['job="` + jobTrue + `"']
    steps:
      - name: run
        action: exec
        with: { command: [/bin/true] }
  - name: bench-stamp
    match: ['job="` + jobStamp + `"']
    steps:
      - name: stamp
        action: exec
        with:
          command: [/bin/bash, -c, 'echo "$EPOCHREALTIME $SELFHEAL_LABEL_INSTANCE" >> "$STAMPS"']
          env: { STAMPS: ` + strconv.Quote(stamps) + ` }
`
	file := filepath.Join(dir, "selfheal.yml")
	if err := os.WriteFile(filepath.Join(dir, "playbooks.yaml"), []byte(pbs), 0o644); err != nil {
		return "", err
	}
	return file, os.WriteFile(file, []byte(cfg), 0o644)
}

// server is a running receiver and where to post to it.
type server struct {
	*proc
	base    string // http://127.0.0.1:PORT
	webhook target
	storage string
	started time.Time // just before the process was started
	ready   time.Time // first 200 from its readiness endpoint
}

// node is how one selfheal replica is started.
type node struct {
	name    string
	dir     string // holds its config, store and log
	gossip  int    // gossip port; 0: alone (--cluster.listen-address=)
	peers   []int  // gossip ports of the other replicas
	storage string // store folder; default dir/data
	// inboxSize -1: the default inbox; 0: one big enough for any backlog
	inboxSize int
}

// startSelfheal starts a replica and, when wait is set, waits for /-/ready.
func startSelfheal(b binaries, n node, wait bool) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg, err := selfhealConfig(n.dir, filepath.Join(n.dir, "stamps.log"), n.inboxSize)
	if err != nil {
		return nil, err
	}
	if n.storage == "" {
		n.storage = filepath.Join(n.dir, "data")
	}
	args := []string{"serve", "--config.file=" + cfg, "--storage.path=" + n.storage,
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port), "--cluster.name=" + n.name, "--log.level=warn"}
	if n.gossip == 0 {
		args = append(args, "--cluster.listen-address=")
	} else {
		args = append(args, fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", n.gossip), "--cluster.settle-timeout=20s")
		for _, p := range n.peers {
			args = append(args, fmt.Sprintf("--cluster.peer=127.0.0.1:%d", p))
		}
	}
	s := &server{base: fmt.Sprintf("http://127.0.0.1:%d", port), storage: n.storage}
	s.webhook = target{url: s.base + "/api/v1/alerts", token: token}
	s.started = time.Now()
	if s.proc, err = start("selfheal "+n.name, filepath.Join(n.dir, "selfheal.log"), b.selfheal, args...); err != nil {
		return nil, err
	}
	if wait {
		if err := s.waitReady(30 * time.Second); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// waitReady waits for /-/ready to answer 200.
func (s *server) waitReady(timeout time.Duration) error {
	var err error
	s.ready, err = s.waitHTTP(s.base+"/-/ready", timeout)
	return err
}

// startBare starts the perflab bare receiver: it reads the body, decodes
// it with encoding/json into the webhook v4 struct and answers 200.
func startBare(b binaries, dir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &server{base: "http://" + addr}
	s.webhook = target{url: s.base + "/", token: token}
	if s.proc, err = start("minserver", filepath.Join(dir, "minserver.log"), b.minserver, "-addr", addr, "-json", "std", "-mode", "decode"); err != nil {
		return nil, err
	}
	if s.ready, err = s.waitHTTP(s.base+"/stats", 10*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// drained waits until the engine has observed want episodes as new and
// the inbox is empty, or timeout passes; it returns how many it saw.
func (s *server) drained(want float64, timeout time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var seen float64
	for {
		var err error
		seen, err = metric(ctx, s.base, `selfheal_engine_episodes_total{kind="new"}`)
		if err != nil {
			return seen, err
		}
		depth, err := metric(ctx, s.base, "selfheal_inbox_depth")
		if err != nil {
			return seen, err
		}
		if seen >= want && depth == 0 {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return seen, fmt.Errorf("engine saw %.0f of %.0f new episodes (inbox depth %.0f) after %s", seen, want, depth, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
