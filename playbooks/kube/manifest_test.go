package kube

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/builtin"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/strictyaml"
)

func testRegistry(t *testing.T) *actions.Registry {
	t.Helper()
	reg := actions.NewRegistry()
	require.NoError(t, builtin.Register(reg, builtin.Deps{}))
	return reg
}

func defaultSelector(t *testing.T) labels.Selector {
	t.Helper()
	sel, err := labels.Parse("selfheal.io/playbook=true")
	require.NoError(t, err)
	return sel
}

func parseManifestFile(t *testing.T, name string) (*Manifest, error) {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	return ParseManifest(testRegistry(t), name, data, defaultSelector(t))
}

func names(pbs []*playbooks.Playbook) []string {
	var out []string
	for _, pb := range pbs {
		out = append(out, pb.Name)
	}
	return out
}

// TestParseManifest checks every kind of entry of a multi-document
// manifest, with positions counted in testdata/manifest.yaml.
func TestParseManifest(t *testing.T) {
	const file = "testdata/manifest.yaml"
	m, err := parseManifestFile(t, file)
	require.NoError(t, err)

	type want struct {
		source    string
		line, col int
		exact     bool
		names     []string
		errs      []string
		warning   string
	}
	wants := []want{
		{source: "configmap/ops/disk/disk.yaml", line: 11, col: 3, exact: true, names: []string{"clean-disk"}},
		{source: "configmap/ops/disk/strip.yml", line: 20, col: 3, exact: true, names: []string{"strip-disk"}},
		{source: "configmap/ops/broken/typo.yaml", line: 38, col: 3, exact: true, errs: []string{
			file + `:46:17: playbooks[0].steps[0].with: unknown field "comand"`,
		}},
		{source: "configmap/ops/broken/quoted.yaml", line: 47, col: 3, errs: []string{
			// The value starts at 47:16; the problem is at 3:12 inside it.
			file + `:47:16: configmap/ops/broken/quoted.yaml:3:12: playbooks[0].match: at least one matcher is required`,
		}},
		{source: "configmap/default/unlabelled/keep.yaml", line: 60, col: 3, exact: true, names: []string{"unlabelled"},
			warning: "not loaded by selfheal: labels do not match selfheal.io/playbook=true"},
	}
	require.Len(t, m.Files, len(wants))
	for i, w := range wants {
		f := m.Files[i]
		t.Run(w.source, func(t *testing.T) {
			require.Equal(t, w.source, f.Source)
			require.Equal(t, playbooks.Position{Line: w.line, Column: w.col}, f.Pos)
			require.Equal(t, w.exact, f.Exact)
			require.Equal(t, w.warning, f.Warning)
			require.Equal(t, w.names, names(f.Playbooks))
			require.Equal(t, w.errs, errStrings(f.Err))
		})
	}
	// Playbooks point into the manifest, so a name clash names both places.
	pb := m.Files[0].Playbooks[0]
	require.Equal(t, file, pb.Source)
	require.Equal(t, playbooks.Position{Line: 13, Column: 15}, pb.Pos)

	require.Equal(t, []SkippedObject{
		{Pos: playbooks.Position{Line: 50, Column: 1}, Object: "Deployment ops/web", Reason: "not a ConfigMap"},
		{Pos: playbooks.Position{Line: 68, Column: 1}, Object: "configmap/ops/app-settings", Reason: "no data key ending in .yaml or .yml"},
	}, m.Skipped)
}

// TestParseManifestList walks what kubectl get -o yaml prints (kind: List)
// and a typed list whose items leave out their kind.
func TestParseManifestList(t *testing.T) {
	m, err := parseManifestFile(t, "testdata/list.yaml")
	require.NoError(t, err)
	var sources []string
	for _, f := range m.Files {
		require.NoError(t, f.Err, f.Source)
		require.Empty(t, f.Warning, f.Source)
		sources = append(sources, f.Source)
	}
	require.Equal(t, []string{"configmap/ops/disk/disk.yaml", "configmap/monitoring/wal/wal.yaml", "configmap/ops/typed/typed.yaml"}, sources)
	require.Equal(t, []SkippedObject{{Pos: playbooks.Position{Line: 50, Column: 5}, Object: "Secret ops/token", Reason: "not a ConfigMap"}}, m.Skipped)
}

func TestParseManifestErrors(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\n"
	for _, tc := range []struct {
		name, manifest string
		want           []string
	}{
		{"syntax error", "apiVersion: v1\nkind: Namespace\n---\n" + cm + "metadata: {name: x\n", []string{
			"m.yaml:6:11: syntax error: could not find flow mapping end token '}'"}},
		{"syntax error in the first document", cm + "metadata:\n  name: 'x\n---\n" + cm, []string{
			"m.yaml:5:1: syntax error: found unexpected document separator"}},
		{"syntax error after a block", cm + "metadata: {name: x}\ndata:\n  a.yaml: |\n    ---\n    x: 1\n---\n" + cm + "metadata:\n  name: x\n   bad: [\n", []string{
			"m.yaml:13:7: syntax error: mapping value is not allowed in this context"}},
		{"not a mapping", "- a\n- b\n", []string{"m.yaml:1:1: expected a Kubernetes object (a mapping), got a list"}},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", []string{"m.yaml:1:1: kind: required: a Kubernetes object needs a kind"}},
		{"no name", cm + "metadata: {namespace: ops}\n", []string{"m.yaml:3:11: metadata.name: required: a ConfigMap needs a name"}},
		{"no metadata", cm + "data: {}\n", []string{"m.yaml:1:1: metadata.name: required: a ConfigMap needs a name"}},
		{"name not a string", cm + "metadata: {name: [x]}\n", []string{`m.yaml:3:18: metadata.name: must be a string, got a list; quote it`}},
		{"data not a string", cm + "metadata: {name: x}\ndata:\n  a.yaml: 12\n  b.txt: true\n", []string{
			`m.yaml:5:11: data.a.yaml: must be a string, got !!int "12"; quote it`,
			`m.yaml:6:10: data.b.txt: must be a string, got !!bool "true"; quote it`}},
		{"data key twice", cm + "metadata: {name: x}\ndata:\n  a.yaml: ''\n  a.yaml: ''\n", []string{`m.yaml:6:3: data: key "a.yaml" given twice`}},
		{"data not a mapping", cm + "metadata: {name: x}\ndata: [a]\n", []string{"m.yaml:4:7: data: expected a mapping, got a list"}},
		{"label not a string", cm + "metadata: {name: x, labels: {a: 1}}\n", []string{`m.yaml:3:33: metadata.labels.a: must be a string, got !!int "1"; quote it`}},
		{"list item not a mapping", "apiVersion: v1\nkind: List\nitems: [a]\n", []string{`m.yaml:3:9: items[0]: expected a Kubernetes object (a mapping), got !!str "a"`}},
		{"list item without kind", "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n", []string{"m.yaml:4:3: items[0].kind: required: a Kubernetes object needs a kind"}},
		{"list item without name", "apiVersion: v1\nkind: ConfigMapList\nitems:\n- data: {}\n", []string{"m.yaml:4:3: items[0].metadata.name: required: a ConfigMap needs a name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest(testRegistry(t), "m.yaml", []byte(tc.manifest), nil)
			require.Equal(t, tc.want, errStrings(err))
		})
	}
}

// TestParseManifestKeepsGoodParts checks that a broken object or value
// does not hide the files of the others.
func TestParseManifestKeepsGoodParts(t *testing.T) {
	data := "apiVersion: v1\nkind: ConfigMap\ndata: {}\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, labels: {a: 1}}\ndata: {a.yaml: '', b.yaml: 2, c.yaml: 'playbooks: ['}\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-values}\ndata: {a.yaml: 1}\n"
	m, err := ParseManifest(testRegistry(t), "m.yaml", []byte(data), nil)
	require.Equal(t, []string{
		"m.yaml:1:1: metadata.name: required: a ConfigMap needs a name",
		`m.yaml:7:34: metadata.labels.a: must be a string, got !!int "1"; quote it`,
		`m.yaml:8:28: data.b.yaml: must be a string, got !!int "2"; quote it`,
		`m.yaml:13:16: data.a.yaml: must be a string, got !!int "1"; quote it`,
	}, errStrings(err))
	require.Len(t, m.Files, 2)
	require.Equal(t, "configmap/default/ok/a.yaml", m.Files[0].Source)
	require.NoError(t, m.Files[0].Err)
	require.Equal(t, "configmap/default/ok/c.yaml", m.Files[1].Source)
	require.ErrorContains(t, m.Files[1].Err, "syntax error")
	require.Empty(t, m.Skipped, "a ConfigMap with a broken playbook key is not one without any")
}

func errStrings(err error) []string {
	var out []string
	for _, e := range flatten(err) {
		out = append(out, e.Error())
	}
	return out
}

// TestInPlaceMeansTheValue checks the rule exact positions rest on: the
// document built for a literal block keeps each line where the manifest has
// it, and YAML reads it as it reads the value itself.
func TestInPlaceMeansTheValue(t *testing.T) {
	for _, tc := range []struct{ name, manifest string }{
		{"clip", "data:\n  a.yaml: |\n    playbooks:\n      - name: a\n"},
		{"strip, deeper", "data:\n  a.yaml: |-\n        playbooks:\n          - name: a\n            match: [x]\n"},
		{"keep, blank lines", "data:\n  a.yaml: |+\n\n    playbooks:\n\n      - name: a\n  \n\n"},
		{"indentation indicator", "data:\n  a.yaml: |2\n      # deeper first line\n    y: [1, 2]\n"},
		{"indicator and chomping", "data:\n  a.yaml: |4-\n          # deeper\n        y: 2\n"},
		{"comment after indicator", "data:\n  a.yaml: | # playbooks\n    # a comment line\n    x: {a: 'b'}\n"},
		{"more-indented blank line", "data:\n  a.yaml: |\n    x: |\n      one\n        \n      two\n"},
		{"nested block scalar", "data:\n  a.yaml: |\n    x: |2\n        deep\n      shallow\n    y: >\n      folded\n      text\n"},
		{"crlf", "data:\r\n  a.yaml: |\r\n    x: 1\r\n    y: 2\r\n"},
		{"empty", "data:\n  a.yaml: |\nother: 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &manifestParser{lines: strings.Split(tc.manifest, "\n")}
			var root yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tc.manifest), &root))
			value := strictyaml.Lookup(&root, "data", "a.yaml")
			doc, ok := p.inPlace(value)
			require.True(t, ok)

			// Line for line: blank up to the indicator, then the value's
			// lines with the block's indentation, at the manifest's lines.
			docLines := strings.Split(strings.TrimSuffix(string(doc), "\n"), "\n")
			valueLines := strings.Split(strings.TrimSuffix(value.Value, "\n"), "\n")
			if value.Value == "" {
				valueLines = nil
			}
			require.Len(t, docLines, value.Line+len(valueLines))
			for i := range value.Line {
				require.Empty(t, docLines[i])
			}
			for i, v := range valueLines {
				got := docLines[value.Line+i]
				manifestLine := strings.TrimSuffix(p.lines[value.Line+i], "\r")
				if v == "" {
					require.Empty(t, got)
					require.Empty(t, strings.Trim(manifestLine, " "))
					continue
				}
				require.Equal(t, manifestLine, got)
				require.True(t, strings.HasSuffix(got, v))
				require.Empty(t, strings.Trim(strings.TrimSuffix(got, v), " "), "only indentation is added")
			}

			// Meaning: the same data as the value parsed on its own.
			var fromValue, fromDoc any
			require.NoError(t, yaml.Unmarshal([]byte(value.Value), &fromValue))
			require.NoError(t, yaml.Unmarshal(doc, &fromDoc))
			require.Equal(t, fromValue, fromDoc)
		})
	}
}

// TestInPlaceFallsBack lists the values whose positions cannot be kept.
func TestInPlaceFallsBack(t *testing.T) {
	for _, tc := range []struct{ name, manifest string }{
		{"double-quoted", "a.yaml: \"x: 1\\n\"\n"},
		{"single-quoted", "a.yaml: 'x: 1'\n"},
		{"plain", "a.yaml: x\n"},
		{"folded", "a.yaml: >\n  x: 1\n"},
		{"document marker", "a.yaml: |\n  ---\n  x: 1\n"},
		{"document end", "a.yaml: |\n  x: 1\n  ...\n"},
		{"directive", "a.yaml: |\n  %YAML 1.2\n  ---\n  x: 1\n"},
		{"tab at the margin", "a.yaml: |\n  x\n  \ty\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &manifestParser{lines: strings.Split(tc.manifest, "\n")}
			var root yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tc.manifest), &root))
			_, ok := p.inPlace(strictyaml.Lookup(&root, "a.yaml"))
			require.False(t, ok)
		})
	}
}

// TestExactPositions checks that an error in a literal block is reported
// at the manifest line and column where the mistake is, whatever the
// block's indentation.
func TestExactPositions(t *testing.T) {
	for _, indicator := range []string{"|", "|-", "|+", "|6", "|6-"} {
		t.Run(indicator, func(t *testing.T) {
			manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: ops}\ndata:\n" +
				"  p.yaml: " + indicator + "\n" +
				"        playbooks:\n" +
				"          - name: p\n" +
				"\n" +
				"            match: ['a=\"b\"']\n" +
				"            steps:\n" +
				"              - name: s\n" +
				"                action: exec\n" +
				"                with: {command: [/bin/true], comand: x}\n"
			m, err := ParseManifest(testRegistry(t), "m.yaml", []byte(manifest), nil)
			require.NoError(t, err)
			require.Len(t, m.Files, 1)
			require.True(t, m.Files[0].Exact)
			// "comand" is on line 13, at column 46.
			require.Equal(t, 46, col(manifest, 13, "comand"))
			require.EqualError(t, m.Files[0].Err, `m.yaml:13:46: playbooks[0].steps[0].with: unknown field "comand"`)
		})
	}
}

// col returns the 1-based column of s on the 1-based line of text.
func col(text string, line int, s string) int {
	return strings.Index(strings.Split(text, "\n")[line-1], s) + 1
}

func TestIsManifest(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       bool
	}{
		{"configmap", "apiVersion: v1\nkind: ConfigMap\n", true},
		{"after empty documents", "# header\n---\n---\napiVersion: v1\nkind: List\nitems: []\n", true},
		{"json", `{"apiVersion": "v1", "kind": "List", "items": []}`, true},
		{"playbook file", "playbooks:\n  - name: a\n", false},
		{"kind only", "kind: ConfigMap\n", false},
		{"empty", "", false},
		{"syntax error", "apiVersion: [\n", false},
		{"list", "- apiVersion: v1\n  kind: ConfigMap\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, IsManifest([]byte(tc.data)))
		})
	}
}

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

// FuzzParseManifest checks that no input makes ParseManifest panic or
// return no Manifest.
func FuzzParseManifest(f *testing.F) {
	for _, name := range []string{"testdata/manifest.yaml", "testdata/list.yaml"} {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: *m}\ndata: {a.yaml: *x}\n"))
	reg := actions.NewRegistry()
	require.NoError(f, builtin.Register(reg, builtin.Deps{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := ParseManifest(reg, "m.yaml", data, nil)
		require.NotNil(t, m)
		IsManifest(data)
	})
}
