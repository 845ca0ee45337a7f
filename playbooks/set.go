package playbooks

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
)

// Set is an immutable collection of playbooks with unique names, the unit a
// reload swaps. It is safe for concurrent use. A nil or zero Set is empty.
type Set struct {
	sorted []*Playbook // by name
	byName map[string]*Playbook
	// byAlertname indexes, by its value, the playbooks with an
	// alertname="..." matcher, as positions in sorted; the others are in
	// unindexed. Match checks only the candidates an alert's name picks.
	byAlertname map[string][]int
	unindexed   []int
}

// NewSet returns the set of pbs. A name used by two playbooks is an error
// naming both definitions, like
// `playbook "x" is defined twice: in a.yaml:3:11 and in b.yaml:7:11`; every
// clash is reported.
func NewSet(pbs []*Playbook) (*Set, error) {
	s := &Set{sorted: make([]*Playbook, 0, len(pbs)), byName: make(map[string]*Playbook, len(pbs))}
	var errs []error
	for i, pb := range pbs {
		if pb == nil {
			errs = append(errs, fmt.Errorf("playbook %d is nil", i))
			continue
		}
		if first, ok := s.byName[pb.Name]; ok {
			errs = append(errs, fmt.Errorf("playbook %q is defined twice: in %s and in %s", pb.Name, first.where(), pb.where()))
			continue
		}
		s.byName[pb.Name] = pb
		s.sorted = append(s.sorted, pb)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(s.sorted, func(a, b *Playbook) int { return strings.Compare(a.Name, b.Name) })
	s.byAlertname = map[string][]int{}
	for i, pb := range s.sorted {
		if name, ok := alertnameOf(pb); ok {
			s.byAlertname[name] = append(s.byAlertname[name], i)
		} else {
			s.unindexed = append(s.unindexed, i)
		}
	}
	return s, nil
}

// alertnameOf returns the value of pb's alertname="..." matcher, if it has
// one: every alert it matches has that name.
func alertnameOf(pb *Playbook) (string, bool) {
	for _, m := range pb.Matchers {
		if m.Name == "alertname" && m.Type == labels.MatchEqual {
			return m.Value, true
		}
	}
	return "", false
}

// LoadFiles expands each glob (relative paths are used as given, against
// the working directory), reads and parses every file it matches, and
// returns the set of all their playbooks. A file matched by two globs is
// loaded once; a glob matching nothing is not an error. The error joins the
// problems of every file: a bad glob, an unreadable file, one over
// MaxFileSize, a file that does not parse, and names defined in two files.
func LoadFiles(reg *actions.Registry, globs []string) (*Set, error) {
	files, err := ExpandGlobs(globs)
	errs := []error{err}
	var all []*Playbook
	for _, f := range files {
		data, err := ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pbs, err := Parse(reg, f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, pbs...)
	}
	s, err := NewSet(all)
	if err := errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadFiles reads every file the globs match, with ReadFile, for
// Catalog.Replace. A file that cannot be read, or is over MaxFileSize, is a
// File with Err set; the error is about the globs themselves.
func ReadFiles(globs []string) ([]File, error) {
	names, err := ExpandGlobs(globs)
	files := make([]File, 0, len(names))
	for _, n := range names {
		data, rerr := ReadFile(n)
		files = append(files, File{Source: n, Data: data, Err: rerr})
	}
	return files, err
}

// ExpandGlobs returns the files the globs match, each once, in glob order
// and then lexical order. A glob matching nothing is not an error; a
// malformed one is.
func ExpandGlobs(globs []string) ([]string, error) {
	var (
		errs  []error
		files []string
		seen  = map[string]bool{}
	)
	for _, g := range globs {
		matches, err := filepath.Glob(g)
		if err != nil {
			errs = append(errs, fmt.Errorf("playbook files %q: %w", g, err))
			continue
		}
		for _, f := range matches {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files, errors.Join(errs...)
}

// All returns the playbooks in name order. The slice is the caller's; the
// playbooks are shared and must not be changed.
func (s *Set) All() []*Playbook {
	if s == nil {
		return nil
	}
	return slices.Clone(s.sorted)
}

// Get returns the playbook named name, or nil.
func (s *Set) Get(name string) *Playbook {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Len returns the number of playbooks.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.sorted)
}

// Match returns the playbooks that act on a, in name order: each runs
// independently.
func (s *Set) Match(a alert.Alert) []*Playbook {
	candidates := s.candidates(a)
	if len(candidates) == 0 {
		return nil
	}
	ls := a.LabelSet()
	var out []*Playbook
	for _, i := range candidates {
		if pb := s.sorted[i]; pb.matches(a.Status, ls) {
			out = append(out, pb)
		}
	}
	return out
}

// Wants reports whether a playbook matches a's labels, whichever status it
// acts on: whether a's episode may yet run something, when it fires or
// when it resolves.
func (s *Set) Wants(a alert.Alert) bool {
	candidates := s.candidates(a)
	if len(candidates) == 0 {
		return false
	}
	ls := a.LabelSet()
	for _, i := range candidates {
		if s.sorted[i].Matchers.Matches(ls) {
			return true
		}
	}
	return false
}

// candidates are the indexes, in name order, of the playbooks that may
// match a: those its alertname picks and those without one.
func (s *Set) candidates(a alert.Alert) []int {
	if s == nil {
		return nil
	}
	candidates := s.byAlertname[a.Labels["alertname"]]
	if len(s.unindexed) > 0 {
		candidates = append(slices.Clip(candidates), s.unindexed...)
		slices.Sort(candidates) // name order, as documented
	}
	return candidates
}
