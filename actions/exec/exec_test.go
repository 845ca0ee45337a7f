//go:build unix

package exec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/strictyaml"
)

// target is the alert the tests act for.
func target() actions.Target {
	a := alert.Alert{
		Status:       alert.Firing,
		Labels:       map[string]string{"alertname": "DiskFull", "instance": "worker-01"},
		Annotations:  map[string]string{"summary": "disk 95% full"},
		StartsAt:     time.Date(2025, 3, 1, 10, 0, 0, 123000000, time.FixedZone("CET", 3600)),
		GeneratorURL: "http://prometheus/graph?g0.expr=up",
	}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	return actions.NewTarget(a, "clean-disk", "cleanup", "run-42")
}

// tmpls parses each string as a template.
func tmpls(src ...string) []actions.Template {
	out := make([]actions.Template, len(src))
	for i, s := range src {
		out[i] = actions.MustTemplate(s)
	}
	return out
}

// newAction builds an action from defaults changed by set.
func newAction(t *testing.T, set func(p *Params)) *Action {
	t.Helper()
	p := DefaultParams()
	set(p)
	a, err := New(p, nil)
	require.NoError(t, err)
	return a
}

// script writes an executable /bin/sh script into a temporary directory and
// returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return path
}

// build decodes src as a step's `with` through a registry, as playbooks do.
func build(t *testing.T, src string) (actions.Action, *Params, error) {
	t.Helper()
	r := actions.NewRegistry()
	require.NoError(t, r.Register(Spec(nil)))
	doc, err := strictyaml.Parse("step.yaml", []byte(src))
	require.NoError(t, err)
	a, p, err := r.Build("step.yaml", "steps[0].with", ID, doc.Content[0])
	if err != nil {
		return nil, nil, err
	}
	return a, p.(*Params), nil
}

// marshal renders p as YAML, templates as their source, for comparison.
func marshal(t *testing.T, p *Params) string {
	t.Helper()
	b, err := yaml.Marshal(p)
	require.NoError(t, err)
	return string(b)
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    *Params
		wantErr string
	}{
		{
			name: "defaults",
			src:  "command: [/bin/true]",
			want: &Params{Command: tmpls("/bin/true"), Timeout: model.Duration(time.Minute)},
		},
		{
			name: "everything",
			src: `command: [cleanup, --host, '{{ .Labels.instance }}']
env: {REASON: '{{ .Annotations.summary }}'}
dir: /tmp
timeout: 5m
retryable_exit_codes: [75]`,
			want: &Params{
				Command:            tmpls("cleanup", "--host", "{{ .Labels.instance }}"),
				Env:                map[string]actions.Template{"REASON": actions.MustTemplate("{{ .Annotations.summary }}")},
				Dir:                "/tmp",
				Timeout:            model.Duration(5 * time.Minute),
				RetryableExitCodes: []int{75},
			},
		},
		{
			name:    "unknown field",
			src:     "command: [/bin/true]\nx: 1",
			wantErr: `step.yaml:2:1: steps[0].with: unknown field "x"`,
		},
		{
			name:    "bad duration",
			src:     "command: [/bin/true]\ntimeout: soon",
			wantErr: `step.yaml:2:10: steps[0].with.timeout: not a valid duration string: "soon"`,
		},
		{
			name:    "command not a list",
			src:     "command: /bin/true --all",
			wantErr: `step.yaml:1:10: steps[0].with.command: expected a list, got "/bin/true --all"`,
		},
		{
			name:    "bad template",
			src:     "command: [/bin/echo, '{{ .Labels.x ']",
			wantErr: `step.yaml:1:22: steps[0].with.command[1]: template "{{ .Labels.x ": template: :1: unclosed action`,
		},
		{
			name:    "empty command",
			src:     "timeout: 1s",
			wantErr: `step.yaml:1:1: steps[0].with: command: must not be empty`,
		},
		{
			name: "every validation problem at once",
			src: `command: [bin/cleanup]
env: {1BAD: x, GOOD_1: y, 'A-B': z}
dir: relative/dir
timeout: 0s
retryable_exit_codes: [0, 75, 256]`,
			wantErr: `step.yaml:1:1: steps[0].with: command[0]: "bin/cleanup" must be an absolute path or a bare name looked up on PATH; ` +
				`env: invalid variable name "1BAD"; env: invalid variable name "A-B"; ` +
				`dir: "relative/dir" must be an absolute path; timeout: must be greater than 0; ` +
				`retryable_exit_codes[0]: 0 is not a failing exit code (1..255); ` +
				`retryable_exit_codes[2]: 256 is not a failing exit code (1..255)`,
		},
		{
			name:    "empty command name",
			src:     "command: ['']",
			wantErr: `step.yaml:1:1: steps[0].with: command[0]: must not be empty`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, p, err := build(t, tt.src)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, a)
			require.Equal(t, marshal(t, tt.want), marshal(t, p))
		})
	}
}

func TestSpec(t *testing.T) {
	s := Spec(nil)
	require.Equal(t, "exec", s.ID)
	require.NotEmpty(t, s.Summary)
	require.NotContains(t, s.Summary, "\n")

	// The documented example must build.
	doc, err := strictyaml.Parse("example.yaml", []byte(s.Example))
	require.NoError(t, err)
	var steps []struct {
		Action string    `yaml:"action"`
		With   yaml.Node `yaml:"with"`
	}
	require.NoError(t, doc.Decode(&steps))
	require.Len(t, steps, 1)
	require.Equal(t, ID, steps[0].Action)
	r := actions.NewRegistry()
	require.NoError(t, r.Register(s))
	_, _, err = r.Build("example.yaml", "with", ID, &steps[0].With)
	require.NoError(t, err)
}

func TestNewRejectsInvalidParams(t *testing.T) {
	_, err := New(&Params{Command: tmpls("/bin/true")}, nil)
	require.EqualError(t, err, "timeout: must be greater than 0")
	_, err = New(nil, nil)
	require.Error(t, err)
}

func TestEnvName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"instance", "INSTANCE"},
		{"alert_name2", "ALERT_NAME2"},
		{"kubernetes.io/pod-name", "KUBERNETES_IO_POD_NAME"},
		{"Mixed Case", "MIXED_CASE"},
		{"é", "_"},
		{"🔥x", "_X"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, envName(tt.in))
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/cleanup", "/usr/bin/cleanup"},
		{"--host=worker-01:9100", "--host=worker-01:9100"},
		{"", "''"},
		{"two words", "'two words'"},
		{"it's", `'it'"'"'s'`},
		{"$HOME", "'$HOME'"},
		{"a\nb", `"a\nb"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, quote(tt.in))
		})
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "nothing", want: ""},
		{name: "fits", writes: []string{"ab", "cd"}, want: "abcd"},
		{name: "exactly max", writes: []string{"abcdefgh"}, want: "abcdefgh"},
		{name: "overflow across writes", writes: []string{"abcde", "fghij"}, want: "…cdefghij"},
		{name: "one big write", writes: []string{"0123456789"}, want: "…23456789"},
		{name: "cut inside a rune", writes: []string{"aé1234567"}, want: "…1234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := &tail{max: 8}
			for _, w := range tt.writes {
				n, err := tl.Write([]byte(w))
				require.NoError(t, err)
				require.Equal(t, len(w), n)
			}
			require.Equal(t, tt.want, tl.String())
		})
	}
}

func TestStderrSuffix(t *testing.T) {
	tl := &tail{max: outputTail}
	_, _ = tl.Write([]byte(strings.Repeat("x", 1000) + "the end\n"))
	s := stderrSuffix(tl)
	require.True(t, strings.HasPrefix(s, `; stderr: "…x`), s)
	require.True(t, strings.HasSuffix(s, `the end"`), s)
	require.Equal(t, "", stderrSuffix(&tail{max: 8}))
}
