//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// table is the summary printed at the end and embedded in BENCHMARKS.md:
// markdown tables, readable as text too.
func (r *report) table() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("| webhook, closed loop, %d connections | selfheal | bare receiver | selfheal / bare |\n| --- | --- | --- | --- |\n", r.Settings.Conns)
	for _, n := range []int{1, 100} {
		s, bare := r.shape("selfheal", n), r.shape("bare", n)
		w("| %d-alert payloads: requests/s | %.0f | %.0f | %.2f |\n", n, s.RPS, bare.RPS, s.RPS/bare.RPS)
		w("| %d-alert payloads: alerts/s | %.0f | %.0f | %.2f |\n", n, s.AlertsPS, bare.AlertsPS, s.AlertsPS/bare.AlertsPS)
		w("| %d-alert payloads: p50 / p99 | %.2f / %.2f ms | %.2f / %.2f ms | %.1f / %.1f |\n", n, s.P50, s.P99, bare.P50, bare.P99, s.P50/bare.P50, s.P99/bare.P99)
		w("| %d-alert payloads: server CPU per request | %.0f µs | %.0f µs | %.1f |\n", n, s.CPUus, bare.CPUus, s.CPUus/bare.CPUus)
		if ru := r.shape(serverRuns, n); ru.RPS > 0 {
			w("| %d-alert payloads, every alert running a playbook: requests/s (CPU per request) | %.0f (%.0f µs) | %.0f | %.2f |\n", n, ru.RPS, ru.CPUus, bare.RPS, ru.RPS/bare.RPS)
		}
	}
	w("\n| figure | value |\n| --- | --- |\n")
	for _, f := range r.Fixed {
		what := "no playbook matches"
		if f.Playbook == jobTrue {
			what = "each alert runs /bin/true"
		}
		w("| webhook at a fixed 1000 req/s, 1-alert payloads, %s: p50 / p99 / p99.9 / max | %.2f / %.2f / %.2f / %.2f ms (%.0f req/s achieved, %d answered 503) |\n",
			what, f.P50ms, f.P99ms, f.P999ms, f.Maxms, f.Achieved, f.Rejected503)
	}
	for _, a := range r.Action {
		w("| alert → action start, %d node(s), %d alerts/s: p50 / p99 / max | %.2f / %.2f / %.2f ms (%d of %d started, %d twice) |\n",
			a.Nodes, int(a.Rate), a.P50ms, a.P99ms, a.Maxms, a.Started, a.Sent, a.Duplicates)
	}
	for _, f := range r.Footprint {
		n := float64(f.Episodes)
		w("| %s tracked episodes: RSS per episode (its growth; anon growth) | %.0f B (%.0f B; %.0f B); RSS %s = anon %s + file %s; Go heap %s |\n",
			count(f.Episodes), float64(f.RSS)/n, float64(f.RSS-f.RSSBase)/n, float64(f.RSSAnon-f.AnonBase)/n, mib(f.RSS), mib(f.RSSAnon), mib(f.RSSFile), mib(int64(f.HeapInuse)))
		w("| %s tracked episodes: disk per episode | %.0f B (log.db %s, inbox.db %s) |\n",
			count(f.Episodes), float64(f.LogDB+f.InboxDB)/n, mib(f.LogDB), mib(f.InboxDB))
	}
	w("| start to /-/ready with %s episodes | %.3f s (RSS then %s) |\n", count(r.Restart.Episodes), r.Restart.ReadyS, mib(r.Restart.RSS))
	w("\n| goal | target | measured | verdict |\n| --- | --- | --- | --- |\n")
	for _, g := range r.goals() {
		w("| %s | %s | %s | %s |\n", g.What, g.Target, g.Got, g.Verdict)
	}
	return b.String()
}

// num writes v with 3 or 4 significant digits, without an exponent.
func num(v float64) string {
	if v >= 1000 || v == float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func mibOr(fs []footprintResult) string {
	if len(fs) == 0 {
		return "n/a"
	}
	return mib(fs[0].RSSBase)
}

// microSummary is a table of the medians of every metric of every
// benchmark in a go test -bench output.
func microSummary(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	type bench struct {
		pkg, name string
		units     []string
		vals      map[string][]float64
	}
	var order []*bench
	byName := map[string]*bench{}
	pkg := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/selfheal/selfheal/")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		bm := byName[pkg+" "+name]
		if bm == nil {
			bm = &bench{pkg: pkg, name: name, vals: map[string][]float64{}}
			byName[pkg+" "+name] = bm
			order = append(order, bm)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			unit := fields[i+1]
			if _, ok := bm.vals[unit]; !ok {
				bm.units = append(bm.units, unit)
			}
			bm.vals[unit] = append(bm.vals[unit], v)
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| package | benchmark | n | medians |\n| --- | --- | --- | --- |\n")
	for _, bm := range order {
		var parts []string
		n := 0
		for _, u := range bm.units {
			parts = append(parts, num(median(bm.vals[u]))+" "+u)
			n = max(n, len(bm.vals[u]))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", bm.pkg, bm.name, n, strings.Join(parts, ", "))
	}
	return b.String(), nil
}
