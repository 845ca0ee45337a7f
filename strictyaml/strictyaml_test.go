package strictyaml

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type inner struct {
	Count int               `yaml:"count"`
	Every model.Duration    `yaml:"every"`
	Tags  map[string]string `yaml:"tags"`
}

type outer struct {
	Name  string     `yaml:"name"`
	Items []inner    `yaml:"items"`
	Ptr   *inner     `yaml:"ptr"`
	Raw   *yaml.Node `yaml:"raw"`
}

func decode(t *testing.T, src string) (outer, error) {
	t.Helper()
	doc, err := Parse("f.yaml", []byte(src))
	require.NoError(t, err)
	var o outer
	return o, Decode("f.yaml", "", doc, &o)
}

func TestDecodeValid(t *testing.T) {
	o, err := decode(t, "name: x\nitems:\n  - {count: 2, every: 5m, tags: {a: b}}\nptr: {count: 1}\nraw: {anything: [1, 2]}\n")
	require.NoError(t, err)
	require.Equal(t, "x", o.Name)
	require.Equal(t, 2, o.Items[0].Count)
	require.Equal(t, model.Duration(5*time.Minute), o.Items[0].Every)
	require.Equal(t, map[string]string{"a": "b"}, o.Items[0].Tags)
	require.Equal(t, 1, o.Ptr.Count)
	require.Equal(t, yaml.MappingNode, o.Raw.Kind)
	require.Equal(t, 5, o.Raw.Line)
}

func TestDecodeReportsEveryErrorWithPosition(t *testing.T) {
	_, err := decode(t, `name: x
nmae: y
items:
  - count: 1.5
    every: 5 minutes
    colour: red
  - count: two
ptr: [1]
name: again
`)
	require.Error(t, err)
	require.Equal(t, `f.yaml:2:1: unknown field "nmae"
f.yaml:4:12: items[0].count: must be a whole number, got "1.5"
f.yaml:5:12: items[0].every: unknown unit " minutes" in duration "5 minutes"
f.yaml:6:5: items[0]: unknown field "colour"
f.yaml:7:12: items[1].count: cannot unmarshal !!str `+"`two`"+` into int
f.yaml:8:6: ptr: expected a mapping, got a list
f.yaml:9:1: field "name" given twice`, err.Error())
}

// TestParseSyntaxError: syntax errors carry line and column. yaml/v3 alone
// would say "line 2" for the unclosed flow sequence opened on line 3, and
// "line 1" (where the enclosing block starts) for most bad indents.
func TestParseSyntaxError(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"unclosed quote", "a: 'unterminated\nb: c\n", "f.yaml:1:4: syntax error: could not find end character of single-quoted text"},
		{"unclosed flow sequence", "playbooks:\n  - name: x\n    match: ['a=b'\n", "f.yaml:3:12: syntax error: sequence end token ']' not found"},
		{"tab", "a:\n\t- b\n", "f.yaml:2:1: syntax error: found character '\t' that cannot start any token"},
		{"key less indented than its siblings in a list item", "playbooks:\n  - name: x\n    match: [a]\n   steps: []\n",
			"f.yaml:4:4: syntax error: value is not allowed in this context"},
		{"key more indented than its siblings in a list item", "playbooks:\n  - name: x\n    match: [a]\n      steps: []\n",
			"f.yaml:4:7: syntax error: value is not allowed in this context"},
		{"list item less indented than the one before", "a:\n  b:\n    - 1\n   - 2\n", "f.yaml:4:4: syntax error: value is not allowed in this context"},
		{"key after a list at the list's indent", "a:\n  - b\n  c: d\n", "f.yaml:3:3: syntax error: value is not allowed in this context"},
		// A deeper key continues the plain value above it ("2 queue"), so
		// the error is the colon after it, not where that value starts.
		{"key more indented than its sibling", "receiver:\n  insecure: true\nengine:\n workers: 2\n  queue: 3\n",
			"f.yaml:5:8: syntax error: mapping value is not allowed in this context"},
		{"key under a scalar", "a: 1\nb: 2\n  c: 3\n", "f.yaml:3:4: syntax error: mapping value is not allowed in this context"},
		{"key under a list item", "a:\n  b:\n  - c\n   d: 1\n", "f.yaml:4:5: syntax error: mapping value is not allowed in this context"},
		{"two colons on a line", "a: b: c\n", "f.yaml:1:4: syntax error: mapping value is not allowed in this context"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.src))
			require.EqualError(t, err, c.want, c.src)
		})
	}
}

func TestDecodeNeedsPointer(t *testing.T) {
	require.Error(t, Decode("f", "", &yaml.Node{}, outer{}))
}

// legacy decodes itself the yaml.v2 way, like Prometheus' HTTPClientConfig:
// defaults, its own fields through the callback, then its own check.
type legacy struct {
	Name string `yaml:"name"`
	Port int    `yaml:"port"`
	Sub  *inner `yaml:"sub"`
}

func (l *legacy) UnmarshalYAML(unmarshal func(any) error) error {
	type plain legacy
	*l = legacy{Port: 80}
	if err := unmarshal((*plain)(l)); err != nil {
		return err
	}
	if l.Name == "" {
		return errors.New("name must be set")
	}
	return nil
}

// headers takes the keys that are not its fields in an inline map.
type headers struct {
	Known string           `yaml:"known"`
	Rest  map[string]inner `yaml:",inline"`
}

type withLegacy struct {
	L   legacy   `yaml:"l"`
	Ls  []legacy `yaml:"ls"`
	Hdr headers  `yaml:"hdr"`
}

func decodeLegacy(t *testing.T, src string) (withLegacy, error) {
	t.Helper()
	doc, err := Parse("f.yaml", []byte(src))
	require.NoError(t, err)
	var w withLegacy
	return w, Decode("f.yaml", "", doc, &w)
}

// TestDecodeObsoleteUnmarshalerStrictly: a type with a v2-style
// UnmarshalYAML keeps its defaults and its own check, and its unknown keys
// are errors at their positions, at any depth.
func TestDecodeObsoleteUnmarshalerStrictly(t *testing.T) {
	w, err := decodeLegacy(t, "l: {name: a}\nls: [{name: b, port: 8, sub: {count: 1}}]\n")
	require.NoError(t, err)
	require.Equal(t, legacy{Name: "a", Port: 80}, w.L, "its default")
	require.Equal(t, legacy{Name: "b", Port: 8, Sub: &inner{Count: 1}}, w.Ls[0])

	_, err = decodeLegacy(t, `l: {name: a, prot: 8}
ls:
  - {name: b, sub: {count: 1, colour: red}}
  - {port: 1}
  - {name: c, port: eight}
`)
	require.EqualError(t, err, `f.yaml:1:14: l: unknown field "prot"
f.yaml:3:31: ls[0].sub: unknown field "colour"
f.yaml:4:5: ls[1]: name must be set
f.yaml:5:21: ls[2].port: cannot unmarshal !!str `+"`eight`"+` into int`)
}

// TestDecodeInlineMap: keys that are not fields go to the inline map, each
// value decoded strictly.
func TestDecodeInlineMap(t *testing.T) {
	w, err := decodeLegacy(t, "hdr: {known: x, a: {count: 1}}\n")
	require.NoError(t, err)
	require.Equal(t, headers{Known: "x", Rest: map[string]inner{"a": {Count: 1}}}, w.Hdr)

	_, err = decodeLegacy(t, "hdr: {known: x, b: {count: 2, colour: red}, known: y}\n")
	require.EqualError(t, err, `f.yaml:1:31: hdr.b: unknown field "colour"
f.yaml:1:45: hdr: field "known" given twice`)
}
