//go:build unix && !linux

package exec

import "syscall"

// dieWithParent does nothing: only Linux has a parent-death signal. A
// command cut short by a crash is named in the step's record (pgid).
func dieWithParent(*syscall.SysProcAttr) {}

// groupRunning asks kill(2): a zombie left unreaped counts as running.
func groupRunning(pgid int) (running, known bool) { return signalGroupRunning(pgid) }
