package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/config"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

type testCmd struct {
	files []string
}

func newTestCmd(app *kingpin.Application) *testCmd {
	c := &testCmd{}
	cmd := app.Command("test", "Run playbook unit tests: alerts at simulated times through the real engine, actions stubbed by their plans; exit 1 on a failed test or a bad file.")
	cmd.Arg("files", "Test files.").Required().StringsVar(&c.files)
	return c
}

func (c *testCmd) run(stdout, stderr io.Writer) int {
	failedFiles, tests, failed := 0, 0, 0
	for _, file := range c.files {
		n, f, err := runTestFile(file, stdout)
		tests, failed = tests+n, failed+f
		if err != nil {
			failedFiles++
			fmt.Fprintf(stderr, "FAILED: %s:\n", file)
			for _, e := range flatten(err) {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
		}
	}
	switch {
	case failed > 0 || failedFiles > 0:
		fmt.Fprintf(stdout, "FAILED: %d of %d tests failed; %d of %d files could not be run\n", failed, tests, failedFiles, len(c.files))
		return 1
	default:
		fmt.Fprintf(stdout, "SUCCESS: %d tests passed\n", tests)
		return 0
	}
}

// runTestFile runs the tests of one file, reporting each on w. It returns
// how many ran and failed, and an error when the file could not be run.
func runTestFile(file string, w io.Writer) (tests, failed int, err error) {
	tf, err := loadTestFile(file)
	if err != nil {
		return 0, 0, err
	}
	// The placeholder deps, as check and dry-run have without a config:
	// the actions only plan.
	reg, err := newRegistry(nil, nil)
	if err != nil {
		return 0, 0, err
	}
	opts := engine.Options{}
	if tf.Config != "" {
		cfg, err := config.Load(tf.Config)
		if err != nil {
			return 0, 0, fmt.Errorf("config %s: %w", tf.Config, err)
		}
		if opts.Breaker, err = breakerFrom(cfg, tf.Config, reg); err != nil {
			return 0, 0, fmt.Errorf("config %s: %w", tf.Config, err)
		}
		opts.DryRun = cfg.DryRun
	}
	set, err := playbooks.LoadFiles(reg, tf.PlaybookFiles)
	if err != nil {
		return 0, 0, err
	}
	if set.Len() == 0 {
		return 0, 0, fmt.Errorf("playbook_files %v match no playbooks", tf.PlaybookFiles)
	}
	start := defaultTestStart
	if tf.Start != nil {
		start = time.Time(*tf.Start)
	}
	fmt.Fprintf(w, "%s:\n", file)
	for _, tc := range tf.Tests {
		tests++
		report, err := runTest(tc, set, start, opts)
		if err != nil {
			report = "    " + err.Error() + "\n"
		}
		if report == "" {
			fmt.Fprintf(w, "  ok    %s\n", tc.Name)
			continue
		}
		failed++
		fmt.Fprintf(w, "  FAIL  %s\n%s", tc.Name, report)
	}
	return tests, failed, nil
}

// step is what happens at one offset: alerts arrive, then the log is
// checked.
type step struct {
	at     time.Duration
	alerts []alert.Alert
	expect [][]expectRun
}

// timeline turns a test's alerts and expectations into steps in time
// order; alerts of one offset are one batch, in file order.
func timeline(tc testCase, start time.Time) []*step {
	byAt := map[time.Duration]*step{}
	get := func(at offset) *step {
		if byAt[time.Duration(at)] == nil {
			byAt[time.Duration(at)] = &step{at: time.Duration(at)}
		}
		return byAt[time.Duration(at)]
	}
	starts := map[string]offset{}
	for _, ta := range tc.Alerts {
		a := alert.Alert{Status: alert.Firing, Labels: ta.Labels, Annotations: ta.Annotations, Fingerprint: alert.Fingerprint(ta.Labels)}
		if ta.Status != "" {
			a.Status = alert.Status(ta.Status)
		}
		s := ta.At
		switch {
		case ta.StartsAt != nil:
			s = *ta.StartsAt
		case a.Status == alert.Resolved:
			s = starts[a.Fingerprint]
		}
		if a.Status == alert.Firing {
			starts[a.Fingerprint] = s
		}
		a.StartsAt = start.Add(time.Duration(s))
		if a.Status == alert.Resolved {
			a.EndsAt = start.Add(time.Duration(ta.At))
		}
		st := get(ta.At)
		st.alerts = append(st.alerts, a)
	}
	for _, e := range tc.Expect {
		st := get(e.At)
		st.expect = append(st.expect, *e.Runs)
	}
	steps := slices.Collect(maps.Values(byAt))
	slices.SortFunc(steps, func(a, b *step) int { return int(a.at - b.at) })
	return steps
}

// runTest runs one test on its own engine and log. It returns "" when it
// passed, else what differed.
func runTest(tc testCase, set *playbooks.Set, start time.Time, opts engine.Options) (string, error) {
	set, onOpen, err := stubbed(set, opts.Breaker.OnOpen, tc.FailSteps)
	if err != nil {
		return "", err
	}
	opts.Breaker.OnOpen = onOpen
	dir, err := os.MkdirTemp("", "selfheal-test-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	sim, err := startSimulation(dir, start, set, opts)
	if err != nil {
		return "", err
	}
	var report strings.Builder
	err = func() error {
		for _, st := range timeline(tc, start) {
			at := start.Add(st.at)
			if err := sim.advance(at); err != nil {
				return fmt.Errorf("at %s: %w", fmtOffset(st.at), err)
			}
			if len(st.alerts) > 0 {
				if err := sim.send(st.alerts); err != nil {
					return fmt.Errorf("at %s: %w", fmtOffset(st.at), err)
				}
			}
			for _, want := range st.expect {
				got, err := sim.records()
				if err != nil {
					return err
				}
				if d := diffRuns(want, got, at); d != "" {
					fmt.Fprintf(&report, "    at %s (%s): runs differ (-expected +got):\n%s", fmtOffset(st.at), at.Format(time.RFC3339), d)
				}
			}
		}
		return nil
	}()
	if serr := sim.stop(); err == nil && serr != nil {
		err = serr
	}
	return report.String(), err
}

// outcomeOf is the outcome a record shows at now: its state, or "waiting"
// for a claimed run that is not due yet.
func outcomeOf(r ha.Record, now time.Time) string {
	if r.State == ha.Claimed && r.NotBefore.After(now) {
		return "waiting"
	}
	return string(r.State)
}

func (e expectRun) matches(r ha.Record, now time.Time) bool {
	if e.Playbook != r.Playbook || e.Outcome != "" && string(e.Outcome) != outcomeOf(r, now) ||
		e.Reason != "" && e.Reason != r.SkipReason {
		return false
	}
	for k, v := range e.Labels {
		if got, ok := r.Alert.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (e expectRun) String() string {
	s := e.Playbook + " " + fmtLabels(e.Labels, nil)
	if e.Outcome != "" {
		s += " " + string(e.Outcome)
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

func gotString(r ha.Record, now time.Time, names map[string]bool) string {
	s := r.Playbook + " " + fmtLabels(r.Alert.Labels, names) + " " + outcomeOf(r, now)
	if r.SkipReason != "" {
		s += " (" + r.SkipReason + ")"
	}
	return s
}

// diffRuns compares the expected runs with every run in the log, in any
// order, and returns "" when each run matches one expectation, else a diff:
// "-" lines expected and not found, "+" lines found and not expected, and
// "  " for those that match.
func diffRuns(want []expectRun, got []ha.Record, now time.Time) string {
	used := make([]bool, len(got))
	matched := make([]bool, len(want))
	for i, w := range want {
		for j, r := range got {
			if !used[j] && w.matches(r, now) {
				used[j], matched[i] = true, true
				break
			}
		}
	}
	if !slices.Contains(matched, false) && !slices.Contains(used, false) {
		return ""
	}
	// Got lines show the labels the expectations name, or all of them when
	// none does.
	names := map[string]bool{}
	for _, w := range want {
		for k := range w.Labels {
			names[k] = true
		}
	}
	if len(names) == 0 {
		names = nil
	}
	var b strings.Builder
	for i, w := range want {
		mark := " "
		if !matched[i] {
			mark = "-"
		}
		fmt.Fprintf(&b, "      %s %s\n", mark, w)
	}
	for j, r := range got {
		if !used[j] {
			fmt.Fprintf(&b, "      + %s\n", gotString(r, now, names))
		}
	}
	return b.String()
}

// fmtLabels renders labels as {a="1", b="2"}, sorted, only those in names
// unless names is nil.
func fmtLabels(l map[string]string, names map[string]bool) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if names == nil || names[k] {
			parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// fmtOffset renders an offset like the test file writes it.
func fmtOffset(d time.Duration) string { return model.Duration(d).String() }
