//go:build unix

package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// TestRunReportsItsProcessGroup: the PID and process group of the command
// are reported while it runs, before it ends, so that the engine records
// them in the step at once and a restart after a crash can name them.
func TestRunReportsItsProcessGroup(t *testing.T) {
	var mu sync.Mutex
	reported := map[string]string{}
	ctx := actions.WithProgress(context.Background(), func(k, v string) {
		mu.Lock()
		defer mu.Unlock()
		reported[k] = v
	})
	// The shell prints its own PID and process group: the command's.
	a := newAction(t, func(p *Params) { p.Command = tmpls("/bin/sh", "-c", "echo $$ $(ps -o pgid= -p $$)") })
	res, err := a.Run(ctx, target())
	require.NoError(t, err)
	fields := strings.Fields(res.Details["stdout"])
	require.Len(t, fields, 2, res.Details["stdout"])
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]string{"pid": fields[0], "pgid": fields[1]}, reported)
	require.Equal(t, fields[0], fields[1], "the command leads a process group of its own")
}

// TestInterruptedNamesWhatWasLeftRunning: after a crash, the step's record
// says whether the process group it reported is still there. Nothing is
// killed: the number may belong to someone else by then.
func TestInterruptedNamesWhatWasLeftRunning(t *testing.T) {
	a := newAction(t, func(p *Params) { p.Command = tmpls("/bin/true") })
	left := osexec.Command("/bin/sleep", "60")
	left.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, left.Start())
	pgid := strconv.Itoa(left.Process.Pid)

	require.Equal(t, "process group "+pgid+" was still running at the restart (it may have outlived the daemon; not killed, as the number may be reused)",
		a.Interrupted(map[string]string{"pid": pgid, "pgid": pgid}))
	require.NoError(t, syscall.Kill(left.Process.Pid, 0), "Interrupted killed nothing")

	require.NoError(t, left.Process.Kill())
	_ = left.Wait()
	require.Equal(t, "process group "+pgid+" had ended by the restart", a.Interrupted(map[string]string{"pgid": pgid}))

	for _, details := range []map[string]string{nil, {"pgid": ""}, {"pgid": "x"}, {"pgid": "1"}, {"pgid": "-5"}} {
		require.Empty(t, a.Interrupted(details), details)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(daemonHelperEnv) != "" {
		os.Exit(runDaemonHelper())
	}
	os.Exit(m.Run())
}

// daemonHelperEnv makes the test binary act as a daemon running one exec
// step (see TestCommandDiesWithTheDaemon).
const daemonHelperEnv = "SELFHEAL_EXEC_TEST_DAEMON"

// runDaemonHelper runs the command in $SELFHEAL_EXEC_TEST_DAEMON as an
// exec step, printing its PID on stdout once it started, and blocks until
// it is killed.
func runDaemonHelper() int {
	p := DefaultParams()
	p.Command = tmpls(strings.Fields(os.Getenv(daemonHelperEnv))...)
	a, err := New(p, nil)
	if err != nil {
		return 2
	}
	ctx := actions.WithProgress(context.Background(), func(k, v string) {
		if k == "pid" {
			_, _ = os.Stdout.WriteString(v + "\n")
		}
	})
	_, _ = a.Run(ctx, target())
	return 3 // the command ended before the daemon was killed
}
