//go:build unix

package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

func TestPlan(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", "/home/selfheal")
	t.Setenv("LANG", "")
	require.NoError(t, os.Unsetenv("LANG"))
	t.Setenv("TZ", "")
	require.NoError(t, os.Unsetenv("TZ"))
	dir := t.TempDir()
	tests := []struct {
		name string
		set  func(p *Params)
		want actions.Plan
	}{
		{
			name: "absolute command, defaults",
			set:  func(p *Params) { p.Command = tmpls("/usr/bin/env", "--host", "{{ .Labels.instance }}") },
			want: actions.Plan{
				Summary: "run /usr/bin/env --host worker-01",
				Params: []actions.Param{
					{Name: "command", Value: "/usr/bin/env --host worker-01"},
					{Name: "path", Value: "/usr/bin/env"},
					{Name: "dir", Value: "(the daemon's working directory)"},
					{Name: "timeout", Value: "1m"},
				},
				Details: []string{
					"no shell; runs in its own process group, killed (SIGKILL) as a whole after 1m or when the run is cancelled",
					"inherited from the daemon (nothing else is): PATH, HOME",
					"alert variables: SELFHEAL_ALERT_JSON, SELFHEAL_ANNOTATION_SUMMARY, SELFHEAL_EPISODE, " +
						"SELFHEAL_FINGERPRINT, SELFHEAL_GENERATOR_URL, SELFHEAL_LABEL_ALERTNAME, SELFHEAL_LABEL_INSTANCE, " +
						"SELFHEAL_PLAYBOOK, SELFHEAL_RUN_ID, SELFHEAL_STARTS_AT, SELFHEAL_STATUS, SELFHEAL_STEP",
					"exit 0 succeeds; any other exit fails the step",
				},
			},
		},
		{
			name: "bare name, env, dir, retryable codes",
			set: func(p *Params) {
				p.Command = tmpls("env", "{{ .Annotations.summary }}", "it's")
				p.Env = map[string]actions.Template{
					"REASON": actions.MustTemplate("{{ .Labels.alertname }} on {{ .Labels.instance }}"),
					"MODE":   actions.MustTemplate("fast"),
				}
				p.Dir = dir
				p.Timeout = model.Duration(90 * time.Second)
				p.RetryableExitCodes = []int{75, 111}
			},
			want: actions.Plan{
				Summary: `run env 'disk 95% full' 'it'"'"'s'`,
				Params: []actions.Param{
					{Name: "command", Value: `env 'disk 95% full' 'it'"'"'s'`},
					{Name: "path", Value: "/usr/bin/env"},
					{Name: "dir", Value: dir},
					{Name: "timeout", Value: "1m30s"},
					{Name: "retryable_exit_codes", Value: "75, 111"},
					{Name: "env.MODE", Value: "fast"},
					{Name: "env.REASON", Value: "DiskFull on worker-01"},
				},
				Details: []string{
					"env resolves to /usr/bin/env on PATH",
					"no shell; runs in its own process group, killed (SIGKILL) as a whole after 1m30s or when the run is cancelled",
					"inherited from the daemon (nothing else is): PATH, HOME",
					"alert variables: SELFHEAL_ALERT_JSON, SELFHEAL_ANNOTATION_SUMMARY, SELFHEAL_EPISODE, " +
						"SELFHEAL_FINGERPRINT, SELFHEAL_GENERATOR_URL, SELFHEAL_LABEL_ALERTNAME, SELFHEAL_LABEL_INSTANCE, " +
						"SELFHEAL_PLAYBOOK, SELFHEAL_RUN_ID, SELFHEAL_STARTS_AT, SELFHEAL_STATUS, SELFHEAL_STEP",
					"set by params (override the above): MODE, REASON",
					"exit 0 succeeds; exit 75, 111 is retryable; any other exit fails the step",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(t, tt.set)
			got, err := a.Plan(context.Background(), target())
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPlanHasNoSideEffect(t *testing.T) {
	file := filepath.Join(t.TempDir(), "created")
	a := newAction(t, func(p *Params) { p.Command = tmpls("/usr/bin/touch", file) })

	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "run /usr/bin/touch "+file, plan.Summary)
	require.NoFileExists(t, file)

	_, err = a.Run(context.Background(), target())
	require.NoError(t, err)
	require.FileExists(t, file)
}

func TestPlanArgvIsWhatRunExecutes(t *testing.T) {
	// The script prints its arguments NUL-separated; $0 is the path the
	// kernel was given, which is argv[0] for an absolute command.
	rec := script(t, `printf '%s\0' "$0" "$@"`)
	a := newAction(t, func(p *Params) {
		p.Command = tmpls(rec, "--host", "{{ .Labels.instance }}", "two words", "", "it's", "{{ .Annotations.summary }}", "a\nb")
	})
	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)

	ran := strings.Split(strings.TrimSuffix(res.Details["stdout"], "\x00"), "\x00")
	require.Equal(t, []string{rec, "--host", "worker-01", "two words", "", "it's", "disk 95% full", "a\nb"}, ran)
	require.Equal(t, "run "+quoteArgv(ran), plan.Summary)
	require.Equal(t, actions.Param{Name: "command", Value: quoteArgv(ran)}, plan.Params[0])
}

func TestPlanErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	tests := []struct {
		name    string
		set     func(p *Params)
		wantErr string
	}{
		{
			name: "dir missing",
			set: func(p *Params) {
				p.Command = tmpls("/bin/true")
				p.Dir = "/nonexistent/dir"
			},
			wantErr: "exec: dir: stat /nonexistent/dir: no such file or directory",
		},
		{
			name: "dir is a file",
			set: func(p *Params) {
				p.Command = tmpls("/bin/true")
				p.Dir = file
			},
			wantErr: "exec: dir: " + file + " is not a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(t, tt.set)
			_, err := a.Plan(context.Background(), target())
			require.EqualError(t, err, tt.wantErr)
		})
	}
}
