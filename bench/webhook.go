//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// abRun is one throughput measurement of one server.
type abRun struct {
	Server      string        `json:"server"` // selfheal or bare
	Alerts      int           `json:"alerts"` // per payload
	Rep         int           `json:"rep"`
	RPS         float64       `json:"rps"`
	AlertsPS    float64       `json:"alertsPerSecond"`
	P50, P99    time.Duration `json:"-"`
	P50ms       float64       `json:"p50Ms"`
	P99ms       float64       `json:"p99Ms"`
	OK          int           `json:"ok"`
	Rejected503 int           `json:"rejected503"`
	Failed      int           `json:"failed"`
	// CPUPerReq is the server's own CPU time (user+sys) per 2xx answer
	// over the measurement, from /proc/PID/stat.
	CPUPerReq time.Duration `json:"cpuPerRequest"`
	// EngineNew is how many alerts the engine had classified as new
	// episodes when the measurement ended, of OK*Alerts accepted (warm-up
	// included); InboxDepth how many were still waiting.
	EngineNew  float64 `json:"engineNew,omitempty"`
	InboxDepth float64 `json:"inboxDepth,omitempty"`
	Accepted   float64 `json:"accepted,omitempty"`
}

// throughput alternates selfheal (A) and the bare receiver (B), reps
// times for each payload size, with the same closed-loop generator. Each
// selfheal run has a fresh store, so every run measures the same state.
func throughput(o options, b binaries, r *report) error {
	bare, err := startBare(b, o.dir("bare"))
	if err != nil {
		return err
	}
	defer bare.stop()
	g := &Generator{Job: jobUnmatched}
	for _, n := range []int{1, 100} {
		for rep := 1; rep <= o.reps; rep++ {
			sh, err := startSelfheal(b, node{name: "n1", dir: o.dir(fmt.Sprintf("tput-%d-%d", n, rep))}, true)
			if err != nil {
				return err
			}
			a, err := measureOne(o, g, sh, "selfheal", n, rep)
			sh.stop()
			if err != nil {
				return err
			}
			r.Throughput = append(r.Throughput, a)
			bb, err := measureOne(o, g, bare, "bare", n, rep)
			if err != nil {
				return err
			}
			r.Throughput = append(r.Throughput, bb)
			progress("%3d alerts rep %d: selfheal %6.0f req/s p99 %6.2f ms (503: %d, engine %.0f%% behind) | bare %6.0f req/s p99 %6.2f ms",
				n, rep, a.RPS, a.P99ms, a.Rejected503, 100*(1-a.EngineNew/max(a.Accepted, 1)), bb.RPS, bb.P99ms)
		}
	}
	// Once more per size with every alert running a playbook (/bin/true):
	// the engine then forks and records a run per alert, on the same 2
	// cores, and never keeps up.
	runs := &Generator{Job: jobTrue}
	for _, n := range []int{1, 100} {
		sh, err := startSelfheal(b, node{name: "n1", dir: o.dir(fmt.Sprintf("tput-runs-%d", n))}, true)
		if err != nil {
			return err
		}
		a, err := measureOne(o, runs, sh, serverRuns, n, 1)
		sh.stop()
		if err != nil {
			return err
		}
		r.Throughput = append(r.Throughput, a)
		progress("%3d alerts, every alert runs /bin/true: selfheal %6.0f req/s p99 %6.2f ms (503: %d, engine %.0f%% behind)",
			n, a.RPS, a.P99ms, a.Rejected503, 100*(1-a.EngineNew/max(a.Accepted, 1)))
	}
	return loadgenCheck(o, b, bare, r)
}

// serverRuns names the throughput runs of selfheal in which a playbook
// matches every alert.
const serverRuns = "selfheal, every alert runs /bin/true"

// measureOne runs the closed loop against s once.
func measureOne(o options, g *Generator, s *server, name string, n, rep int) (abRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.measure+time.Minute)
	defer cancel()
	cpu0, err := cpuTime(s.pid())
	if err != nil {
		return abRun{}, err
	}
	served0, err := s.served(ctx)
	if err != nil {
		return abRun{}, err
	}
	res, err := closedLoop(s.webhook, g, n, o.conns, o.warmup, o.measure, 2_000_000, false)
	if err != nil {
		return abRun{}, err
	}
	if res.Failed > 0 {
		return abRun{}, fmt.Errorf("%s: %d requests failed, first: %s", name, res.Failed, res.FirstErr)
	}
	cpu1, err := cpuTime(s.pid())
	if err != nil {
		return abRun{}, err
	}
	served1, err := s.served(ctx)
	if err != nil {
		return abRun{}, err
	}
	a := abRun{Server: name, Alerts: n, Rep: rep, RPS: res.rps(), AlertsPS: res.rps() * float64(n),
		P50: res.pct(0.50), P99: res.pct(0.99), OK: res.OK, Rejected503: res.Rejected503}
	a.P50ms, a.P99ms = ms(a.P50), ms(a.P99)
	// Warm-up included on both sides: CPU over the whole run, divided by
	// every request the server answered in it.
	a.CPUPerReq = (cpu1 - cpu0) / time.Duration(max(served1-served0, 1))
	if name != "bare" {
		if a.EngineNew, err = metric(ctx, s.base, `selfheal_engine_episodes_total{kind="new"}`); err != nil {
			return a, err
		}
		if a.InboxDepth, err = metric(ctx, s.base, "selfheal_inbox_depth"); err != nil {
			return a, err
		}
		if a.Accepted, err = metric(ctx, s.base, "selfheal_receiver_alerts_accepted_total"); err != nil {
			return a, err
		}
	}
	return a, nil
}

// served is how many webhook requests s has answered so far: selfheal's
// received counter, or the bare receiver's /stats.
func (s *server) served(ctx context.Context) (int64, error) {
	if !strings.HasSuffix(s.webhook.url, "/api/v1/alerts") {
		return bareRequests(ctx, s.base)
	}
	v, err := metric(ctx, s.base, "selfheal_receiver_notifications_received_total")
	return int64(v), err
}

// bareRequests reads "requests N" from the bare receiver's /stats.
func bareRequests(ctx context.Context, base string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stats", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "requests "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s/stats: no requests line in %q", base, b)
}

// loadgenCheck runs perflab's own loadgen (one fixed body from genpayload)
// against the bare receiver: the ceiling it reports is the yardstick our
// generator, which builds a fresh payload per request, is compared with.
func loadgenCheck(o options, b binaries, bare *server, r *report) error {
	for _, n := range []int{1, 100} {
		body := filepath.Join(o.work, fmt.Sprintf("payload-%d.json", n))
		if out, err := exec.Command(b.genpayload, "-n", fmt.Sprint(n), "-o", body).CombinedOutput(); err != nil {
			return fmt.Errorf("genpayload: %v: %s", err, out)
		}
		out, err := exec.Command(b.loadgen, "-url", bare.webhook.url, "-body", body, "-c", fmt.Sprint(o.conns),
			"-d", o.measure.String(), "-warmup", o.warmup.String(), "-n", "2000000", "-alerts", fmt.Sprint(n),
			"-label", fmt.Sprintf("loadgen-bare-%d", n)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("loadgen: %v: %s", err, out)
		}
		line := strings.TrimSpace(string(out))
		progress("%s", line)
		r.LoadgenBare = append(r.LoadgenBare, line)
	}
	return nil
}

// fixedResult is the open-loop measurement at a fixed rate.
type fixedResult struct {
	Rate            float64 `json:"rate"`
	Achieved        float64 `json:"achieved"`
	Requests        int     `json:"requests"`
	Rejected503     int     `json:"rejected503"`
	P50ms, P99ms    float64
	P999ms, Maxms   float64
	Playbook        string  `json:"playbook"`
	EngineNew       float64 `json:"engineNew"`
	Accepted        float64 `json:"accepted"`
	RunsAtEnd       float64 `json:"runsAtEnd"`
	InboxDepthAtEnd float64 `json:"inboxDepthAtEnd"`
}

// fixedRate posts 1-alert payloads at 1000 requests/s for 10 s to a fresh
// selfheal, twice: alerts no playbook matches (the webhook alone), then
// alerts that each run /bin/true (a storm: the engine works meanwhile).
func fixedRate(o options, b binaries, r *report) error {
	for _, job := range []string{jobUnmatched, jobTrue} {
		sh, err := startSelfheal(b, node{name: "n1", dir: o.dir("fixed-" + job)}, true)
		if err != nil {
			return err
		}
		res, err := openLoop([]target{sh.webhook}, &Generator{Job: job}, 1000, 10*time.Second, 64, nil)
		if err != nil {
			sh.stop()
			return err
		}
		f := fixedResult{Rate: 1000, Achieved: float64(res.OK+res.Rejected503+res.Failed) / res.Elapsed.Seconds(),
			Requests: res.OK, Rejected503: res.Rejected503,
			P50ms: ms(res.pct(0.5)), P99ms: ms(res.pct(0.99)), P999ms: ms(res.pct(0.999)), Maxms: ms(res.pct(1)), Playbook: job}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		f.EngineNew, _ = metric(ctx, sh.base, `selfheal_engine_episodes_total{kind="new"}`)
		f.Accepted, _ = metric(ctx, sh.base, "selfheal_receiver_alerts_accepted_total")
		f.RunsAtEnd, _ = metric(ctx, sh.base, "selfheal_engine_runs_total")
		f.InboxDepthAtEnd, _ = metric(ctx, sh.base, "selfheal_inbox_depth")
		cancel()
		sh.stop()
		if res.Failed > 0 {
			return fmt.Errorf("%d requests failed, first: %s", res.Failed, res.FirstErr)
		}
		r.Fixed = append(r.Fixed, f)
		progress("1k req/s (%s): p50 %.2f ms p99 %.2f ms p99.9 %.2f ms max %.2f ms, 503: %d, engine: %.0f new of %.0f, %.0f runs",
			job, f.P50ms, f.P99ms, f.P999ms, f.Maxms, f.Rejected503, f.EngineNew, f.Accepted, f.RunsAtEnd)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// removeAll removes a scratch folder left by an earlier run.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	return nil
}
