package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/strictyaml"
)

// defaultTestStart is the simulated time a test starts at when its file
// sets no start: a Monday, 10:00 UTC.
var defaultTestStart = time.Date(2026, time.January, 5, 10, 0, 0, 0, time.UTC)

// testFile is a playbook test file (`selfheal test FILE...`), decoded
// strictly. Paths in it are relative to its folder.
type testFile struct {
	// PlaybookFiles are globs of the playbook files under test.
	PlaybookFiles []string `yaml:"playbook_files"`
	// Config is an optional daemon config: its limits.breaker and dry_run.
	Config string `yaml:"config"`
	// Start is the simulated time offsets count from.
	Start *timestamp `yaml:"start"`
	Tests []testCase `yaml:"tests"`
}

type testCase struct {
	Name   string        `yaml:"name"`
	Alerts []testAlert   `yaml:"alerts"`
	Expect []expectation `yaml:"expect"`
	// FailSteps are "playbook/step" names whose stubbed Run fails.
	FailSteps []string `yaml:"fail_steps"`
}

type testAlert struct {
	At          offset            `yaml:"at"`
	Status      status            `yaml:"status"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	// StartsAt defaults to At for a firing alert, and to the startsAt of
	// the last firing alert with the same labels for a resolved one.
	StartsAt *offset `yaml:"starts_at"`
}

type expectation struct {
	At   offset       `yaml:"at"`
	Runs *[]expectRun `yaml:"runs"`
}

type expectRun struct {
	Playbook string            `yaml:"playbook"`
	Labels   map[string]string `yaml:"labels"`
	Outcome  outcome           `yaml:"outcome"`
	Reason   string            `yaml:"reason"`
}

// offset is a non-negative duration from the test's start, like "90s",
// "2h" or "1d".
type offset time.Duration

func (o *offset) UnmarshalYAML(n *yaml.Node) error {
	d, err := model.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("invalid offset %q: want a duration like 90s, 2h or 1d", n.Value)
	}
	*o = offset(d)
	return nil
}

// timestamp is an RFC 3339 time.
type timestamp time.Time

func (t *timestamp) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.Parse(time.RFC3339, n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("invalid time %q: want RFC 3339, like 2026-01-05T10:00:00Z", n.Value)
	}
	*t = timestamp(v.UTC())
	return nil
}

type status alert.Status

func (s *status) UnmarshalYAML(n *yaml.Node) error {
	if v := alert.Status(n.Value); n.Kind != yaml.ScalarNode || !v.Valid() {
		return fmt.Errorf("invalid status %q: want firing or resolved", n.Value)
	}
	*s = status(n.Value)
	return nil
}

// outcomes are what a run's outcome may be expected to be: its state, or
// "waiting" for a claimed run that waits (delay, windows).
var outcomes = []string{
	string(ha.Claimed), string(ha.Running), string(ha.Succeeded), string(ha.Failed), string(ha.Skipped),
	string(ha.Unhealed), string(ha.Verifying), string(ha.Shadow), "waiting",
}

type outcome string

func (o *outcome) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || !slices.Contains(outcomes, n.Value) {
		return fmt.Errorf("invalid outcome %q: want one of %v", n.Value, outcomes)
	}
	*o = outcome(n.Value)
	return nil
}

// loadTestFile reads, decodes and checks a test file. Every problem is
// reported, each as file:line:col: path: message.
func loadTestFile(path string) (*testFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := strictyaml.Parse(path, data)
	if err != nil {
		return nil, err
	}
	var f testFile
	if err := strictyaml.Decode(path, "", doc, &f); err != nil {
		return nil, err
	}
	if err := f.check(path, doc); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for i, g := range f.PlaybookFiles {
		if !filepath.IsAbs(g) {
			f.PlaybookFiles[i] = filepath.Join(dir, g)
		}
	}
	if f.Config != "" && !filepath.IsAbs(f.Config) {
		f.Config = filepath.Join(dir, f.Config)
	}
	return &f, nil
}

// check reports what decoding cannot: missing values, duplicate names, a
// resolved alert without a firing one before it.
func (f *testFile) check(file string, doc *yaml.Node) error {
	var errs []error
	fail := func(path string, keys []string, format string, args ...any) {
		n := lookup(doc, keys)
		errs = append(errs, strictyaml.Errorf(file, n, path, format, args...))
	}
	if len(f.PlaybookFiles) == 0 {
		fail("playbook_files", nil, "required: the playbook files under test")
	}
	if len(f.Tests) == 0 {
		fail("tests", nil, "required: at least one test")
	}
	names := map[string]bool{}
	for i, tc := range f.Tests {
		tp, tk := fmt.Sprintf("tests[%d]", i), []string{"tests", fmt.Sprint(i)}
		switch {
		case tc.Name == "":
			fail(tp+".name", tk, "required")
		case names[tc.Name]:
			fail(tp+".name", append(tk, "name"), "test %q is defined twice", tc.Name)
		}
		names[tc.Name] = true
		if len(tc.Expect) == 0 {
			fail(tp+".expect", tk, "required: at least one expectation")
		}
		firing := map[string]bool{}
		for j, a := range tc.Alerts {
			ap, ak := fmt.Sprintf("%s.alerts[%d]", tp, j), append(slices.Clone(tk), "alerts", fmt.Sprint(j))
			if len(a.Labels) == 0 {
				fail(ap+".labels", ak, "required")
			}
			fp := alert.Fingerprint(a.Labels)
			if a.Status == "" || a.Status == status(alert.Firing) {
				firing[fp] = true
			} else if !firing[fp] && a.StartsAt == nil {
				fail(ap, ak, "a resolved alert needs starts_at, or a firing alert with the same labels before it")
			}
		}
		for j, e := range tc.Expect {
			ep, ek := fmt.Sprintf("%s.expect[%d]", tp, j), append(slices.Clone(tk), "expect", fmt.Sprint(j))
			if e.Runs == nil {
				fail(ep+".runs", ek, "required (runs: [] for none)")
				continue
			}
			for k, r := range *e.Runs {
				if r.Playbook == "" {
					fail(fmt.Sprintf("%s.runs[%d].playbook", ep, k), append(slices.Clone(ek), "runs", fmt.Sprint(k)), "required")
				}
			}
		}
	}
	return errors.Join(errs...)
}

// lookup walks doc by mapping keys and sequence indexes, as far as it can,
// for the position of an error.
func lookup(doc *yaml.Node, keys []string) *yaml.Node {
	n := doc
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range keys {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			var i int
			if _, err := fmt.Sscan(k, &i); err == nil && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}
