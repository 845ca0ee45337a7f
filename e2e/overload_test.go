package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rssBytes reads a process's resident set size from /proc.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// stormRSSBound is the most memory selfheal may hold during the storm.
const stormRSSBound = 256 << 20

// TestStormAgainstASmallInbox: 100k distinct alerts, in 100-alert
// payloads, are sent as fast as 16 connections can against a selfheal whose
// inbox holds 1000 alerts. Its RSS stays under 256 MiB; what does not fit
// is answered 503; every alert answered 202 is processed, exactly (the
// engine's count of new episodes equals the 2xx count); afterwards it
// takes alerts again.
func TestStormAgainstASmallInbox(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), "receiver:\n  bearer_token_file: token\n  inbox_size: 1000\nplaybooks:\n  files: [playbooks/*.yaml]\n")
	// A playbook that matches none of the storm: the storm measures intake,
	// episodes and backpressure, not exec.
	writeFile(t, filepath.Join(dir, "playbooks", "p.yaml"), "playbooks:\n  - name: other\n    match: ['alertname=\"Other\"']\n    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]\n")
	d := startSelfheal(t, dir, filepath.Join(dir, "data"), freePort(t))
	payloads := stormPayloads(t, 100_000, 100)

	var maxRSS atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := rssBytes(d.cmd.Process.Pid); err == nil && rss > maxRSS.Load() {
				maxRSS.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	var accepted, full, other atomic.Int64
	work := make(chan []byte)
	var wg sync.WaitGroup
	began := time.Now()
	for range 16 {
		wg.Go(func() {
			for p := range work {
				code, err := d.tryPost(p)
				switch {
				case err == nil && code == 202:
					accepted.Add(100)
				case err == nil && code == 503:
					full.Add(100)
				default:
					other.Add(100)
				}
			}
		})
	}
	for _, p := range payloads {
		work <- p
	}
	close(work)
	wg.Wait()
	sent := time.Since(began)
	eventually(t, 120*time.Second, "the inbox to drain", func() bool {
		return metric(t, d.url, "selfheal_inbox_depth", nil) == 0 &&
			metric(t, d.url, "selfheal_engine_episodes_total", map[string]string{"kind": "new"}) >= float64(accepted.Load())
	})
	close(stop)
	sampler.Wait()
	t.Logf("100000 alerts sent in %s: %d answered 202, %d answered 503, %d other; max RSS %d MiB",
		sent.Round(time.Millisecond), accepted.Load(), full.Load(), other.Load(), maxRSS.Load()>>20)
	require.Zero(t, other.Load(), "every answer is 202 or 503")
	require.Positive(t, full.Load(), "a full inbox answers 503")
	require.Positive(t, accepted.Load())
	require.Equal(t, float64(accepted.Load()), metric(t, d.url, "selfheal_engine_episodes_total", map[string]string{"kind": "new"}),
		"every alert answered 202 is processed, exactly once")
	require.Equal(t, float64(accepted.Load()), metric(t, d.url, "selfheal_receiver_alerts_accepted_total", nil))
	require.Less(t, maxRSS.Load(), int64(stormRSSBound), "RSS bound")

	// It recovers: a new alert is taken and processed.
	require.Equal(t, 202, d.postAlerts(t, withAlertname(t, "Other"), token))
	eventually(t, 10*time.Second, "the run after the storm", func() bool {
		return metric(t, d.url, "selfheal_engine_runs_total", map[string]string{"playbook": "other", "outcome": "succeeded"}) == 1
	})
}
