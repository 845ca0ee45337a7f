//go:build !unix

package exec

import osexec "os/exec"

// isolate kills only the process itself on cancellation: process groups
// are a Unix notion.
func isolate(cmd *osexec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Kill() }
}

// groupLeft knows nothing without process groups.
func groupLeft(map[string]string) string { return "" }
