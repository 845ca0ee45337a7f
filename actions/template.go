package actions

import (
	"fmt"
	"strings"
	"text/template"

	amtemplate "github.com/prometheus/alertmanager/template"
	"go.yaml.in/yaml/v3"
)

// Template is a parameter that is a Go text/template, parsed when the
// playbook loads and rendered per alert with Alertmanager's DefaultFuncs,
// plus shellquote (ShellQuote), and missingkey=error: a label the alert
// does not have is an error, never "".
// The zero Template renders as "".
type Template struct {
	src string
	t   *template.Template
}

// ParseTemplate parses src. A string without "{{" is kept verbatim.
func ParseTemplate(src string) (Template, error) {
	if !strings.Contains(src, "{{") {
		return Template{src: src}, nil
	}
	t, err := template.New("").
		Option("missingkey=error").
		Funcs(template.FuncMap(amtemplate.DefaultFuncs)).
		Funcs(template.FuncMap{"shellquote": ShellQuote}).
		Parse(src)
	if err != nil {
		return Template{}, fmt.Errorf("template %q: %w", src, err)
	}
	return Template{src: src, t: t}, nil
}

// MustTemplate is ParseTemplate for tests and constants; it panics on error.
func MustTemplate(src string) Template {
	t, err := ParseTemplate(src)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template's source.
func (t Template) String() string { return t.src }

// IsZero reports whether the template is empty.
func (t Template) IsZero() bool { return t.src == "" }

// Render executes the template for target.
func (t Template) Render(target Target) (string, error) {
	if t.t == nil {
		return t.src, nil
	}
	var b strings.Builder
	if err := t.t.Execute(&b, target); err != nil {
		return "", fmt.Errorf("render %q: %w", t.src, err)
	}
	return b.String(), nil
}

// UnmarshalYAML parses the scalar as a template.
func (t *Template) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a string")
	}
	p, err := ParseTemplate(node.Value)
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// MarshalYAML writes the template's source.
func (t Template) MarshalYAML() (any, error) { return t.src, nil }

// RenderAll renders each template of ts, in order.
func RenderAll(ts []Template, target Target) ([]string, error) {
	out := make([]string, len(ts))
	for i, t := range ts {
		s, err := t.Render(target)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// RenderMap renders each template value of m.
func RenderMap(m map[string]Template, target Target) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, t := range m {
		s, err := t.Render(target)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}
