package actions

import (
	"errors"
	"fmt"
	"sort"

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
		return nil, nil, strictyaml.Errorf(file, with, path, "%v", err)
	}
	a, err := s.New(p)
	if err != nil {
		return nil, nil, strictyaml.Errorf(file, with, path, "%v", err)
	}
	return a, p, nil
}
