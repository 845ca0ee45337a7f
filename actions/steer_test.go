package actions

import (
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/strictyaml"
)

// hostileValues are label values an attacker who controls a label would
// try.
var hostileValues = []string{
	"../victim", "; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "evil.example:80", "-rf",
	"a'b", `a"b`, "a\\'b", "a\nb", "a\x00b", "", "'", "''\\''",
}

// TestShellQuote: a POSIX shell reads every quoted value back as the one
// word it was.
func TestShellQuote(t *testing.T) {
	for _, v := range hostileValues {
		if v == "a\x00b" {
			continue // no argv holds a NUL
		}
		t.Run(v, func(t *testing.T) {
			out, err := exec.Command("/bin/sh", "-c", `printf %s `+ShellQuote(v)).Output()
			require.NoError(t, err)
			require.Equal(t, v, string(out))
		})
	}
	tmpl := MustTemplate("rm -- {{ .Labels.x | shellquote }}")
	got, err := tmpl.Render(Target{Labels: map[string]string{"x": "a'b; touch PWNED"}})
	require.NoError(t, err)
	require.Equal(t, `rm -- 'a'\''b; touch PWNED'`, got)
}

// TestCheckShellCode: every value a template puts into shell code is
// quoted by shellquote, outside quotes, and control flow keeps quotes
// balanced.
func TestCheckShellCode(t *testing.T) {
	for _, tc := range []struct{ src, wantErr string }{
		{"echo hello", ""},
		{"echo {{ .Labels.x | shellquote }} {{ shellquote .Run }}", ""},
		{"echo {{ .Labels.x | toUpper | shellquote }}", ""},
		{"{{ $x := .Labels.x }}echo {{ $x | shellquote }}", ""},
		{"echo {{ if .Labels.x }}'a'{{ else }}\"b\"{{ end }} {{ range .Labels }}{{ . | shellquote }} {{ end }}", ""},
		{"echo '{{ .Labels.x }}' # comment", "{{.Labels.x}} must end in \"| shellquote\", or pass the value after the script and use \"$1\""},
		{"echo {{ .Labels.x | shellquote | toUpper }}", "{{.Labels.x | shellquote | toUpper}} must end in \"| shellquote\", or pass the value after the script and use \"$1\""},
		{"echo '{{ .Labels.x | shellquote }}'", "{{.Labels.x | shellquote}} is inside quotes or backquotes, where shellquote does not protect it"},
		{"echo `ls {{ .Labels.x | shellquote }}`", "{{.Labels.x | shellquote}} is inside quotes or backquotes, where shellquote does not protect it"},
		{"echo \"it's\" {{ .Labels.x | shellquote }}", ""},
		{"echo 'it'\\''s' {{ .Labels.x | shellquote }}", ""},
		{"echo ${{ .Labels.x | shellquote }}", "{{.Labels.x | shellquote}} follows a backslash or a $, which would change its quoting"},
		{"echo {{ if .Labels.x }}'{{ end }}{{ .Labels.y | shellquote }}'", "quotes opened inside {{if .Labels.x}} must close there"},
		{`{{ define "x" }}{{ .Labels.x }}{{ end }}echo {{ template "x" . }}`, `{{template "x" .}} cannot be checked: write the values into the script with shellquote`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			err := CheckShellCode(MustTemplate(tc.src))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

// TestPaths: a templated path needs a literal absolute folder before its
// first template, and what it renders stays below that folder.
func TestPaths(t *testing.T) {
	for _, tc := range []struct{ src, wantErr string }{
		{"/var/lib/prometheus", ""},
		{"relative/but/literal", ""},
		{"/var/lib/{{ .Labels.x }}", ""},
		{"/var/lib/prom-{{ .Labels.x }}/data", ""},
		{"/var/lib/ {{- .Labels.x }}", ""},
		{"{{ .Labels.x }}", `"{{ .Labels.x }}": a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path`},
		{"/{{ .Labels.x }}", `"/{{ .Labels.x }}": a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path`},
		{"var/{{ .Labels.x }}", `"var/{{ .Labels.x }}": a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			err := CheckPathTemplate(MustTemplate(tc.src))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
	tmpl := MustTemplate("/var/lib/prom-{{ .Labels.x }}/data")
	for x, want := range map[string]string{
		"a":             "/var/lib/prom-a/data",
		"a/../b":        "/var/lib/b/data",
		"../victim":     "/var/lib/prom-../victim/data",
		"/../../victim": `"/var/lib/prom-/../../victim/data" leaves /var/lib, the folder the playbook names`,
		"/../../etc":    `"/var/lib/prom-/../../etc/data" leaves /var/lib, the folder the playbook names`,
		"a\x00":         `"/var/lib/prom-a\x00/data" contains a NUL or another control character`,
		"a\n":           `"/var/lib/prom-a\n/data" contains a NUL or another control character`,
	} {
		t.Run(x, func(t *testing.T) {
			got, err := RenderPath(tmpl, Target{Labels: map[string]string{"x": x}})
			if err != nil {
				require.EqualError(t, err, want)
				return
			}
			require.Equal(t, want, got)
		})
	}
}

// TestURLs: a URL that carries credentials has a literal origin, and a
// rendered URL is checked against its template again.
func TestURLs(t *testing.T) {
	const rule = `, so the URL's scheme, host and port must be literal: a template may only follow "scheme://host[:port]/"`
	for _, tc := range []struct{ src, carries, wantErr string }{
		{"https://hook.example/{{ .Labels.x }}", "a token", ""},
		{"https://hook.example:8443?q={{ .Labels.x }}", "a token", ""},
		{"https://{{ .Labels.x }}/hook", "", ""},
		{"https://{{ .Labels.x }}/hook", "a token", "the request carries a token" + rule},
		{"https://hook.example{{ .Labels.x }}/", "a token", "the request carries a token" + rule},
		{"https://hook.example:{{ .Labels.x }}/", "a token", "the request carries a token" + rule},
		{"{{ .Labels.x }}", "a token", "the request carries a token" + rule},
		{"https://u:p@{{ .Labels.x }}/", "", "the request carries a user and password in the URL" + rule},
		{"https://u:{{ .Labels.x }}@hook.example/", "", "the request carries a user and password in the URL" + rule},
	} {
		t.Run(tc.src+" "+tc.carries, func(t *testing.T) {
			err := CheckCredentialURL(MustTemplate(tc.src), tc.carries)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
	pinned := MustTemplate("https://hook.example/{{ .Labels.x }}")
	require.NoError(t, CheckRenderedURL(pinned, mustURL(t, "https://hook.example/@evil.example/")))
	require.EqualError(t, CheckRenderedURL(pinned, mustURL(t, "https://evil.example:80/x")),
		`"https://evil.example:80/x": its scheme, host and port are not the literal https://hook.example of the playbook`)
	free := MustTemplate("http://{{ .Labels.x }}/hook")
	require.NoError(t, CheckRenderedURL(free, mustURL(t, "http://evil.example:80/hook")))
	require.EqualError(t, CheckRenderedURL(free, mustURL(t, "http://u:p@evil.example/hook")),
		`"http://u:xxxxx@evil.example/hook": a label may not add a user and password to the URL`)
	require.NoError(t, CheckRenderedURL(MustTemplate("http://u:p@hook.example/{{ .Labels.x }}"), mustURL(t, "http://u:p@hook.example/a")))
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

type steerParams struct {
	Command []Template          `yaml:"command"`
	Env     map[string]Template `yaml:"env"`
	Other   string              `yaml:"other"`
}

func (p *steerParams) Validate() error {
	var errs []error
	if p.Other != "" {
		errs = append(errs, errors.New("other: must be empty"))
	}
	for i, c := range p.Command {
		if err := CheckPathTemplate(c); err != nil {
			errs = append(errs, ParamErrorf(fmt.Sprintf("command[%d]", i), "%v", err))
		}
	}
	for k := range p.Env {
		errs = append(errs, ParamErrorf("env."+k, "refused"))
	}
	return errors.Join(errs...)
}

// TestBuildPositionsParamErrors: a ParamError from Validate is reported at
// its parameter's own position and path; other errors at the step's with.
func TestBuildPositionsParamErrors(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, r.Register(Typed("t", "", "", func() *steerParams { return &steerParams{} },
		func(*steerParams) (Action, error) { return nil, nil })))
	doc, err := strictyaml.Parse("pb.yaml", []byte("command: [/ok, '{{ .Labels.x }}']\nenv:\n  A.B: '{{ .Run }}'\nother: x\n"))
	require.NoError(t, err)
	_, _, err = r.Build("pb.yaml", "steps[0].with", "t", doc.Content[0])
	require.EqualError(t, err, `pb.yaml:1:1: steps[0].with: other: must be empty
pb.yaml:1:16: steps[0].with.command[1]: "{{ .Labels.x }}": a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path
pb.yaml:3:8: steps[0].with.env.A.B: refused`)
}
