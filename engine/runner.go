package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// execute runs the steps of one claimed run in order and records the
// outcome. The record is marked Running on disk before the first step, so a
// crash mid-run is never mistaken for a run that has not started.
func (e *Engine) execute(ctx context.Context, j job) {
	if j.rec.State == ha.Verifying {
		// Its verify deadline passed with no resolved (due).
		e.verified(ctx, j, false)
		return
	}
	rec, pb := j.rec, j.pb
	rec.State = ha.Running
	rec.StartedAt = e.opts.Now().UTC()
	if err := e.write(ctx, "mark run running", func() error { return e.log.Update(rec) }); errors.Is(err, ha.ErrSuperseded) {
		e.lg.Info("run not started: another replica took it over", "run", rec.ID, "err", err)
		return
	} else if err != nil {
		// Stopping while the log cannot be written: the run is still
		// claimed on disk, so the next start resumes it.
		e.lg.Warn("run not started: it could not be marked running before shutdown; it stays claimed", "run", rec.ID, "err", err)
		return
	}
	if rec.DryRun {
		e.dryRun(ctx, &rec, pb)
	} else {
		var (
			results []actions.Result
			failed  bool
		)
		for _, st := range pb.Steps {
			sr, res := e.runStep(ctx, &rec, pb, st, "")
			rec.Steps[len(rec.Steps)-1] = sr
			e.persist(rec, "record step end")
			if sr.State == ha.Succeeded {
				results = append(results, res)
				continue
			}
			if st.ContinueOnError {
				e.lg.Warn("step failed; continuing (continue_on_error)", "run", rec.ID, "step", st.Name, "err", sr.Error)
				results = append(results, actions.Result{})
				continue
			}
			rec.Reason = fmt.Sprintf("step %q failed: %s", st.Name, sr.Error)
			failed = true
			break
		}
		e.finish(ctx, &rec, pb, results)
		switch {
		case failed:
			// Still Running while on_failure runs: a final state is
			// written once, with its end time.
			e.onFailure(ctx, &rec, pb)
			rec.State = ha.Failed
		case pb.Verify != nil:
			e.verifying(ctx, rec, pb)
			return
		default:
			rec.State = ha.Succeeded
		}
	}
	e.end(ctx, rec)
}

// end records rec's outcome, finished now.
func (e *Engine) end(ctx context.Context, rec ha.Record) {
	rec.FinishedAt = e.opts.Now().UTC()
	rec.RepeatAt = e.nextRepeat(rec)
	if err := e.write(ctx, "record run outcome", func() error { return e.log.Update(rec) }); err != nil {
		e.lg.Error("record run outcome; the next start records it as interrupted", "run", rec.ID, "err", err)
	}
	e.finished(rec)
}

// dryRun records each step's plan instead of running it.
func (e *Engine) dryRun(ctx context.Context, rec *ha.Record, pb *playbooks.Playbook) {
	rec.State, rec.Reason = ha.Shadow, "shadow mode (dry_run): recorded what would run; nothing was executed"
	for _, st := range pb.Steps {
		sr := ha.StepRecord{Name: st.Name, Action: st.ActionID, State: ha.Skipped, StartedAt: e.opts.Now().UTC()}
		plan, err := st.Action.Plan(ctx, actions.NewTarget(rec.Alert, pb.Name, st.Name, rec.ID))
		if err != nil {
			sr.Error = err.Error()
		} else {
			sr.Summary = "would " + plan.Summary
		}
		sr.FinishedAt = e.opts.Now().UTC()
		rec.Steps = append(rec.Steps, sr)
	}
}

// runStep runs one step: each attempt under the step's timeout, retrying
// only errors the action marks retryable, with a doubling backoff
// (stepBackoff). The step's retries are the one retry layer: actions try
// once per attempt.
//
// The step's record is appended to rec and written to the log, as Running,
// before the first attempt; what the action reports while it runs (a PID)
// is written too, so a crash mid-step leaves a record that says so.
func (e *Engine) runStep(ctx context.Context, rec *ha.Record, pb *playbooks.Playbook, st playbooks.Step, phase string) (ha.StepRecord, actions.Result) {
	sr := ha.StepRecord{Name: st.Name, Action: st.ActionID, State: ha.Running, StartedAt: e.opts.Now().UTC(), Phase: phase}
	rec.Steps = append(rec.Steps, sr)
	e.persist(*rec, "record step start")
	var mu sync.Mutex
	ctx = actions.WithProgress(ctx, func(key, value string) {
		mu.Lock()
		defer mu.Unlock()
		cur := &rec.Steps[len(rec.Steps)-1]
		cur.Details = maps.Clone(cur.Details)
		if cur.Details == nil {
			cur.Details = map[string]string{}
		}
		cur.Details[key] = value
		e.persist(*rec, "record step progress")
	})
	target := actions.NewTarget(rec.Alert, pb.Name, st.Name, rec.ID)
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = playbooks.DefaultStepTimeout
	}
	backoff := stepBackoff(e.opts.RetryBackoff, st.Retries)
	var (
		err     error
		res     actions.Result
		touched []actions.ObjectRef // of every attempt, failed ones too
	)
	// Not wait.ExponentialBackoffWithContext: it ends when the cap is
	// reached and skips the first attempt when ctx is already done.
	for attempt := 0; attempt <= st.Retries; attempt++ {
		if attempt > 0 {
			d := backoff.Step()
			e.lg.Warn("retrying step", "run", rec.ID, "step", st.Name, "attempt", attempt+1, "delay", d, "err", err)
			if !e.sleep(ctx, d) {
				break
			}
		}
		sr.Attempts++
		res, err = e.attempt(ctx, st, target, timeout)
		touched = append(touched, res.Touched...)
		if err == nil {
			sr.State, sr.Summary, sr.Details = ha.Succeeded, res.Summary, res.Details
			break
		}
		if !actions.IsRetryable(err) {
			break
		}
	}
	if err != nil {
		sr.State, sr.Error = ha.Failed, err.Error()
	}
	mu.Lock()
	sr.Details = mergeDetails(rec.Steps[len(rec.Steps)-1].Details, sr.Details)
	mu.Unlock()
	sr.Details = withTouched(sr.Details, touched)
	sr.FinishedAt = e.opts.Now().UTC()
	e.m.stepDuration.WithLabelValues(st.ActionID, string(sr.State)).Observe(sr.FinishedAt.Sub(sr.StartedAt).Seconds())
	return sr, res
}

// maxStepBackoff caps the wait between two attempts of a step.
const maxStepBackoff = 30 * time.Second

// stepBackoff is the wait before each retry of a step: first, then twice
// as long each time, at most maxStepBackoff.
func stepBackoff(first time.Duration, retries int) wait.Backoff {
	return wait.Backoff{Duration: first, Factor: 2, Cap: maxStepBackoff, Steps: retries}
}

// persist writes rec as it is now. A failed write is logged, not fatal: the
// run goes on, and its end is written again when it finishes.
func (e *Engine) persist(rec ha.Record, what string) {
	if err := e.log.Update(rec); err != nil {
		e.lg.Error(what, "run", rec.ID, "err", err)
	}
}

// mergeDetails returns progress with result's details over it.
func mergeDetails(progress, result map[string]string) map[string]string {
	if len(progress) == 0 {
		return result
	}
	out := maps.Clone(progress)
	maps.Copy(out, result)
	return out
}

// withTouched returns details with the objects touched recorded under
// actions.TouchedKey, or details itself when there are none.
func withTouched(details map[string]string, touched []actions.ObjectRef) map[string]string {
	if len(touched) == 0 {
		return details
	}
	out := maps.Clone(details)
	if out == nil {
		out = map[string]string{}
	}
	out[actions.TouchedKey] = actions.FormatTouched(touched)
	return out
}

// finishTimeout bounds each Finish call.
const finishTimeout = time.Minute

// finish lets the steps that succeeded close what they opened, last step
// first. A Finish error is recorded on its step; it does not change the
// run's outcome, which is already decided.
func (e *Engine) finish(ctx context.Context, rec *ha.Record, pb *playbooks.Playbook, results []actions.Result) {
	for i := len(results) - 1; i >= 0; i-- {
		st := pb.Steps[i]
		if rec.Steps[i].State != ha.Succeeded {
			continue // failed, and went on (continue_on_error)
		}
		f, ok := st.Action.(actions.Finisher)
		if !ok {
			continue
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		err := f.Finish(fctx, actions.NewTarget(rec.Alert, pb.Name, st.Name, rec.ID), results[i])
		cancel()
		if err != nil {
			e.lg.Warn("finish step", "run", rec.ID, "step", st.Name, "err", err)
			if rec.Steps[i].Details == nil {
				rec.Steps[i].Details = map[string]string{}
			}
			rec.Steps[i].Details["finish_error"] = err.Error()
		}
	}
}

func (e *Engine) attempt(ctx context.Context, st playbooks.Step, target actions.Target, timeout time.Duration) (res actions.Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("action %s panicked: %v", st.ActionID, p)
		}
	}()
	res, err = st.Action.Run(ctx, target)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("step timed out after %s: %w", timeout, err)
	}
	return res, err
}

// sleep waits d or until ctx is done; it reports whether d elapsed. It is
// the engine's one wait: runStep's and write's backoffs use it.
func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	t := e.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// finished logs the one line every run gets and counts it.
func (e *Engine) finished(rec ha.Record) {
	outcome := string(rec.State)
	e.m.runs.WithLabelValues(rec.Playbook, outcome).Inc()
	if rec.State == ha.Failed || rec.State == ha.Unhealed {
		if err := e.checkBreaker(); err != nil {
			e.lg.Error("check the circuit breaker after a failed run; it is checked again before the next run", "run", rec.ID, "err", err)
		}
	}
	attrs := []any{
		"run", rec.ID, "playbook", rec.Playbook, "episode", rec.Episode.String(),
		"alertname", rec.Alert.Name(), "outcome", outcome, "steps", len(rec.Steps),
		"duration", rec.Duration(), "node", rec.Node,
	}
	if rec.Reason != "" {
		attrs = append(attrs, "reason", rec.Reason)
	}
	if !rec.RepeatAt.IsZero() {
		attrs = append(attrs, "repeat_at", rec.RepeatAt)
	}
	if rec.State == ha.Failed {
		e.lg.Warn("run finished", attrs...)
	} else {
		e.lg.Info("run finished", attrs...)
	}
	if e.opts.Notifier != nil {
		e.opts.Notifier.RunFinished(rec)
	}
	if !rec.RepeatAt.IsZero() {
		e.hold(job{rec: rec, pb: e.playbook(rec.Playbook)})
	}
}
