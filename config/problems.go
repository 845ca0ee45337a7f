package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/redact"
	"github.com/selfheal/selfheal/strictyaml"
)

// problems collects every error of one config file: the decoder's, then
// those of the checks, each at the position of the value it is about.
type problems struct {
	file string
	doc  *yaml.Node
	// undecoded are the YAML paths the decoder reported errors at: the
	// checks of what is at, in or around them would only repeat them.
	undecoded []string
	errs      []error
}

// decoded records the errors of strictyaml.Decode.
func (p *problems) decoded(err error) {
	for _, e := range flatten(err) {
		var se *strictyaml.Error
		if errors.As(e, &se) {
			p.undecoded = append(p.undecoded, se.Path)
		}
		p.errs = append(p.errs, e)
	}
}

// clean reports whether the value at keys was decoded without error: no
// error at it, inside it, or at a mapping that holds it (an unknown key
// there may be a misspelling of it).
func (p *problems) clean(keys ...string) bool {
	path := pathOf(keys)
	for _, u := range p.undecoded {
		switch {
		case u == path, strings.HasPrefix(u, path+"."), strings.HasPrefix(u, path+"["):
			return false
		case u != "" && (strings.HasPrefix(path, u+".") || strings.HasPrefix(path, u+"[")):
			return false
		}
	}
	return true
}

// at records a problem with the value at keys ("[i]" indexes a list). It
// is placed at that value, or, when the file leaves it out, at the nearest
// mapping that would hold it.
func (p *problems) at(keys []string, format string, args ...any) {
	p.errs = append(p.errs, strictyaml.Errorf(p.file, p.nearest(keys), pathOf(keys), format, args...))
}

// add records err, which may join several errors, as it is.
func (p *problems) add(err error) {
	p.errs = append(p.errs, flatten(err)...)
}

func (p *problems) nearest(keys []string) *yaml.Node {
	node := p.doc
	if node != nil && node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return nil
		}
		node = node.Content[0]
	}
	for _, k := range keys {
		var next *yaml.Node
		if i, ok := index(k); ok {
			if node.Kind == yaml.SequenceNode && i < len(node.Content) {
				next = node.Content[i]
			}
		} else {
			next = strictyaml.Lookup(node, k)
		}
		if next == nil {
			break
		}
		node = next
	}
	return node
}

// err returns every recorded error, in file order, nil if none. The order
// is stable: errors at one position keep the order they were found in;
// those without a position come first. No message shows a URL's password
// or anything else shaped like a secret (redact).
func (p *problems) err() error {
	out := make([]error, 0, len(p.errs))
	shapes := redact.New()
	for _, e := range p.errs {
		var se *strictyaml.Error
		if errors.As(e, &se) {
			c := *se
			c.Msg = shapes.String(c.Msg)
			out = append(out, &c)
			continue
		}
		out = append(out, shapes.Error(e))
	}
	slices.SortStableFunc(out, func(a, b error) int {
		la, ca := position(a)
		lb, cb := position(b)
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(ca, cb))
	})
	return errors.Join(out...)
}

func position(err error) (line, col int) {
	var e *strictyaml.Error
	if errors.As(err, &e) {
		return e.Line, e.Column
	}
	return 0, 0
}

// pathOf renders keys as a YAML path: jenkins.default.url, playbooks.files[2].
func pathOf(keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		if _, ok := index(k); !ok && b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	return b.String()
}

// index parses a "[i]" key.
func index(k string) (int, bool) {
	if !strings.HasPrefix(k, "[") || !strings.HasSuffix(k, "]") {
		return 0, false
	}
	i, err := strconv.Atoi(k[1 : len(k)-1])
	return i, err == nil && i >= 0
}

func indexKey(i int) string { return fmt.Sprintf("[%d]", i) }

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
