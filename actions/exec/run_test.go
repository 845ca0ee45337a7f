//go:build unix

package exec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

func TestRunEnvironment(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", "/home/selfheal")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "UTC")
	t.Setenv("SELFHEAL_TEST_DB_PASSWORD", "hunter2") // must not leak
	tg := target()
	tg.Labels["kubernetes.io/pod-name"] = "web-0"

	a := newAction(t, func(p *Params) {
		p.Command = tmpls("/usr/bin/env")
		p.Env = map[string]actions.Template{
			"GREETING":      actions.MustTemplate("hello {{ .Labels.instance }}"),
			"SELFHEAL_STEP": actions.MustTemplate("overridden"),
		}
	})
	res, err := a.Run(context.Background(), tg)
	require.NoError(t, err)
	require.Equal(t, "0", res.Details["exit_code"])
	require.Empty(t, res.Details["stderr"])

	got := map[string]string{}
	for line := range strings.Lines(res.Details["stdout"]) {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		require.True(t, ok, line)
		got[k] = v
	}
	require.Equal(t, map[string]string{
		"PATH":                                  "/usr/bin:/bin",
		"HOME":                                  "/home/selfheal",
		"LANG":                                  "C.UTF-8",
		"TZ":                                    "UTC",
		"SELFHEAL_STATUS":                       "firing",
		"SELFHEAL_FINGERPRINT":                  tg.Fingerprint,
		"SELFHEAL_STARTS_AT":                    "2025-03-01T09:00:00.123Z",
		"SELFHEAL_EPISODE":                      tg.Fingerprint + "@2025-03-01T09:00:00.123Z",
		"SELFHEAL_PLAYBOOK":                     "clean-disk",
		"SELFHEAL_STEP":                         "overridden",
		"SELFHEAL_RUN_ID":                       "run-42",
		"SELFHEAL_GENERATOR_URL":                "http://prometheus/graph?g0.expr=up",
		"SELFHEAL_LABEL_ALERTNAME":              "DiskFull",
		"SELFHEAL_LABEL_INSTANCE":               "worker-01",
		"SELFHEAL_LABEL_KUBERNETES_IO_POD_NAME": "web-0",
		"SELFHEAL_ANNOTATION_SUMMARY":           "disk 95% full",
		"SELFHEAL_ALERT_JSON": `{"status":"firing",` +
			`"labels":{"alertname":"DiskFull","instance":"worker-01","kubernetes.io/pod-name":"web-0"},` +
			`"annotations":{"summary":"disk 95% full"},"startsAt":"2025-03-01T09:00:00.123Z",` +
			`"fingerprint":"` + tg.Fingerprint + `"}`,
		"GREETING": "hello worker-01",
	}, got)
}

func TestRunUnsetInheritedVarsStayUnset(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	for _, name := range []string{"HOME", "LANG", "TZ"} {
		t.Setenv(name, "x")
		require.NoError(t, os.Unsetenv(name))
	}
	a := newAction(t, func(p *Params) { p.Command = tmpls("/usr/bin/env") })
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Contains(t, res.Details["stdout"], "PATH=/usr/bin:/bin\n")
	for _, name := range []string{"HOME=", "LANG=", "TZ="} {
		require.NotContains(t, "\n"+res.Details["stdout"], "\n"+name)
	}
}

func TestRunExit(t *testing.T) {
	tests := []struct {
		name          string
		script        string
		retryable     []int
		wantCode      string
		wantStdout    string
		wantErr       string // substring; "" means success
		wantRetryable bool
	}{
		{
			name:       "exit 0",
			script:     "echo out; echo err >&2",
			wantCode:   "0",
			wantStdout: "out\n",
		},
		{
			name:     "non-zero exit is permanent",
			script:   "echo out; echo 'disk busy' >&2; exit 3",
			wantCode: "3",
			wantErr:  `exec /bin/sh: exit status 3; stderr: "disk busy"`,
		},
		{
			name:      "exit code not in retryable_exit_codes",
			script:    "exit 3",
			retryable: []int{75},
			wantCode:  "3",
			wantErr:   "exec /bin/sh: exit status 3",
		},
		{
			name:          "retryable exit code",
			script:        "echo 'try later' >&2; exit 75",
			retryable:     []int{1, 75},
			wantCode:      "75",
			wantErr:       `exec /bin/sh: exit status 75; stderr: "try later"`,
			wantRetryable: true,
		},
		{
			name:     "killed by a signal",
			script:   "kill -9 $$",
			wantCode: "-1",
			wantErr:  "exec /bin/sh: signal: killed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(t, func(p *Params) {
				p.Command = tmpls("/bin/sh", "-c", tt.script)
				p.RetryableExitCodes = tt.retryable
			})
			res, err := a.Run(context.Background(), target())
			require.Equal(t, tt.wantCode, res.Details["exit_code"])
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tt.wantStdout, res.Details["stdout"])
				require.Equal(t, "err\n", res.Details["stderr"])
				require.True(t, strings.HasPrefix(res.Summary, "exit 0 after "), res.Summary)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
			require.Equal(t, tt.wantRetryable, actions.IsRetryable(err))
		})
	}
}

func TestRunOutputIsBounded(t *testing.T) {
	a := newAction(t, func(p *Params) {
		p.Command = tmpls("/bin/sh", "-c", `i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; printf END`)
	})
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	out := res.Details["stdout"]
	require.True(t, strings.HasPrefix(out, "…"), out[:20])
	require.True(t, strings.HasSuffix(out, "line 1999\nEND"))
	require.Equal(t, outputTail, len(strings.TrimPrefix(out, "…")))
}

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	a := newAction(t, func(p *Params) {
		// The grandchild `sleep` holds stdout open: unless the whole group
		// dies, Run would wait for it (or for WaitDelay).
		p.Command = tmpls("/bin/sh", "-c", `sleep 60 & echo $! > "$PID_FILE"; wait`)
		p.Env = map[string]actions.Template{"PID_FILE": actions.MustTemplate(pidFile)}
		p.Timeout = model.Duration(300 * time.Millisecond)
	})
	start := time.Now()
	res, err := a.Run(context.Background(), target())
	require.Less(t, time.Since(start), 3*time.Second)
	require.EqualError(t, err, "exec /bin/sh: timed out after 300ms; process group killed")
	require.False(t, actions.IsRetryable(err))
	require.Equal(t, "-1", res.Details["exit_code"])
	requireGone(t, readPid(t, pidFile))
}

func TestRunContextCancel(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	a := newAction(t, func(p *Params) {
		// Write then rename, so the file never exists empty: the canceller
		// below starts as soon as it appears.
		p.Command = tmpls("/bin/sh", "-c", `sleep 60 & echo $! > "$PID_FILE.tmp" && mv "$PID_FILE.tmp" "$PID_FILE"; wait`)
		p.Env = map[string]actions.Template{"PID_FILE": actions.MustTemplate(pidFile)}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the grandchild is running.
		for {
			if _, err := os.Stat(pidFile); err == nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := a.Run(ctx, target())
	require.Less(t, time.Since(start), 3*time.Second)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, actions.IsRetryable(err))
	requireGone(t, readPid(t, pidFile))
}

func TestRunAlreadyCancelled(t *testing.T) {
	file := filepath.Join(t.TempDir(), "created")
	a := newAction(t, func(p *Params) { p.Command = tmpls("/usr/bin/touch", file) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.Run(ctx, target())
	require.ErrorIs(t, err, context.Canceled)
	require.NoFileExists(t, file)
}

func TestRunRenderAndLookupErrors(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		env     map[string]string
		wantErr string
	}{
		{
			name:    "missing label",
			command: []string{"/bin/echo", "{{ .Labels.nope }}"},
			wantErr: `exec: command[1]: render "{{ .Labels.nope }}": template: :1:10: executing "" at <.Labels.nope>: map has no entry for key "nope"`,
		},
		{
			name:    "missing label in env",
			command: []string{"/bin/true"},
			env:     map[string]string{"HOST": "{{ .Labels.host }}"},
			wantErr: `exec: env.HOST: render "{{ .Labels.host }}": template: :1:10: executing "" at <.Labels.host>: map has no entry for key "host"`,
		},
		{
			name:    "not on PATH",
			command: []string{"selfheal-no-such-command"},
			wantErr: `exec: command[0]: "selfheal-no-such-command" not found on PATH "/usr/bin:/bin"`,
		},
		{
			// A templated command[0] has a literal absolute folder (a load
			// error otherwise, see TestShellTemplatesRefusedAtLoad).
			name:    "program outside its folder after rendering",
			command: []string{"/opt/fix/{{ .Labels.alertname }}/../../run"},
			wantErr: `exec: command[0]: "/opt/fix/DiskFull/../../run" leaves /opt/fix, the folder the playbook names`,
		},
		{
			name:    "absolute path missing",
			command: []string{"/nonexistent/cleanup"},
			wantErr: "exec: command[0]: stat /nonexistent/cleanup: no such file or directory",
		},
		{
			name:    "not executable",
			command: []string{"/etc/passwd"},
			wantErr: "exec: command[0]: exec /etc/passwd: permission denied",
		},
	}
	t.Setenv("PATH", "/usr/bin:/bin")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(t, func(p *Params) {
				p.Command = tmpls(tt.command...)
				p.Env = map[string]actions.Template{}
				for k, v := range tt.env {
					p.Env[k] = actions.MustTemplate(v)
				}
			})
			_, err := a.Run(context.Background(), target())
			require.EqualError(t, err, tt.wantErr)
			require.False(t, actions.IsRetryable(err))
			_, err = a.Plan(context.Background(), target())
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestRunResolvesOnCommandPath(t *testing.T) {
	bin := t.TempDir()
	tool := filepath.Join(bin, "mytool")
	require.NoError(t, os.WriteFile(tool, []byte("#!/bin/sh\necho \"tool $1\"\n"), 0o755))
	a := newAction(t, func(p *Params) {
		p.Command = tmpls("mytool", "{{ .Labels.instance }}")
		p.Env = map[string]actions.Template{"PATH": actions.MustTemplate("relative/bin:" + bin)}
	})
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "tool worker-01\n", res.Details["stdout"])
}

func TestRunDir(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	a := newAction(t, func(p *Params) {
		p.Command = tmpls("/bin/pwd")
		p.Dir = dir
	})
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, dir+"\n", res.Details["stdout"])
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// requireGone waits briefly for pid to be dead: gone, or a zombie nobody
// reaped yet (a container's init may never reap it).
func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return errors.Is(err, os.ErrNotExist)
		}
		// The state follows the parenthesised command name.
		_, rest, _ := strings.Cut(string(stat), ") ")
		return strings.HasPrefix(rest, "Z")
	}, 2*time.Second, 10*time.Millisecond, "process %d is still running", pid)
}
