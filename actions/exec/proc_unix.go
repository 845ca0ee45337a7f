//go:build unix

package exec

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"syscall"
)

// isolate starts cmd in a process group of its own and makes cancellation
// SIGKILL the whole group, so a script's children (a `sleep`, a stuck
// `curl`) die with it instead of outliving the step. On Linux the command
// also gets SIGKILL when the daemon dies (Pdeathsig, see proc_linux.go).
func isolate(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}

// groupLeft says whether the process group that details["pgid"] names
// still has a process, for a step a crash of the daemon cut short. The
// number is only a hint: after a restart in a new container, or once the
// PIDs have wrapped, it may belong to something else, so nothing is
// killed.
func groupLeft(details map[string]string) string {
	pgid, err := strconv.Atoi(details["pgid"])
	if err != nil || pgid <= 1 {
		return ""
	}
	running, known := groupRunning(pgid)
	switch {
	case !known:
		return ""
	case running:
		return fmt.Sprintf("process group %d was still running at the restart (it may have outlived the daemon; not killed, as the number may be reused)", pgid)
	default:
		return fmt.Sprintf("process group %d had ended by the restart", pgid)
	}
}

// signalGroupRunning asks kill(2) whether group pgid has a process. A
// zombie counts, as kill cannot tell it apart.
func signalGroupRunning(pgid int) (running, known bool) {
	switch err := syscall.Kill(-pgid, 0); {
	case errors.Is(err, syscall.ESRCH):
		return false, true
	case err == nil || errors.Is(err, syscall.EPERM):
		return true, true
	default:
		return false, false
	}
}
