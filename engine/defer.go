package engine

import (
	"context"
	"sync"
	"time"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
)

// waiting holds, by run id, the claimed runs that are not due yet (a delay,
// a window that has not opened), those waiting for their verification, and
// the final runs whose repeat is pending. They are on disk with their
// NotBefore, VerifyBy or RepeatAt, so a restart holds them again.
type waiting struct {
	mu   sync.Mutex
	jobs map[string]job
	wake chan struct{}
}

// hold keeps j until its NotBefore.
func (e *Engine) hold(j job) {
	e.waiting.mu.Lock()
	e.waiting.jobs[j.rec.ID] = j
	e.waiting.mu.Unlock()
	e.m.waiting.Set(float64(e.waitingLen()))
	select {
	case e.waiting.wake <- struct{}{}:
	default:
	}
	if j.rec.State.Final() {
		e.lg.Info("run repeats if its alert still fires then", "run", j.rec.ID, "playbook", j.rec.Playbook, "at", j.at())
		return
	}
	e.lg.Info("run waits", "run", j.rec.ID, "playbook", j.rec.Playbook, "until", j.at(), "why", j.rec.Waiting)
}

// held reports whether the run id is held.
func (e *Engine) held(id string) bool {
	e.waiting.mu.Lock()
	defer e.waiting.mu.Unlock()
	_, ok := e.waiting.jobs[id]
	return ok
}

func (e *Engine) waitingLen() int {
	e.waiting.mu.Lock()
	defer e.waiting.mu.Unlock()
	return len(e.waiting.jobs)
}

// at is when j is due (ha.Record.DueAt).
func (j job) at() time.Time { return j.rec.DueAt() }

// take removes and returns the held jobs due at now, or, with ep set,
// those of episode ep.
func (e *Engine) take(now time.Time, ep *alert.Episode) []job {
	e.waiting.mu.Lock()
	defer e.waiting.mu.Unlock()
	var out []job
	for id, j := range e.waiting.jobs {
		if ep == nil && !j.at().After(now) || ep != nil && j.rec.Episode == *ep {
			out = append(out, j)
			delete(e.waiting.jobs, id)
		}
	}
	return out
}

// nextDue returns the earliest NotBefore held, or false when none is.
func (e *Engine) nextDue() (time.Time, bool) {
	e.waiting.mu.Lock()
	defer e.waiting.mu.Unlock()
	var first time.Time
	for _, j := range e.waiting.jobs {
		if at := j.at(); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// schedule releases held runs as they fall due, until ctx is done.
func (e *Engine) schedule(ctx context.Context) error {
	for {
		wait := time.Duration(-1)
		if at, ok := e.nextDue(); ok {
			wait = max(at.Sub(e.opts.Now()), 0)
		}
		var timer <-chan time.Time
		if wait >= 0 {
			t := e.opts.Clock.NewTimer(wait)
			timer = t.C()
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.waiting.wake:
			continue
		case <-timer:
		}
		for _, j := range e.take(e.opts.Now(), nil) {
			if err := e.due(ctx, j); err != nil {
				return err
			}
		}
		e.m.waiting.Set(float64(e.waitingLen()))
	}
}

// due decides a held run again now that it is due: skipped if its alert
// resolved meanwhile or a blackout holds, held again if its window has not
// opened, queued for a worker otherwise.
func (e *Engine) due(ctx context.Context, j job) error {
	if j.rec.State.Final() {
		return e.repeat(ctx, j.rec)
	}
	resolved, err := e.log.Resolved(j.rec.Episode)
	if err != nil {
		// Kept for the next start, which reads it again.
		e.lg.Error("read whether a waiting run's alert resolved; the run stays claimed for the next start", "run", j.rec.ID, "err", err)
		return nil
	}
	if j.rec.State == ha.Verifying {
		if resolved {
			e.verified(ctx, j, true)
			return nil
		}
		return e.enqueue(ctx, j)
	}
	if resolved {
		e.skipWaiting(j, ReasonResolved, "resolved while the run waited ("+j.rec.Waiting+"); nothing ran")
		return nil
	}
	d := When(e.opts.Now().UTC(), j.rec.Alert, j.pb)
	switch d.Verdict {
	case Skip:
		e.skipWaiting(j, d.Reason, d.Explain)
		return nil
	case Defer:
		j.rec.NotBefore, j.rec.Waiting = d.NotBefore, d.Explain
		if err := e.write(ctx, "record a waiting run", func() error { return e.log.Update(j.rec) }); err != nil {
			return err
		}
		e.hold(j)
		return nil
	}
	return e.enqueue(ctx, j)
}

// cancelWaiting skips the held runs of ep, which just resolved, and
// settles those waiting for their verification as verified.
func (e *Engine) cancelWaiting(ctx context.Context, ep alert.Episode) {
	for _, j := range e.take(time.Time{}, &ep) {
		if j.rec.State.Final() {
			e.dropRepeat(ctx, j.rec)
			continue
		}
		if j.rec.State == ha.Verifying {
			e.verified(ctx, j, true)
			continue
		}
		e.skipWaiting(j, ReasonResolved, "resolved while the run waited ("+j.rec.Waiting+"); nothing ran")
	}
	e.m.waiting.Set(float64(e.waitingLen()))
}

func (e *Engine) skipWaiting(j job, reason, explain string) {
	j.rec.SkipReason = reason
	e.m.skipped.WithLabelValues(j.rec.Playbook, reason).Inc()
	e.skip(j.rec, explain)
}

// claimedOrWaiting routes a claimed record to a worker, or holds it when
// it is not due yet.
func (e *Engine) claimedOrWaiting(ctx context.Context, j job) error {
	if j.at().After(e.opts.Now()) {
		e.hold(j)
		return nil
	}
	if !j.at().IsZero() {
		return e.due(ctx, j)
	}
	return e.enqueue(ctx, j)
}
