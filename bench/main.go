//go:build linux

// Command bench is the harness behind `make bench`: it builds selfheal and
// the perflab bare receiver (../shared/bench, outside this module), drives
// both with the same load generator on 127.0.0.1, measures the webhook,
// the alert-to-action latency on one node and on a 3-node cluster, the
// memory and disk per tracked episode and the start time on a big store,
// prints a table and writes BENCHMARKS.md.
//
// Every server listens on 127.0.0.1 only and is stopped by its PID, on
// failure and on SIGINT/SIGTERM too; every load loop is bounded in time
// and in requests. Raw outputs go under -work, never into the repository.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the harness flags.
type options struct {
	work     string // scratch folder: binaries, stores, logs, raw results
	shared   string // the perflab module holding cmd/minserver
	out      string // the report written at the end
	micro    string // go test -bench output to summarise in the report
	started  int64  // Unix time make bench started, for the total time
	reps     int
	warmup   time.Duration
	measure  time.Duration
	conns    int
	episodes []int
	only     string
	render   string
}

// dir is the scratch folder of one server or scenario.
func (o options) dir(name string) string { return filepath.Join(o.work, "runs", name) }

var began = time.Now()

// progress writes a progress line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %6.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	var o options
	flag.StringVar(&o.work, "work", "/tmp/selfheal-bench", "scratch folder (binaries, stores, logs, raw results)")
	flag.StringVar(&o.shared, "shared", "../shared/bench", "the perflab module with cmd/minserver, cmd/loadgen and cmd/genpayload")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write")
	flag.StringVar(&o.micro, "micro", "", "go test -bench output to summarise in the report (bench.txt)")
	flag.Int64Var(&o.started, "started", 0, "Unix time the whole make bench started (for the total time in the report)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each A/B throughput run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each throughput measurement")
	flag.DurationVar(&o.measure, "d", 4*time.Second, "duration of each throughput measurement")
	flag.IntVar(&o.conns, "c", 16, "connections of the closed-loop generator")
	flag.StringVar(&o.only, "only", "", "run only the steps whose key contains this (throughput, fixed, action1, action3, footprint); the report is then partial")
	flag.StringVar(&o.render, "render", "", "write the report again from this results.json (of an earlier run) and exit; measures nothing")
	small := flag.Bool("small", false, "footprint at 1e4 and 1e5 episodes instead of 1e5 and 1e6 (a quick try)")
	flag.Parse()
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if o.only != "" && !outSet {
		o.out = filepath.Join(o.work, "BENCHMARKS-partial.md") // never a partial BENCHMARKS.md
	}
	o.episodes = []int{1e5, 1e6}
	if *small {
		o.episodes = []int{1e4, 1e5}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		progress("%v: stopping every server", s)
		stopAll()
		os.Exit(1)
	}()
	var err error
	if o.render != "" {
		err = render(o)
	} else {
		err = run(o)
	}
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: "+err.Error())
		os.Exit(1)
	}
}

func run(o options) error {
	if err := os.MkdirAll(filepath.Join(o.work, "bin"), 0o755); err != nil {
		return err
	}
	bins, err := build(o)
	if err != nil {
		return err
	}
	if err := removeAll(filepath.Join(o.work, "runs")); err != nil {
		return err
	}
	r := &report{Machine: machine(), Settings: settings{Conns: o.conns, Reps: o.reps, Warmup: o.warmup, Measure: o.measure, Micro: o.micro, Work: o.work}}
	steps := []struct {
		key, name string
		f         func(o options, b binaries, r *report) error
	}{
		{"throughput", "throughput (A/B against the bare receiver)", throughput},
		{"fixed", "webhook latency at a fixed 1k requests/s", fixedRate},
		{"action1", "alert to action start, 1 node", actionLatency1},
		{"action3", "alert to action start, 3 nodes", actionLatency3},
		{"footprint", "memory and disk per episode, start time", footprint},
	}
	for _, s := range steps {
		if !strings.Contains(s.key, o.only) {
			continue
		}
		if err := settle(o); err != nil {
			return err
		}
		progress("== %s", s.name)
		t0 := time.Now()
		if err := s.f(o, bins, r); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		progress("== %s: done in %s", s.name, time.Since(t0).Round(100*time.Millisecond))
	}
	r.HarnessTime = time.Since(began)
	if o.started > 0 {
		r.TotalTime = time.Since(time.Unix(o.started, 0))
	}
	if err := r.save(filepath.Join(o.work, "results.json")); err != nil {
		return err
	}
	return write(o, r)
}

// write prints the table and writes the report.
func write(o options, r *report) error {
	table := r.table()
	fmt.Print(table)
	if err := os.WriteFile(o.out, []byte(r.markdown(table)), 0o644); err != nil {
		return err
	}
	progress("wrote %s; raw outputs under %s", o.out, o.work)
	return nil
}

// render writes the report of an earlier run from its results.json.
func render(o options) error {
	b, err := os.ReadFile(o.render)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", o.render, err)
	}
	return write(o, &r)
}

// settle removes the stores of the steps before (their logs stay) and
// flushes the page cache to disk, so that the writeback of one step's
// files does not slow the fsyncs of the next.
func settle(o options) error {
	stores, err := filepath.Glob(o.dir("*/data"))
	if err != nil {
		return err
	}
	for _, d := range stores {
		if err := removeAll(d); err != nil {
			return err
		}
	}
	syscall.Sync()
	return nil
}

// binaries are the programs the harness runs.
type binaries struct {
	selfheal, minserver, loadgen, genpayload string
}

// build compiles selfheal into bin/ and the perflab tools into the
// scratch folder, from their own module (never copied into this one).
func build(o options) (binaries, error) {
	if _, err := os.Stat(filepath.Join(o.shared, "cmd", "minserver")); err != nil {
		abs, _ := filepath.Abs(o.shared)
		return binaries{}, fmt.Errorf("the bare receiver is missing: no %s/cmd/minserver (%s): "+
			"make bench needs the perflab module at ../shared/bench next to the repository (or -shared DIR)", o.shared, abs)
	}
	bin := filepath.Join(o.work, "bin")
	b := binaries{
		selfheal:   "bin/selfheal",
		minserver:  filepath.Join(bin, "minserver"),
		loadgen:    filepath.Join(bin, "loadgen"),
		genpayload: filepath.Join(bin, "genpayload"),
	}
	progress("building bin/selfheal")
	if err := goBuild(".", "-o", b.selfheal, "./cmd/selfheal"); err != nil {
		return b, err
	}
	progress("building minserver, loadgen, genpayload from %s into %s", o.shared, bin)
	abs, err := filepath.Abs(bin)
	if err != nil {
		return b, err
	}
	if err := goBuild(o.shared, "-o", abs+"/", "./cmd/minserver", "./cmd/loadgen", "./cmd/genpayload"); err != nil {
		return b, err
	}
	return b, nil
}

func goBuild(dir string, args ...string) error {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %v in %s: %w", args, dir, err)
	}
	return nil
}
