package kube

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/strictyaml"
)

// Manifest is what ParseManifest found in a manifest file.
type Manifest struct {
	// Files are the playbook files of every ConfigMap, in manifest order.
	Files []ManifestFile
	// Skipped are the objects that hold no playbook file, in manifest
	// order: other kinds, and ConfigMaps without a playbook key.
	Skipped []SkippedObject
}

// ManifestFile is one playbook file of a manifest: one data key of one
// ConfigMap, validated as selfheal would load it.
type ManifestFile struct {
	// Source names the file as the daemon does: configmap/<ns>/<name>/<key>.
	Source string
	// Pos is where the data key is in the manifest.
	Pos playbooks.Position
	// Exact reports whether the positions in Err are the manifest's own,
	// which they are for a literal block value (`key: |`). For any other
	// style they read MANIFEST:L:C: SOURCE:l:c: L:C is where the value
	// starts in the manifest (its quote or indicator), l:c the line and
	// column inside the value's decoded text.
	Exact bool
	// Playbooks are the file's playbooks when Err is nil. Their Source is
	// what their positions are relative to (the manifest file, or
	// "MANIFEST:L:C: SOURCE" when not Exact), so a name clash found by
	// playbooks.NewSet points into the manifest. Their Revision is that of
	// the text parsed, which for an Exact file is not the key's content.
	Playbooks []*playbooks.Playbook
	// Err is nil or every problem of the file, as playbooks.Parse reports
	// them.
	Err error
	// Warning, when not empty, says why the daemon would not load the file
	// although it is in the manifest: "not loaded by selfheal: labels do
	// not match <selector>". The file is validated all the same.
	Warning string
}

// SkippedObject is an object of a manifest that holds no playbook file.
type SkippedObject struct {
	// Pos is where the object starts in the manifest.
	Pos playbooks.Position
	// Object names it: "Deployment ops/web", or configmap/<ns>/<name>.
	Object string
	Reason string
}

// ParseManifest validates every playbook file of the ConfigMaps in a
// Kubernetes manifest: a YAML stream of objects, as given to kubectl apply,
// where an object of kind List (what kubectl get -o yaml prints) or of any
// other kind ending in List, with items, is walked. Each ConfigMap data key
// that IsPlaybookKey is parsed with playbooks.Parse, unless those keys hold
// more than playbooks.MaxFileSize together (as the daemon refuses them; an
// alias can make them larger than the manifest): then each such file's Err
// says so. binaryData is ignored.
// A ConfigMap without metadata.namespace is in "default". One whose labels
// do not match sel is validated and its files carry a Warning.
//
// file names the manifest in every position. A literal block value is
// parsed from a document that keeps it at its own lines and columns (the
// manifest with every other line blanked), so its errors are exact manifest
// positions; ManifestFile.Exact says how to read the others.
//
// The error is nil or an errors.Join of *strictyaml.Error: problems of the
// manifest itself, such as a syntax error, a document that is not a
// mapping, a ConfigMap without metadata.name, or a data value that is not a
// string; the problems of each playbook file are in its ManifestFile.Err.
// The Manifest is never nil: it holds every file found, even when the
// error is not nil. A nil reg knows no action; a nil sel matches every
// ConfigMap.
func ParseManifest(reg *actions.Registry, file string, data []byte, sel labels.Selector) (*Manifest, error) {
	if sel == nil {
		sel = labels.Everything()
	}
	p := &manifestParser{reg: reg, file: file, sel: sel, lines: strings.Split(string(data), "\n"), m: &Manifest{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.errs = append(p.errs, p.syntaxError(err))
			break
		}
		p.document(&doc)
	}
	return p.m, errors.Join(p.errs...)
}

// IsManifest reports whether data looks like a Kubernetes manifest rather
// than a playbook file: its first non-empty YAML document is a mapping with
// both apiVersion and kind.
func IsManifest(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return false
		}
		if len(doc.Content) == 0 || strictyaml.IsNull(doc.Content[0]) {
			continue
		}
		root := resolve(doc.Content[0])
		return root.Kind == yaml.MappingNode && strictyaml.Lookup(root, "apiVersion") != nil && strictyaml.Lookup(root, "kind") != nil
	}
}

// manifestParser collects the files and errors of one manifest.
type manifestParser struct {
	reg   *actions.Registry
	file  string
	sel   labels.Selector
	lines []string // the manifest's lines, to check literal blocks against
	m     *Manifest
	errs  []error
}

func (p *manifestParser) errorf(node *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, strictyaml.Errorf(p.file, node, path, format, args...))
}

func (p *manifestParser) document(doc *yaml.Node) {
	if len(doc.Content) == 0 || strictyaml.IsNull(doc.Content[0]) {
		return // an empty document, like a trailing "---"
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "expected a Kubernetes object (a mapping), got %s", kindName(root))
		return
	}
	kind, ok := p.str(strictyaml.Lookup(root, "kind"), "kind")
	switch {
	case !ok:
	case kind == "":
		p.errorf(root, "kind", "required: a Kubernetes object needs a kind")
	case strings.HasSuffix(kind, "List") && strictyaml.Lookup(root, "items") != nil:
		p.list(root, kind)
	default:
		p.object(root, "", kind)
	}
}

// list walks the items of a List. Items of a typed list (ConfigMapList)
// may leave out their kind; Lists in a List are not walked.
func (p *manifestParser) list(list *yaml.Node, kind string) {
	items := resolve(strictyaml.Lookup(list, "items"))
	if strictyaml.IsNull(items) {
		return
	}
	if items.Kind != yaml.SequenceNode {
		p.errorf(items, "items", "expected a list, got %s", kindName(items))
		return
	}
	def := strings.TrimSuffix(kind, "List")
	for i, item := range items.Content {
		path := fmt.Sprintf("items[%d]", i)
		item = resolve(item)
		if item.Kind != yaml.MappingNode {
			p.errorf(item, path, "expected a Kubernetes object (a mapping), got %s", kindName(item))
			continue
		}
		k, ok := p.str(strictyaml.Lookup(item, "kind"), path+".kind")
		if k == "" {
			k = def
		}
		switch {
		case !ok:
		case k == "":
			p.errorf(item, path+".kind", "required: a Kubernetes object needs a kind")
		default:
			p.object(item, path+".", k)
		}
	}
}

// object examines one object of the given kind; path is "" or "items[i].".
func (p *manifestParser) object(obj *yaml.Node, path, kind string) {
	if kind == "ConfigMap" {
		p.configMap(obj, path)
		return
	}
	name := kind
	if meta := resolve(strictyaml.Lookup(obj, "metadata")); meta != nil && meta.Kind == yaml.MappingNode {
		n, _ := scalar(strictyaml.Lookup(meta, "name"))
		ns, _ := scalar(strictyaml.Lookup(meta, "namespace"))
		switch {
		case ns != "" && n != "":
			name += " " + ns + "/" + n
		case n != "":
			name += " " + n
		}
	}
	p.m.Skipped = append(p.m.Skipped, SkippedObject{Pos: pos(obj), Object: name, Reason: "not a ConfigMap"})
}

func (p *manifestParser) configMap(obj *yaml.Node, path string) {
	meta := resolve(strictyaml.Lookup(obj, "metadata"))
	if meta == nil || strictyaml.IsNull(meta) {
		p.errorf(obj, path+"metadata.name", "required: a ConfigMap needs a name")
		return
	}
	if meta.Kind != yaml.MappingNode {
		p.errorf(meta, path+"metadata", "expected a mapping, got %s", kindName(meta))
		return
	}
	name, ok := p.str(strictyaml.Lookup(meta, "name"), path+"metadata.name")
	if ok && name == "" {
		p.errorf(meta, path+"metadata.name", "required: a ConfigMap needs a name")
	}
	ns, nsOK := p.str(strictyaml.Lookup(meta, "namespace"), path+"metadata.namespace")
	if ns == "" {
		ns = "default"
	}
	errs := len(p.errs)
	lbls := p.labels(resolve(strictyaml.Lookup(meta, "labels")), path+"metadata.labels")
	data := p.data(resolve(strictyaml.Lookup(obj, "data")), path+"data")
	if name == "" || !nsOK {
		return
	}
	var warning string
	if !p.sel.Matches(lbls) {
		warning = "not loaded by selfheal: labels do not match " + p.sel.String()
	}
	var size int64
	for _, kv := range data {
		if IsPlaybookKey(kv.key.Value) {
			size += int64(len(kv.value.Value))
		}
	}
	sizeErr := tooLarge(Owner(ns, name), size)
	n := 0
	for _, kv := range data {
		if !IsPlaybookKey(kv.key.Value) {
			continue
		}
		n++
		var f ManifestFile
		if sizeErr != nil {
			f = ManifestFile{Source: Source(ns, name, kv.key.Value), Pos: pos(kv.key), Err: sizeErr}
		} else {
			f = p.playbookFile(ns, name, kv.key, kv.value)
		}
		f.Warning = warning
		p.m.Files = append(p.m.Files, f)
	}
	if n == 0 && len(p.errs) == errs {
		p.m.Skipped = append(p.m.Skipped, SkippedObject{Pos: pos(obj), Object: Owner(ns, name), Reason: "no data key ending in .yaml or .yml"})
	}
}

// labels reads metadata.labels; an absent or null node is no labels. A
// label that is not a string is an error, and left out.
func (p *manifestParser) labels(node *yaml.Node, path string) labels.Set {
	set := labels.Set{}
	if node == nil || strictyaml.IsNull(node) {
		return set
	}
	if node.Kind != yaml.MappingNode {
		p.errorf(node, path, "expected a mapping, got %s", kindName(node))
		return set
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, kOK := p.str(node.Content[i], path)
		v, vOK := p.str(node.Content[i+1], path+"."+k)
		if kOK && vOK {
			set[k] = v
		}
	}
	return set
}

type keyValue struct{ key, value *yaml.Node }

// data reads a ConfigMap's data: every key and value must be a string, and
// no key may be given twice, or kubectl would refuse the object. It returns
// the entries that are right, so their playbooks are checked too.
func (p *manifestParser) data(node *yaml.Node, path string) []keyValue {
	if node == nil || strictyaml.IsNull(node) {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		p.errorf(node, path, "expected a mapping, got %s", kindName(node))
		return nil
	}
	var (
		out  []keyValue
		seen = map[string]bool{}
	)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := resolve(node.Content[i]), resolve(node.Content[i+1])
		key, kOK := p.str(k, path)
		_, vOK := p.str(v, path+"."+key)
		if kOK && seen[key] {
			p.errorf(k, path, "key %q given twice", key)
			continue
		}
		seen[key] = true
		if kOK && vOK {
			out = append(out, keyValue{k, v})
		}
	}
	return out
}

// str returns the value of a string scalar; absent and null are "". Any
// other value is an error, as it is for kubectl.
func (p *manifestParser) str(node *yaml.Node, path string) (string, bool) {
	node = resolve(node)
	if node == nil || strictyaml.IsNull(node) {
		return "", true
	}
	if node.Kind != yaml.ScalarNode || node.ShortTag() != "!!str" {
		p.errorf(node, path, "must be a string, got %s; quote it", kindName(node))
		return "", false
	}
	return node.Value, true
}

// playbookFile parses the value of one playbook key.
func (p *manifestParser) playbookFile(ns, name string, key, value *yaml.Node) ManifestFile {
	f := ManifestFile{Source: Source(ns, name, key.Value), Pos: pos(key)}
	if doc, ok := p.inPlace(value); ok {
		f.Exact = true
		f.Playbooks, f.Err = playbooks.Parse(p.reg, p.file, doc)
		return f
	}
	source := fmt.Sprintf("%s:%d:%d: %s", p.file, value.Line, value.Column, f.Source)
	f.Playbooks, f.Err = playbooks.Parse(p.reg, source, []byte(value.Value))
	return f
}

// inPlace returns a literal block scalar's text as a document whose line N
// is manifest line N, at the manifest's columns: as many empty lines as the
// block's indicator line number, then each line of the value indented by
// the block's indentation (empty lines stay empty). That is the manifest
// with every line outside the block blanked, and it means what the value
// means: indenting a YAML document uniformly does not change it. ok is
// false for any other style, and for a block whose lines do not match the
// manifest exactly or that holds a document marker or directive at its
// left margin, whose meaning indentation would change.
func (p *manifestParser) inPlace(value *yaml.Node) (doc []byte, ok bool) {
	if value.Style&yaml.LiteralStyle == 0 || value.Line < 1 {
		return nil, false
	}
	text := strings.TrimSuffix(value.Value, "\n")
	if text == "" {
		return []byte(strings.Repeat("\n", value.Line)), true
	}
	var b strings.Builder
	b.WriteString(strings.Repeat("\n", value.Line))
	indent := ""
	for i, line := range strings.Split(text, "\n") {
		n := value.Line + i // the index in p.lines of manifest line value.Line+1+i
		if n >= len(p.lines) {
			return nil, false
		}
		raw := strings.TrimSuffix(p.lines[n], "\r")
		if line == "" {
			if strings.Trim(raw, " ") != "" {
				return nil, false
			}
			b.WriteString("\n")
			continue
		}
		if atMargin(line) {
			return nil, false
		}
		if indent == "" {
			indent = strings.TrimSuffix(raw, line)
		}
		if indent == "" || strings.Trim(indent, " ") != "" || raw != indent+line {
			return nil, false
		}
		b.WriteString(raw)
		b.WriteString("\n")
	}
	return []byte(b.String()), true
}

// atMargin reports whether a line at the left margin of a YAML document
// means something it would not mean indented: a document marker, a
// directive, or a tab.
func atMargin(line string) bool {
	return isDocumentMarker(line) || strings.HasPrefix(line, "%") || strings.HasPrefix(line, "\t")
}

var syntaxLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError positions the syntax error the stream decoder met. yaml/v3
// gives a line (not always the problem's) and no column, and
// strictyaml.Parse, which says more, reads only a stream's first document.
// So the documents before the broken one are blanked, keeping every line
// and column where it is, and strictyaml.Parse reads the rest; the
// decoder's own message is the answer only when it finds nothing.
func (p *manifestParser) syntaxError(err error) error {
	e := &strictyaml.Error{File: p.file, Msg: err.Error()}
	if m := syntaxLineRE.FindStringSubmatch(e.Msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = e.Msg[len(m[0]):]
	}
	e.Msg = "syntax error: " + strings.TrimPrefix(e.Msg, "yaml: ")
	// The broken document starts at the last marker up to the decoder's
	// line, or, as it may name the line before the problem, the next one.
	starts := []int{0}
	for i := min(e.Line, len(p.lines)) - 1; i > 0; i-- {
		if isDocumentMarker(p.lines[i]) {
			starts[0] = i
			break
		}
	}
	for i := max(e.Line, 1); i < len(p.lines); i++ {
		if isDocumentMarker(p.lines[i]) {
			starts = append(starts, i)
			break
		}
	}
	for _, start := range starts {
		rest := strings.Repeat("\n", start) + strings.Join(p.lines[start:], "\n")
		var se *strictyaml.Error
		if _, perr := strictyaml.Parse(p.file, []byte(rest)); errors.As(perr, &se) && se.Line > 0 {
			return se
		}
	}
	return e
}

// isDocumentMarker reports whether a manifest line starts or ends a YAML
// document: "---" or "..." at the left margin, alone or before a space.
func isDocumentMarker(line string) bool {
	for _, m := range []string{"---", "..."} {
		if rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), m); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return true
		}
	}
	return false
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// scalar returns a scalar's value, for names in messages.
func scalar(n *yaml.Node) (string, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || strictyaml.IsNull(n) {
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	default:
		return "nothing"
	}
}

func pos(n *yaml.Node) playbooks.Position {
	return playbooks.Position{Line: n.Line, Column: n.Column}
}
