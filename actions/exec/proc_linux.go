//go:build linux

package exec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dieWithParent has the kernel SIGKILL the command when the daemon dies,
// kill -9 and OOM kill included. It reaches the command itself, not the
// children it started; those are named in the step's record (pgid). The
// signal follows the thread that started the command, and the Go runtime
// ends a thread only when a goroutine locked to it returns, which the
// engine's workers never do.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// groupRunning reads /proc for a process of group pgid that is not a
// zombie: a killed command whose new parent (a container's init, say)
// never reaps it has ended all the same. Without /proc it asks kill(2).
func groupRunning(pgid int) (running, known bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return signalGroupRunning(pgid)
	}
	want := strconv.Itoa(pgid)
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // it ended while we looked
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and
		// parentheses, so read after the last one.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) >= 3 && fields[2] == want && fields[0] != "Z" && fields[0] != "X" {
			return true, true
		}
	}
	return false, true
}
