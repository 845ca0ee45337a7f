//go:build unix

package exec

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// hostile is the alert of the tests below with the label x set to v.
func hostile(v string) actions.Target {
	t := target()
	t.Labels = map[string]string{"alertname": "DiskFull", "instance": "worker-01", "x": v}
	return t
}

// TestShellTemplatesRefusedAtLoad: a label templated into a shell script or
// an interpreter's code, a program a label names, or a variable that
// changes which code runs are load errors, each at its own position.
func TestShellTemplatesRefusedAtLoad(t *testing.T) {
	tests := []struct {
		name, src, wantErr string
	}{
		{
			name:    "label in sh -c",
			src:     `command: [/bin/sh, -c, 'touch {{ .Labels.x }}']`,
			wantErr: `step.yaml:1:24: steps[0].with.command[2]: /bin/sh runs this as shell code, so a label could become a command: {{.Labels.x}} must end in "| shellquote", or pass the value after the script and use "$1"`,
		},
		{
			name:    "bash -ec through env",
			src:     "command:\n  - /usr/bin/env\n  - bash\n  - -ec\n  - 'rm -rf /data/{{ .Labels.x }}'",
			wantErr: `step.yaml:5:5: steps[0].with.command[3]: bash runs this as shell code, so a label could become a command: {{.Labels.x}} must end in "| shellquote", or pass the value after the script and use "$1"`,
		},
		{
			name:    "quoted inside the script",
			src:     `command: [/bin/sh, -c, 'echo "{{ .Labels.x | shellquote }}"']`,
			wantErr: `step.yaml:1:24: steps[0].with.command[2]: /bin/sh runs this as shell code, so a label could become a command: {{.Labels.x | shellquote}} is inside quotes or backquotes, where shellquote does not protect it`,
		},
		{
			name:    "after a backslash",
			src:     `command: [/bin/sh, -c, 'echo \{{ .Labels.x | shellquote }}']`,
			wantErr: `step.yaml:1:24: steps[0].with.command[2]: /bin/sh runs this as shell code, so a label could become a command: {{.Labels.x | shellquote}} follows a backslash or a $, which would change its quoting`,
		},
		{
			name:    "python code",
			src:     `command: [python3, -c, 'import os; os.remove("{{ .Labels.x }}")']`,
			wantErr: `step.yaml:1:24: steps[0].with.command[2]: python3 runs this as code, so a label could become code: pass values as arguments after it or in the environment (SELFHEAL_LABEL_*), never in the code`,
		},
		{
			name:    "a label names the program",
			src:     `command: ['{{ .Labels.x }}', --now]`,
			wantErr: `step.yaml:1:11: steps[0].with.command[0]: "{{ .Labels.x }}": a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path`,
		},
		{
			name:    "a label sets LD_PRELOAD",
			src:     "command: [/bin/true]\nenv: {LD_PRELOAD: '/tmp/{{ .Labels.x }}'}",
			wantErr: `step.yaml:2:19: steps[0].with.env.LD_PRELOAD: a template may not set a variable that decides which code runs (PATH, LD_*, BASH_ENV, ...); write its value literally`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := build(t, tc.src)
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

// TestShellTemplatesAllowed: quoted values, values passed as positional
// arguments and programs under a literal folder load.
func TestShellTemplatesAllowed(t *testing.T) {
	for _, src := range []string{
		`command: [/bin/sh, -c, 'touch {{ .Labels.x | shellquote }}']`,
		`command: [/bin/sh, -c, 'touch {{ shellquote .Labels.x }} {{ if .Labels.y }}{{ .Labels.y | shellquote }}{{ end }}']`,
		`command: [/bin/sh, -c, 'touch -- "$1"', sh, '{{ .Labels.x }}']`,
		`command: [python3, -c, 'import sys; print(sys.argv[1])', '{{ .Labels.x }}']`,
		`command: ['/usr/local/lib/selfheal/{{ .Labels.fix }}']`,
		"command: [/bin/true]\nenv: {LD_PRELOAD: /usr/lib/libfoo.so, HOST: '{{ .Labels.x }}'}",
	} {
		t.Run(src, func(t *testing.T) {
			_, _, err := build(t, src)
			require.NoError(t, err)
		})
	}
}

// TestShellquoteDefusesHostileLabels runs a shell with hostile label values
// quoted by shellquote: each becomes one file name, nothing runs.
func TestShellquoteDefusesHostileLabels(t *testing.T) {
	for _, v := range []string{"; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "a'b; touch PWNED; '", "x\ntouch PWNED", "-rf"} {
		t.Run(v, func(t *testing.T) {
			dir := t.TempDir()
			a, _, err := build(t, `command: [/bin/sh, -c, 'touch -- {{ .Labels.x | shellquote }}']`+"\ndir: "+dir)
			require.NoError(t, err)
			_, err = a.Run(context.Background(), hostile(v))
			require.NoError(t, err)
			_, err = os.Stat(filepath.Join(dir, "PWNED"))
			require.ErrorIs(t, err, os.ErrNotExist, "the label ran a command")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1)
			require.Equal(t, v, entries[0].Name())
		})
	}
}

// TestHostileArgumentsRefusedAtRun: an argument a template starts may not
// become an option, and a templated path must stay under its literal
// folder. Plan and Run refuse alike, running nothing.
func TestHostileArgumentsRefusedAtRun(t *testing.T) {
	tests := []struct {
		name, src, x, wantErr string
	}{
		{
			name:    "label becomes an option",
			src:     `command: [/bin/rm, '{{ .Labels.x }}']`,
			x:       "-rf",
			wantErr: `exec: command[1]: "-rf" starts with "-", so the command would take it as an option; write --name={{ ... }}, or put a literal -- before it`,
		},
		{
			name:    "path escapes its folder",
			src:     `command: [/bin/rm, -r, '/srv/data/{{ .Labels.x }}']`,
			x:       "../victim",
			wantErr: `exec: command[2]: "/srv/data/../victim" leaves /srv/data, the folder the playbook names`,
		},
		{
			name:    "path is the folder itself",
			src:     `command: [/bin/rm, -r, '/srv/data/{{ .Labels.x }}']`,
			x:       ".",
			wantErr: `exec: command[2]: "/srv/data/." leaves /srv/data, the folder the playbook names`,
		},
		{
			name:    "NUL in a path",
			src:     `command: [/bin/rm, -r, '/srv/data/{{ .Labels.x }}']`,
			x:       "a\x00b",
			wantErr: `exec: command[2]: "/srv/data/a\x00b" contains a NUL or another control character`,
		},
		{
			name:    "newline in a path",
			src:     `command: [/bin/rm, -r, '/srv/data/{{ .Labels.x }}']`,
			x:       "a\nb",
			wantErr: `exec: command[2]: "/srv/data/a\nb" contains a NUL or another control character`,
		},
		{
			name:    "program outside its folder",
			src:     `command: ['/usr/local/lib/selfheal/{{ .Labels.x }}']`,
			x:       "../../../bin/sh",
			wantErr: `exec: command[0]: "/usr/local/lib/selfheal/../../../bin/sh" leaves /usr/local/lib/selfheal, the folder the playbook names`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _, err := build(t, tc.src)
			require.NoError(t, err)
			_, err = a.Plan(context.Background(), hostile(tc.x))
			require.EqualError(t, err, tc.wantErr)
			_, err = a.Run(context.Background(), hostile(tc.x))
			require.EqualError(t, err, tc.wantErr)
			require.False(t, actions.IsRetryable(err), "permanent")
		})
	}
}

// TestHostileArgumentsAllowed: after a literal --, or after a shell script,
// a value starting with "-" is an operand; a literal option prefix keeps it
// a value.
func TestHostileArgumentsAllowed(t *testing.T) {
	for _, src := range []string{
		`command: [/bin/echo, --, '{{ .Labels.x }}']`,
		`command: [/bin/echo, '--name={{ .Labels.x }}']`,
		`command: [/bin/sh, -c, 'echo "$1"', sh, '{{ .Labels.x }}']`,
	} {
		t.Run(src, func(t *testing.T) {
			a, _, err := build(t, src)
			require.NoError(t, err)
			_, err = a.Run(context.Background(), hostile("-rf"))
			require.NoError(t, err)
		})
	}
}
