package actions

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/strictyaml"
)

// Spec describes an action type: its id, its parameters and how to build
// it. Dependencies (clients, clock, logger) are captured by New when the
// spec is registered.
type Spec struct {
	// ID is namespaced and lowercase: "exec", "jenkins.build".
	ID string
	// Summary is one line for `selfheal actions`.
	Summary string
	// Example is a YAML step using the action, for documentation.
	Example string
	// Params returns a pointer to a fresh parameter struct holding the
	// defaults.
	Params func() Params
	// New builds the action from decoded, validated parameters.
	New func(Params) (Action, error)
}

// Typed builds a Spec from a typed defaults func and constructor, so action
// packages never type-assert their own params.
func Typed[P Params](id, summary, example string, defaults func() P, build func(P) (Action, error)) Spec {
	return Spec{
		ID:      id,
		Summary: summary,
		Example: example,
		Params:  func() Params { return defaults() },
		New:     func(p Params) (Action, error) { return build(p.(P)) },
	}
}

// Registry maps action ids to specs. It is a value: build one with
// NewRegistry and register types explicitly. It is not safe for concurrent
// Register calls; lookups after registration are.
type Registry struct {
	specs map[string]Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]Spec{}} }

// Register adds s. An id registered twice is an error.
func (r *Registry) Register(s Spec) error {
	if s.ID == "" || s.Params == nil || s.New == nil {
		return fmt.Errorf("register action %q: id, Params and New are required", s.ID)
	}
	if _, ok := r.specs[s.ID]; ok {
		return fmt.Errorf("register action %q: already registered", s.ID)
	}
	r.specs[s.ID] = s
	return nil
}

// Lookup returns the spec registered under id.
func (r *Registry) Lookup(id string) (Spec, bool) {
	s, ok := r.specs[id]
	return s, ok
}

// IDs returns the registered ids in lexical order.
func (r *Registry) IDs() []string {
	ids := make([]string, 0, len(r.specs))
	for id := range r.specs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ErrUnknown is returned (wrapped) by Build for an unregistered action id.
var ErrUnknown = errors.New("unknown action")

// Build decodes with (which may be nil) strictly into the parameters of
// action id, validates them and builds the action. Errors are
// strictyaml.Errors positioned in file at path (the step's `with`).
func (r *Registry) Build(file, path string, id string, with *yaml.Node) (Action, Params, error) {
	s, ok := r.specs[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w %q (known: %v)", ErrUnknown, id, r.IDs())
	}
	p := s.Params()
	if with != nil {
		if err := strictyaml.Decode(file, path, with, p); err != nil {
			return nil, nil, err
		}
	}
	if err := p.Validate(); err != nil {
		return nil, nil, positioned(file, path, with, err)
	}
	a, err := s.New(p)
	if err != nil {
		return nil, nil, strictyaml.Errorf(file, with, path, "%v", err)
	}
	return a, p, nil
}

// positioned turns the error of a Params' Validate into strictyaml errors
// in file: each *ParamError at its parameter's node under with (whose YAML
// path is path), anything else at with itself.
func positioned(file, path string, with *yaml.Node, err error) error {
	var out []error
	for _, e := range flatten(err) {
		var pe *ParamError
		if errors.As(e, &pe) {
			out = append(out, strictyaml.Errorf(file, locate(with, pe.Param), path+"."+pe.Param, "%s", pe.Msg))
		} else {
			out = append(out, strictyaml.Errorf(file, with, path, "%v", e))
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}

// flatten lists the errors an errors.Join holds, depth first.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// locate returns the node of param under with: "name", "name[i]" (an item
// of a sequence) or "name.key" (a value of a mapping; the key may hold
// dots). It falls back to with, or to the deepest node found.
func locate(with *yaml.Node, param string) *yaml.Node {
	name, key, hasKey := strings.Cut(param, ".")
	name, idx, hasIdx := strings.Cut(name, "[")
	n := strictyaml.Lookup(with, name)
	if n == nil {
		return with
	}
	var next *yaml.Node
	switch {
	case hasIdx:
		i, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
		if err == nil && n.Kind == yaml.SequenceNode && i >= 0 && i < len(n.Content) {
			next = n.Content[i]
		}
	case hasKey:
		next = strictyaml.Lookup(n, key)
	default:
		return n
	}
	if next == nil {
		return n
	}
	return next
}
