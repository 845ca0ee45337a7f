package exec

import (
	"context"
	"errors"
	"fmt"
	osexec "os/exec"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/selfheal/selfheal/actions"
)

const (
	// outputTail is how much of the end of stdout and of stderr is kept.
	outputTail = 4 << 10
	// errorTail is how much of the end of stderr goes into an error.
	errorTail = 512
	// waitDelay bounds how long Run waits for the output pipes to close
	// after the command exited or was killed: a descendant that left the
	// process group may hold them open forever.
	waitDelay = 5 * time.Second
)

// errTimedOut is the cause of the command's context when its timeout passes.
var errTimedOut = errors.New("exec timeout")

// Run runs the command for t and waits for it. Exit 0 is success; a
// non-zero exit fails permanently unless its code is one of
// retryable_exit_codes (then the error is actions.Retryable). A timeout or
// a cancelled ctx kills the process group and fails permanently: the
// command may not be idempotent. On failure after the command started, the
// Result still carries its exit code and output tails. The values of
// secret env params show as "<secret>" in both.
func (a *Action) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	inv, err := a.prepare(t)
	if err != nil {
		return actions.Result{}, fmt.Errorf("exec: %w", err)
	}
	runCtx, cancel := context.WithTimeoutCause(ctx, a.timeout(), errTimedOut)
	defer cancel()

	cmd := osexec.CommandContext(runCtx, inv.path, inv.argv[1:]...)
	cmd.Args = inv.argv
	cmd.Env = inv.env
	cmd.Dir = inv.dir
	stdout, stderr := &tail{max: outputTail}, &tail{max: outputTail}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	isolate(cmd)

	log := a.logger.With("playbook", t.Playbook, "step", t.Step, "run", t.Run, "command", inv.path)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return actions.Result{}, fmt.Errorf("exec %s: start: %w", inv.argv[0], err)
	}
	log.Debug("command started", "pid", cmd.Process.Pid)
	// Recorded before waiting, so a restart after a crash can say what
	// this step left running.
	actions.Report(ctx, "pid", strconv.Itoa(cmd.Process.Pid))
	actions.Report(ctx, "pgid", strconv.Itoa(cmd.Process.Pid))
	waitErr := cmd.Wait()
	elapsed := time.Since(start).Round(time.Millisecond)

	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	log.Debug("command finished", "exit_code", code, "duration", elapsed)
	res := actions.Result{
		Summary: fmt.Sprintf("exit %d after %s", code, elapsed),
		Details: map[string]string{
			"exit_code": strconv.Itoa(code),
			"stdout":    stdout.String(),
			"stderr":    stderr.String(),
		},
	}
	err = a.outcome(ctx, runCtx, inv.argv[0], waitErr, code, stderr, res.Details)
	red := inv.redactor()
	return res.Redacted(red), red.Error(err)
}

// Interrupted says what a step the daemon's crash cut short may have left
// running: whether its process group was still there at the restart.
func (a *Action) Interrupted(details map[string]string) string { return groupLeft(details) }

// outcome turns how the command ended into Run's error.
func (a *Action) outcome(ctx, runCtx context.Context, name string, waitErr error, code int, stderr *tail, details map[string]string) error {
	var exitErr *osexec.ExitError
	switch {
	case waitErr == nil:
		return nil
	case errors.Is(waitErr, osexec.ErrWaitDelay) && code == 0:
		// It exited 0; a descendant it left behind held the pipes open.
		details["warning"] = fmt.Sprintf("output pipes still open %s after exit; closed", waitDelay)
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("exec %s: killed: %w", name, context.Cause(ctx))
	case errors.Is(context.Cause(runCtx), errTimedOut):
		return fmt.Errorf("exec %s: timed out after %s; process group killed%s", name, a.p.Timeout, stderrSuffix(stderr))
	case errors.As(waitErr, &exitErr):
		err := fmt.Errorf("exec %s: %w%s", name, exitErr, stderrSuffix(stderr))
		if a.retryable(code) {
			return actions.Retryable(err)
		}
		return err
	default:
		return fmt.Errorf("exec %s: %w", name, waitErr)
	}
}

// stderrSuffix is "; stderr: …" with the last errorTail bytes of stderr,
// or "" when it printed nothing.
func stderrSuffix(stderr *tail) string {
	s := strings.TrimSpace(stderr.String())
	if s == "" {
		return ""
	}
	if len(s) > errorTail {
		s = "…" + trimPartialRune(s[len(s)-errorTail:])
	}
	return fmt.Sprintf("; stderr: %q", s)
}

// tail is an io.Writer keeping the last max bytes written to it. It is not
// safe for concurrent use; os/exec writes each stream from one goroutine.
type tail struct {
	max   int
	buf   []byte
	total int
}

// Write keeps the end of p; it never fails.
func (t *tail) Write(p []byte) (int, error) {
	t.total += len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes as valid UTF-8, starting with "…" when
// earlier output was dropped.
func (t *tail) String() string {
	s := string(t.buf)
	if t.total > len(t.buf) {
		s = "…" + trimPartialRune(s)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// trimPartialRune drops the continuation bytes a cut left at the start of s.
func trimPartialRune(s string) string {
	for i := 0; i < len(s) && i < utf8.UTFMax; i++ {
		if utf8.RuneStart(s[i]) {
			return s[i:]
		}
	}
	return s
}
