//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report holds every figure of one harness run.
type report struct {
	Machine     machineInfo       `json:"machine"`
	Settings    settings          `json:"settings"`
	Throughput  []abRun           `json:"throughput"`
	LoadgenBare []string          `json:"loadgenBare"`
	Fixed       []fixedResult     `json:"fixedRate"`
	Action      []actionResult    `json:"action"`
	Footprint   []footprintResult `json:"footprint"`
	Buckets     []bucketUse       `json:"logBuckets"`
	Restart     restartResult     `json:"restart"`
	HarnessTime time.Duration     `json:"harnessTime"`
	TotalTime   time.Duration     `json:"totalTime"`
}

// settings are the options a report's text needs, saved with it so that
// -render can write the report again from results.json.
type settings struct {
	Conns, Reps     int
	Warmup, Measure time.Duration
	Micro, Work     string
}

type machineInfo struct {
	CPU, Kernel, Go, Date, Commit string
	Cores                         int
}

func machine() machineInfo {
	m := machineInfo{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
	}
	return m
}

func (r *report) save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// shape is the median over the repetitions of one server and payload size.
type shape struct {
	RPS, AlertsPS, P50, P99, CPUus float64
	MinRPS, MaxRPS                 float64
	R503                           int
	Behind                         float64 // selfheal: share of accepted alerts the engine had not classified yet
}

func (r *report) shape(server string, n int) shape {
	var rps, aps, p50, p99, cpu, behind []float64
	var s shape
	for _, a := range r.Throughput {
		if a.Server != server || a.Alerts != n {
			continue
		}
		rps, aps, p50, p99 = append(rps, a.RPS), append(aps, a.AlertsPS), append(p50, a.P50ms), append(p99, a.P99ms)
		cpu = append(cpu, float64(a.CPUPerReq)/1e3)
		if a.Accepted > 0 {
			behind = append(behind, 1-a.EngineNew/a.Accepted)
		}
		s.R503 += a.Rejected503
	}
	s.RPS, s.AlertsPS, s.P50, s.P99, s.CPUus, s.Behind = median(rps), median(aps), median(p50), median(p99), median(cpu), median(behind)
	if len(rps) > 0 {
		s.MinRPS, s.MaxRPS = slices.Min(rps), slices.Max(rps)
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// goal is one target of the issue and how this run compares.
type goal struct {
	What, Target, Got, Verdict string
}

// verdict says met or missed, and by how much, for a figure that must
// stay below limit (at most limit, for bytes).
func verdict(got, limit float64, unit string) string {
	diff := num(max(got-limit, limit-got))
	if unit == "B" {
		diff = fmt.Sprintf("%.0f", max(got-limit, limit-got))
	}
	if got < limit || (unit == "B" && got <= limit) {
		return fmt.Sprintf("met (%s %s under, %.2g× the limit)", diff, unit, got/limit)
	}
	return fmt.Sprintf("**missed** (%s %s over, %.2g× the limit)", diff, unit, got/limit)
}

func (r *report) goals() []goal {
	var gs []goal
	for _, t := range []struct {
		n      int
		server string
		what   string
		min    float64
	}{
		{1, "selfheal", "1-alert requests/s against the bare receiver (alerts no playbook matches)", 0.5},
		{1, serverRuns, "1-alert requests/s against the bare receiver (every alert runs /bin/true)", 0.5},
		{100, "selfheal", "100-alert payloads, alerts/s against the bare receiver (no playbook matches)", 0.7},
		{100, serverRuns, "100-alert payloads, alerts/s against the bare receiver (every alert runs /bin/true)", 0.7},
	} {
		s, bare := r.shape(t.server, t.n), r.shape("bare", t.n)
		if s.AlertsPS == 0 || bare.AlertsPS == 0 {
			continue
		}
		ratio := s.AlertsPS / bare.AlertsPS
		v := fmt.Sprintf("met (%.2f× over the floor)", ratio/t.min)
		if ratio < t.min {
			v = fmt.Sprintf("**missed** (%.2f× of the %.1f× floor)", ratio/t.min, t.min)
		}
		gs = append(gs, goal{t.what, fmt.Sprintf("≥ %.1f×", t.min), fmt.Sprintf("%.2f× (%.0f vs %.0f alerts/s)", ratio, s.AlertsPS, bare.AlertsPS), v})
	}
	for _, f := range r.Fixed {
		what := "webhook p99 at 1k req/s, alerts no playbook matches"
		if f.Playbook == jobTrue {
			what = "webhook p99 at 1k req/s, every alert runs /bin/true"
		}
		gs = append(gs, goal{what, "< 10 ms", fmt.Sprintf("%.2f ms", f.P99ms), verdict(f.P99ms, 10, "ms")})
	}
	for _, a := range r.Action {
		if a.Nodes == 1 {
			gs = append(gs, goal{"alert→action start p50, 1 node", "< 5 ms", fmt.Sprintf("%.2f ms", a.P50ms), verdict(a.P50ms, 5, "ms")})
		} else {
			gs = append(gs, goal{fmt.Sprintf("alert→action start p99, %d nodes", a.Nodes), "< 100 ms", fmt.Sprintf("%.2f ms", a.P99ms), verdict(a.P99ms, 100, "ms")})
		}
	}
	if len(r.Footprint) > 0 {
		f := r.Footprint[len(r.Footprint)-1]
		n := float64(f.Episodes)
		rss := float64(f.RSS-f.RSSBase) / n
		anon := float64(f.RSSAnon-f.AnonBase) / n
		disk := float64(f.LogDB+f.InboxDB) / n
		logdb := float64(f.LogDB) / n
		at := count(f.Episodes)
		gs = append(gs,
			goal{"RSS per tracked episode at " + at + " (VmRSS growth over the empty daemon; mostly bbolt's mmapped pages)", "≤ 512 B", fmt.Sprintf("%.0f B", rss), verdict(rss, 512, "B")},
			goal{"anonymous memory per tracked episode at " + at + " (RssAnon growth: heap, stacks)", "≤ 512 B", fmt.Sprintf("%.0f B", anon), verdict(anon, 512, "B")},
			goal{"disk per tracked episode at " + at + " (log.db + inbox.db)", "≤ 512 B", fmt.Sprintf("%.0f B", disk), verdict(disk, 512, "B")},
			goal{"disk per tracked episode at " + at + ", log.db alone (inbox.db is the queue's high-water mark)", "≤ 512 B", fmt.Sprintf("%.0f B", logdb), verdict(logdb, 512, "B")})
	}
	gs = append(gs, goal{fmt.Sprintf("start to ready with %s episodes in the log", count(r.Restart.Episodes)), "< 5 s",
		fmt.Sprintf("%.3f s", r.Restart.ReadyS), verdict(r.Restart.ReadyS, 5, "s")})
	return gs
}

// count writes 100000 as 1e5 and 1000000 as 1e6; other numbers as they are.
func count(n int) string {
	m, e := n, 0
	for m >= 10 && m%10 == 0 {
		m /= 10
		e++
	}
	if e < 4 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%de%d", m, e)
}
