package playbooks

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/strictyaml"
)

// rawFile is the top of a playbook file. Playbooks are kept as nodes so each
// one is checked on its own and all errors of the file are reported.
type rawFile struct {
	Playbooks []*yaml.Node `yaml:"playbooks"`
}

// Parse decodes and validates one playbook file's content: the schema,
// names, matchers, and each step's action and parameters, built through reg.
// source names the content in errors and in Playbook.Source (a file path,
// or "configmap/<ns>/<name>/<key>"); Revision is the first 12 hex digits of
// the SHA-256 of data. The error is nil or an errors.Join of every problem
// found, each a *strictyaml.Error naming source:line:col and the YAML path,
// in the order they appear in the file. Content over MaxFileSize is not
// parsed: the error is a *TooLargeError. An empty file holds no playbooks.
// A nil reg knows no action.
func Parse(reg *actions.Registry, source string, data []byte) ([]*Playbook, error) {
	if len(data) > MaxFileSize {
		return nil, &TooLargeError{Source: source, Size: int64(len(data)), What: "a playbook file"}
	}
	if reg == nil {
		reg = actions.NewRegistry()
	}
	doc, err := strictyaml.Parse(source, data)
	if err != nil {
		return nil, err
	}
	if err := checkDocuments(source, data); err != nil {
		return nil, err
	}
	if err := checkAliases(source, doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 { // empty, or only comments
		return nil, nil
	}
	p := &parser{reg: reg, file: source, revision: Revision(data)}
	var raw rawFile
	p.decode(doc, "", &raw) // an unknown top-level key must not hide the playbooks' errors
	pbs := p.playbooks(raw.Playbooks)
	if err := p.err(); err != nil {
		return nil, err
	}
	return pbs, nil
}

// ParseSteps builds a step list that is not in a playbook file, such as
// the daemon config's limits.breaker.on_open: n is its node in file, at
// the YAML path path. Errors are positioned as Parse's are. A missing or
// null n is no steps.
func ParseSteps(reg *actions.Registry, file, path string, n *yaml.Node) ([]Step, error) {
	if n == nil || strictyaml.IsNull(n) {
		return nil, nil
	}
	if reg == nil {
		reg = actions.NewRegistry()
	}
	p := &parser{reg: reg, file: file}
	steps := p.stepList(n, path)
	if err := p.err(); err != nil {
		return nil, err
	}
	return steps, nil
}

// parser collects the errors of one file while building its playbooks.
type parser struct {
	reg      *actions.Registry
	file     string
	revision string
	errs     []error
}

func (p *parser) errorf(node *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, strictyaml.Errorf(p.file, node, path, format, args...))
}

// add records err, which may join several errors.
func (p *parser) add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// decode decodes node strictly into out and reports whether it succeeded.
func (p *parser) decode(node *yaml.Node, path string, out any) bool {
	err := strictyaml.Decode(p.file, path, node, out)
	p.add(err)
	return err == nil
}

// err returns every recorded error, flattened and sorted by position so a
// reader meets them in file order. The sort is stable: errors at one
// position keep the order they were found in.
func (p *parser) err() error {
	var flat []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		flat = append(flat, err)
	}
	for _, err := range p.errs {
		walk(err)
	}
	slices.SortStableFunc(flat, func(a, b error) int {
		la, ca := position(a)
		lb, cb := position(b)
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(ca, cb))
	})
	return errors.Join(flat...)
}

func position(err error) (line, col int) {
	var e *strictyaml.Error
	if errors.As(err, &e) {
		return e.Line, e.Column
	}
	return 0, 0
}

// checkDocuments rejects content after the first YAML document, which
// strictyaml.Parse would otherwise silently ignore. Empty documents, like
// a trailing "---", are allowed.
func checkDocuments(source string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return strictyaml.Errorf(source, nil, "", "document %d: %v", n, err)
		case n > 1 && len(doc.Content) > 0 && !strictyaml.IsNull(doc.Content[0]):
			return strictyaml.Errorf(source, doc.Content[0], "",
				"a playbook file holds one YAML document; found another (document %d)", n)
		}
	}
}

// checkAliases rejects an alias that refers to a value containing it:
// strictyaml follows aliases, and would never return. Each node is visited
// once, so a tree of aliases costs its size, not its expansion.
func checkAliases(source string, doc *yaml.Node) error {
	const (
		visiting = 1
		done     = 2
	)
	state := map[*yaml.Node]int{}
	var visit func(n *yaml.Node) error
	visit = func(n *yaml.Node) error {
		target := n
		if n.Kind == yaml.AliasNode {
			target = n.Alias
		}
		if target == nil {
			return nil
		}
		switch state[target] {
		case visiting:
			return strictyaml.Errorf(source, n, "", "alias *%s refers to a value that contains it", n.Value)
		case done:
			return nil
		}
		state[target] = visiting
		for _, c := range target.Content {
			if err := visit(c); err != nil {
				return err
			}
		}
		state[target] = done
		return nil
	}
	return visit(doc)
}

// present reports whether a field was given a value: absent fields are nil,
// and `key:` with nothing after it is null.
func present(n *yaml.Node) bool {
	return n != nil && !strictyaml.IsNull(n)
}
