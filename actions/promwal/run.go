package promwal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	osexec "os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/selfheal/selfheal/actions"
)

const (
	// startTimeout bounds `systemctl start` after a failure or a cancelled
	// run: the unit must not stay stopped because the run's context ended.
	startTimeout = 2 * time.Minute
	// readyAttemptTimeout bounds one GET of ready_url.
	readyAttemptTimeout = 5 * time.Second
	// outputTail is how much of systemctl's output goes into an error.
	outputTail = 512
)

// Run, in kubernetes mode, pauses the owning Prometheus if there is one,
// scales the StatefulSet to 0, waits for its pods to go, runs `selfheal
// wal-quarantine` in a Job that mounts the PVC and waits for the Job; then
// always — also after a failure, and with a context of its own if ctx
// ended — scales back to the recorded replicas and unpauses, and waits
// for the pods to be Ready. API errors before the first change are
// retryable, every later failure is permanent. Details["steps"] lists
// every step taken.
//
// In host mode it stops the systemd unit if one is set, quarantines the head (see
// Quarantine), starts the unit again — also when stopping it, or the
// quarantine, failed or refused, and with a context of its own if ctx
// ended, so it is never left stopped — and then waits for
// ready_url to answer 200. Every failure is permanent: a retry would find
// the WAL gone or the same refusal. If the quarantine succeeded but a
// later step failed, the Result still carries the quarantine's details.
func (a *Action) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	if a.p.Mode == ModeKubernetes {
		return a.runKube(ctx, t)
	}
	r, err := a.render(t)
	if err != nil {
		return actions.Result{}, fmt.Errorf("%s: %w", ID, err)
	}
	log := a.d.Logger.With("playbook", t.Playbook, "step", t.Step, "run", t.Run, "data_dir", r.dataDir)
	var (
		m    *Manifest
		qerr error
		res  actions.Result
	)
	if r.unit != "" {
		qerr = a.systemctl(ctx, "stop", r.unit)
		if qerr == nil {
			log.Info("unit stopped", "unit", r.unit)
		}
	}
	if qerr == nil {
		m, qerr = Quarantine(ctx, a.options(r, t))
	}
	if qerr == nil {
		res = result(m)
		log.Info("head quarantined", "quarantine_path", m.QuarantinePath, "files", m.FileCount, "bytes", m.TotalBytes, "loss_window", m.LossWindow.Duration())
	}
	if r.unit != "" {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		serr := a.systemctl(sctx, "start", r.unit)
		cancel()
		if serr != nil {
			return res, fmt.Errorf("%s: %w", ID, errors.Join(qerr, fmt.Errorf("%w (the unit is left stopped)", serr)))
		}
		log.Info("unit started", "unit", r.unit)
		if res.Details != nil {
			res.Details["systemd_unit"] = r.unit + " stopped and started"
		}
	}
	if qerr != nil {
		return res, fmt.Errorf("%s: %w", ID, qerr)
	}
	if r.readyURL != "" {
		took, err := a.waitReady(ctx, r.readyURL)
		if err != nil {
			return res, fmt.Errorf("%s: head quarantined into %s, but %w; if it ran out of memory again, the cause is not the WAL: leave the quarantine in place and raise its memory", ID, m.QuarantinePath, err)
		}
		res.Details["ready"] = fmt.Sprintf("%s answered 200 after %s", r.readyURL, took)
	}
	return res, nil
}

// result reports a manifest.
func result(m *Manifest) actions.Result {
	d := map[string]string{
		"quarantine_path": m.QuarantinePath,
		"manifest_path":   m.Path,
		"bytes_moved":     strconv.FormatInt(m.TotalBytes, 10),
		"files_moved":     strconv.Itoa(m.FileCount),
		"entries_moved":   strings.Join(entryNames(m.Entries), ", "),
		"loss_window":     m.LossWindow.Description,
		"restore_command": m.RestoreCommand,
	}
	if len(m.Warnings) > 0 {
		d["warnings"] = strings.Join(m.Warnings, "; ")
	}
	return actions.Result{
		Summary: fmt.Sprintf("moved %s of %s (%d files, %s) into %s",
			strings.Join(entryNames(m.Entries), ", "), m.DataDir, m.FileCount, human(m.TotalBytes), m.QuarantinePath),
		Details: d,
	}
}

// systemctl runs `systemctl verb unit`.
func (a *Action) systemctl(ctx context.Context, verb, unit string) error {
	out, err := osexec.CommandContext(ctx, a.d.Systemctl, verb, unit).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > outputTail {
			msg = "…" + msg[len(msg)-outputTail:]
		}
		if msg != "" {
			return fmt.Errorf("%s %s %s: %w: %s", a.d.Systemctl, verb, unit, err, msg)
		}
		return fmt.Errorf("%s %s %s: %w", a.d.Systemctl, verb, unit, err)
	}
	return nil
}

// waitReady polls u with GET until it answers 200, ready_timeout passes or
// ctx ends. It returns how long that took.
func (a *Action) waitReady(ctx context.Context, u string) (time.Duration, error) {
	start := time.Now()
	var last error // the last answer, not an attempt our own deadline cut short
	err := wait.PollUntilContextTimeout(ctx, a.d.ReadyInterval, time.Duration(a.p.ReadyTimeout), true, func(ctx context.Context) (bool, error) {
		err := a.getReady(ctx, u)
		if err != nil && (last == nil || ctx.Err() == nil) {
			last = err
		}
		return err == nil, nil
	})
	if err != nil {
		return 0, fmt.Errorf("%s not ready after %s (last: %v)", u, time.Since(start).Round(time.Millisecond), last)
	}
	return time.Since(start).Round(time.Millisecond), nil
}

// getReady sends one GET to u and succeeds on 200.
func (a *Action) getReady(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, readyAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := a.d.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// checkURL checks that s is an absolute http or https URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http or https URL", s)
	}
	return nil
}

// checkReadyURL checks s, what the ready_url template t rendered: an
// absolute http(s) URL where a label added no user and password.
func checkReadyURL(t actions.Template, s string) error {
	if err := checkURL(s); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	return actions.CheckRenderedURL(t, u)
}
