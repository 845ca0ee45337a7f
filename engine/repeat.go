package engine

import (
	"context"
	"time"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
)

// A playbook with repeat_after runs again for an episode, at that interval,
// while the episode fires. Each repeat is a run of its own, with its own
// record (ha.RepeatID) decided like any run: the breaker, blackouts, limits
// and windows apply, and the earlier runs of the episode count against the
// limits. The next repeat is written, as RepeatAt, into the final record
// of the run before it, in the same write, so a restart holds it again;
// and it is only decided once that run is final, so two runs of one
// episode never overlap.

// nextRepeat is when rec, about to be written final, is repeated: zero
// when its playbook has no repeat_after, or when a repeat could not run
// (the episode resolved, its windows never open again, its limit key does
// not render). The interval runs from when the run started, or, for one
// that never started, from when it was decided.
func (e *Engine) nextRepeat(rec ha.Record) time.Time {
	pb := e.Playbooks().Get(rec.Playbook)
	if pb == nil || pb.RepeatAfter <= 0 || pb.On != alert.Firing {
		return time.Time{}
	}
	switch rec.SkipReason {
	case ReasonResolved, ReasonOutsideWindows, ReasonLimitKey:
		return time.Time{}
	}
	resolved, err := e.log.Resolved(rec.Episode)
	if err != nil {
		e.lg.Error("read whether the alert resolved; the run is not repeated", "run", rec.ID, "err", err)
		return time.Time{}
	}
	if resolved {
		return time.Time{}
	}
	from := rec.StartedAt
	if from.IsZero() {
		from = rec.ClaimedAt
		if rec.NotBefore.After(from) {
			from = rec.NotBefore
		}
	}
	return maxTime(from.Add(pb.RepeatAfter), e.opts.Now().UTC())
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// repeat decides the repeat that the final record prev holds, now due:
// the next run of its episode, claimed like any, unless the episode
// resolved or the playbook no longer repeats. Either way the repeat is
// then decided, and not held again.
func (e *Engine) repeat(ctx context.Context, prev ha.Record) error {
	resolved, err := e.log.Resolved(prev.Episode)
	if err != nil {
		// Kept on disk for the next start, which reads it again.
		e.lg.Error("read whether a repeating run's alert resolved; the repeat stays pending for the next start", "run", prev.ID, "err", err)
		return nil
	}
	pb := e.Playbooks().Get(prev.Playbook)
	why := ""
	switch {
	case resolved:
		why = "the alert resolved"
	case pb == nil:
		why = "the playbook is no longer loaded"
	case pb.RepeatAfter <= 0:
		why = "the playbook no longer has repeat_after"
	default:
		if err := e.claim(ctx, prev.Alert, pb, prev.Repeat+1); err != nil {
			return err
		}
	}
	if why != "" {
		e.lg.Info("not repeated: "+why, "run", prev.ID, "playbook", prev.Playbook, "episode", prev.Episode.String())
	}
	return e.write(ctx, "record a repeat decided", func() error { return e.log.RepeatDone(prev.ID) })
}

// dropRepeat forgets the pending repeat of prev, whose episode resolved.
func (e *Engine) dropRepeat(ctx context.Context, prev ha.Record) {
	e.lg.Info("not repeated: the alert resolved", "run", prev.ID, "playbook", prev.Playbook, "episode", prev.Episode.String())
	if err := e.write(ctx, "record a repeat decided", func() error { return e.log.RepeatDone(prev.ID) }); err != nil {
		e.lg.Error("record a repeat decided; the next start reads the resolve again", "run", prev.ID, "err", err)
	}
}

// resumeRepeats holds again the repeats a previous process left pending;
// one whose run is already claimed (a stop between the claim and marking
// the repeat decided) is decided.
func (e *Engine) resumeRepeats(ctx context.Context) error {
	recs, err := e.log.Repeats()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if _, found, err := e.log.Get(ha.RepeatID(rec.Playbook, rec.Episode, rec.Repeat+1)); err != nil {
			return err
		} else if found {
			if err := e.write(ctx, "record a repeat decided", func() error { return e.log.RepeatDone(rec.ID) }); err != nil {
				return err
			}
			continue
		}
		e.hold(job{rec: rec, pb: e.playbook(rec.Playbook)})
	}
	return nil
}
