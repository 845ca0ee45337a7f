// Package strictyaml decodes YAML into Go structs strictly: an unknown key,
// a duplicate key or a value of the wrong shape is an error that names the
// file, line, column and YAML path, and every error of a document is
// reported, not only the first.
//
// Structs are described by their `yaml` tags, as with go.yaml.in/yaml/v3,
// an inline map taking the keys that are not fields. Types that implement
// yaml.Unmarshaler decode themselves; so do those that implement the
// obsolete v2 interface (model.Duration, Prometheus' HTTPClientConfig),
// once a struct's mapping has passed the same strict checks (see
// decoder.obsolete). A field of type yaml.Node or *yaml.Node keeps the raw
// node for a later, typed decode (action parameters do this).
package strictyaml

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"go.yaml.in/yaml/v3"
)

// Error is one problem at one position of a YAML document.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the YAML path of the value, like "playbooks[2].steps[0].with".
	Path string
	Msg  string
}

// Error renders "file:line:col: path: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns an *Error at node's position.
func Errorf(file string, node *yaml.Node, path, format string, args ...any) *Error {
	e := &Error{File: file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if node != nil {
		e.Line, e.Column = node.Line, node.Column
	}
	return e
}

var lineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// Parse parses data into a document node. A syntax error names the file,
// line and column: go.yaml.in/yaml/v3 reports only a line, so the position
// and message come from a second parser, github.com/goccy/go-yaml, which
// reports both, where the two agree (see trustSyntaxPosition); otherwise
// yaml/v3's own message and line are kept.
func Parse(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := &Error{File: file, Msg: err.Error()}
		if m := lineRE.FindStringSubmatch(e.Msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = "syntax error: " + e.Msg[len(m[0]):]
		}
		if line, col, msg, ok := syntaxPosition(data); ok && trustSyntaxPosition(e, line) {
			e.Line, e.Column, e.Msg = line, col, "syntax error: "+msg
		}
		return nil, e
	}
	return &doc, nil
}

// trustSyntaxPosition says whether goccy's line agrees with yaml/v3's error
// e. yaml/v3 names a line before the problem: for its parser errors ("did
// not find expected key") the line where the enclosing block starts, minus
// one, so goccy may be any number of lines later; for its scanner errors
// the line of the problem or of the start of the broken construct, so goccy
// may be earlier (where an unclosed quote or bracket starts) but at most
// one line later.
func trustSyntaxPosition(e *Error, line int) bool {
	return e.Line == 0 || line <= e.Line+1 || strings.HasPrefix(e.Msg, "syntax error: did not find expected ")
}

// syntaxPosition asks goccy/go-yaml where data's syntax error is. It only
// locates: a panic in it (fuzzing input) leaves yaml/v3's answer.
func syntaxPosition(data []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0, goccyparser.AllowDuplicateMapKey()) // duplicates are Decode's to report
	var se *goccy.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil || se.Token.Position.Line <= 0 {
		return 0, 0, "", false
	}
	pos := se.Token.Position
	// A plain value that goes on over more lines and is followed by a colon
	// (a key indented deeper than its sibling continues the value above
	// it): goccy names where the value starts, the problem is the colon.
	if next := se.Token.Next; se.Token.Type == token.StringType && next != nil && next.Type == token.MappingValueType &&
		next.Position != nil && next.Position.Line > pos.Line {
		return next.Position.Line, next.Position.Column, "mapping value is not allowed in this context", true
	}
	return pos.Line, pos.Column, se.Message, true
}

// Decode decodes node into out, which must be a non-nil pointer. path is the
// YAML path of node ("" for the document root). The returned error is nil or
// an errors.Join of *Error values, one per problem found.
func Decode(file, path string, node *yaml.Node, out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("strictyaml: Decode needs a non-nil pointer, got %T", out)
	}
	d := decoder{file: file}
	if node != nil && node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return nil
		}
		node = node.Content[0]
	}
	if node != nil {
		d.value(node, v.Elem(), path)
	}
	return errors.Join(d.errs...)
}

type decoder struct {
	file string
	errs []error
}

var (
	nodeType      = reflect.TypeFor[yaml.Node]()
	unmarshaler   = reflect.TypeFor[yaml.Unmarshaler]()
	obsoleteUnmar = reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]()
)

func (d *decoder) fail(node *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, Errorf(d.file, node, path, format, args...))
}

func (d *decoder) value(node *yaml.Node, v reflect.Value, path string) {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(*node))
		return
	case t.Kind() == reflect.Pointer && t.Elem() == nodeType:
		n := *node
		v.Set(reflect.ValueOf(&n))
		return
	case reflect.PointerTo(t).Implements(unmarshaler):
		d.leaf(node, v, path)
		return
	case reflect.PointerTo(t).Implements(obsoleteUnmar):
		d.obsolete(node, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if IsNull(node) {
			v.SetZero()
			return
		}
		p := reflect.New(t.Elem())
		d.value(node, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.structure(node, v, path)
	case reflect.Slice:
		d.sequence(node, v, path)
	case reflect.Map:
		d.mapping(node, v, path)
	default:
		d.leaf(node, v, path)
	}
}

// IsNull reports whether node is an explicit null (`key:` with nothing, or
// `~`, or `null`).
func IsNull(node *yaml.Node) bool {
	return node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null"
}

// Lookup returns the value at the mapping keys under node (a document or a
// mapping), or nil when a key is missing or a level is not a mapping.
func Lookup(node *yaml.Node, keys ...string) *yaml.Node {
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	for _, k := range keys {
		if node == nil || node.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Kind == yaml.ScalarNode && node.Content[i].Value == k {
				next = node.Content[i+1]
				break
			}
		}
		node = next
	}
	return node
}

// leaf decodes a scalar (or a self-decoding type) with yaml.v3 and turns its
// error into a positioned one.
func (d *decoder) leaf(node *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// yaml.v3 would truncate 1.5 to 1; a count must be written whole.
		if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!float" {
			d.fail(node, path, "must be a whole number, got %q", node.Value)
			return
		}
	}
	p := reflect.New(v.Type())
	if err := node.Decode(p.Interface()); err != nil {
		d.fail(node, path, "%s", cleanMsg(err))
		return
	}
	v.Set(p.Elem())
}

// obsolete decodes a type with a yaml.v2-style UnmarshalYAML, like
// Prometheus' config.HTTPClientConfig. Such a method decodes the struct's
// own fields through the callback it is given ("type plain T"), and that
// callback ignores unknown keys: yaml.v2 is strict only in UnmarshalStrict
// and yaml.v3 only with a Decoder's KnownFields, and neither reaches a
// node's Decode. So a mapping for a struct is first decoded here, field by
// field, into a value that is then dropped: every unknown key, duplicate or
// badly typed value is reported at its own position, as yaml.v2's
// UnmarshalStrict would refuse it. Only when that is clean does the type
// decode itself, for its defaults and its own checks (Validate), whose
// error is reported at node.
//
// This assumes what UnmarshalStrict assumes: that a mapping the method
// accepts has the struct's fields as keys.
func (d *decoder) obsolete(node *yaml.Node, v reflect.Value, path string) {
	if node.Kind == yaml.MappingNode && v.Kind() == reflect.Struct {
		before := len(d.errs)
		d.structure(node, reflect.New(v.Type()).Elem(), path)
		if len(d.errs) > before {
			return
		}
	}
	d.leaf(node, v, path)
}

var unmarshalPrefix = regexp.MustCompile(`^yaml: unmarshal errors:\s*\n\s*(line \d+: )?`)

func cleanMsg(err error) string {
	var s *Error
	if errors.As(err, &s) {
		return s.Msg
	}
	msg := unmarshalPrefix.ReplaceAllString(err.Error(), "")
	return strings.TrimPrefix(msg, "yaml: ")
}

func (d *decoder) structure(node *yaml.Node, v reflect.Value, path string) {
	if IsNull(node) {
		return
	}
	if node.Kind != yaml.MappingNode {
		d.fail(node, path, "expected a mapping, got %s", kindName(node))
		return
	}
	fields, rest := fieldsOf(v.Type())
	seen := make(map[string]bool, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i], node.Content[i+1]
		name := k.Value
		idx, ok := fields[name]
		switch {
		case seen[name]:
			d.fail(k, path, "field %q given twice", name)
			continue
		case !ok && rest == nil:
			d.fail(k, path, "unknown field %q", name)
			continue
		}
		seen[name] = true
		if !ok {
			d.inline(k, val, v.FieldByIndex(rest), path)
			continue
		}
		d.value(val, v.FieldByIndex(idx), join(path, name))
	}
}

// inline decodes a key that is not a field into the struct's inline map.
func (d *decoder) inline(k, val *yaml.Node, m reflect.Value, path string) {
	t := m.Type()
	key := reflect.New(t.Key()).Elem()
	before := len(d.errs)
	d.leaf(k, key, path)
	if len(d.errs) > before {
		return
	}
	elem := reflect.New(t.Elem()).Elem()
	d.value(val, elem, join(path, k.Value))
	if m.IsNil() {
		m.Set(reflect.MakeMap(t))
	}
	m.SetMapIndex(key, elem)
}

func (d *decoder) sequence(node *yaml.Node, v reflect.Value, path string) {
	if IsNull(node) {
		v.SetZero()
		return
	}
	if node.Kind != yaml.SequenceNode {
		d.fail(node, path, "expected a list, got %s", kindName(node))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(node.Content), len(node.Content))
	for i, item := range node.Content {
		d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) mapping(node *yaml.Node, v reflect.Value, path string) {
	if IsNull(node) {
		v.SetZero()
		return
	}
	if node.Kind != yaml.MappingNode {
		d.fail(node, path, "expected a mapping, got %s", kindName(node))
		return
	}
	t := v.Type()
	m := reflect.MakeMapWithSize(t, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		kn, vn := node.Content[i], node.Content[i+1]
		k := reflect.New(t.Key()).Elem()
		d.leaf(kn, k, path)
		if m.MapIndex(k).IsValid() {
			d.fail(kn, path, "key %q given twice", kn.Value)
			continue
		}
		val := reflect.New(t.Elem()).Elem()
		d.value(vn, val, join(path, kn.Value))
		m.SetMapIndex(k, val)
	}
	v.Set(m)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// fieldsOf maps the yaml names of t's fields, inline structs flattened, to
// their field index paths. rest is the index path of the inline map that
// takes every other key (nil when there is none), as in yaml.v2 and v3.
func fieldsOf(t reflect.Type) (fields map[string][]int, rest []int) {
	fields = map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			switch f.Type.Kind() {
			case reflect.Struct:
				inner, innerRest := fieldsOf(f.Type)
				for n, idx := range inner {
					fields[n] = append([]int{i}, idx...)
				}
				if innerRest != nil {
					rest = append([]int{i}, innerRest...)
				}
				continue
			case reflect.Map:
				rest = []int{i}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = []int{i}
	}
	return fields, rest
}
