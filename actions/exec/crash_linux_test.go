package exec

import (
	"bufio"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestCommandDiesWithTheDaemon kills -9 a daemon (this test binary, re-run
// as a helper) while its exec step runs `sleep 20`: the kernel kills the
// command with it (Pdeathsig) instead of leaving it to finish alone. This
// test process is made the orphan's subreaper, so it can wait for the
// command and see how it ended.
func TestCommandDiesWithTheDaemon(t *testing.T) {
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	self, err := os.Executable()
	require.NoError(t, err)
	daemon := osexec.Command(self, "-test.run=^$")
	daemon.Env = append(os.Environ(), daemonHelperEnv+"=/bin/sleep 20")
	out, err := daemon.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, daemon.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the daemon reports the command's PID once it started")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)

	require.NoError(t, daemon.Process.Kill())
	_ = daemon.Wait()

	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, 0, nil)
	require.NoError(t, err)
	require.Equal(t, pid, got)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL,
		"the command outlived the daemon: it ended with %v instead of SIGKILL", ws)
}

// TestInterruptedCountsAZombieAsEnded: a command killed with the daemon
// whose new parent never reaps it (a container's init may not) has ended,
// though kill(2) still finds it.
func TestInterruptedCountsAZombieAsEnded(t *testing.T) {
	a := newAction(t, func(p *Params) { p.Command = tmpls("/bin/true") })
	left := osexec.Command("/bin/sleep", "60")
	left.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, left.Start())
	t.Cleanup(func() { _ = left.Wait() })
	pgid := strconv.Itoa(left.Process.Pid)
	require.NoError(t, left.Process.Kill())
	// Wait for the kill, leaving the zombie: WNOWAIT does not reap it.
	var info unix.Siginfo
	require.NoError(t, unix.Waitid(unix.P_PID, left.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil))
	require.NoError(t, syscall.Kill(-left.Process.Pid, 0), "the zombie is still there for kill(2)")
	require.Equal(t, "process group "+pgid+" had ended by the restart", a.Interrupted(map[string]string{"pgid": pgid}))
}
