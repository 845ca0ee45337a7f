package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// verifying records that rec's steps succeeded and holds it until its
// verify deadline: a "resolved" for the episode by then makes it
// succeeded (verified), none makes it unhealed and runs on_failure.
func (e *Engine) verifying(ctx context.Context, rec ha.Record, pb *playbooks.Playbook) {
	rec.State = ha.Verifying
	rec.VerifyBy = e.opts.Now().UTC().Add(pb.Verify.ResolvedWithin)
	rec.Waiting = fmt.Sprintf("verify: the steps succeeded; waiting up to %s for the alert to resolve", model.Duration(pb.Verify.ResolvedWithin))
	if err := e.write(ctx, "record a run waiting for its verification", func() error { return e.log.Update(rec) }); err != nil {
		e.lg.Error("record a run waiting for its verification; the next start records it as interrupted", "run", rec.ID, "err", err)
		return
	}
	e.hold(job{rec: rec, pb: pb})
}

// verified settles a Verifying run: resolved says whether its alert
// resolved in time.
func (e *Engine) verified(ctx context.Context, j job, resolved bool) {
	rec := j.rec
	rec.Waiting = ""
	if resolved {
		rec.State = ha.Succeeded
		rec.Reason = "verified: the alert resolved within verify.resolved_within"
		e.end(ctx, rec)
		return
	}
	// Still Verifying while on_failure runs: a final state is written
	// once, with its end time. A crash meanwhile runs on_failure again at
	// the next start.
	if j.pb != nil {
		e.onFailure(ctx, &rec, j.pb)
	}
	rec.State = ha.Unhealed
	rec.Reason = fmt.Sprintf("unhealed: the alert did not resolve by %s (verify.resolved_within)", rec.VerifyBy.Format(time.RFC3339))
	e.end(ctx, rec)
}

// onFailure runs pb's on_failure steps for rec, which failed or is
// unhealed, each recorded with phase "on_failure". A failing on_failure
// step is recorded and the next one still runs; the run's outcome stays.
func (e *Engine) onFailure(ctx context.Context, rec *ha.Record, pb *playbooks.Playbook) {
	for _, st := range pb.OnFailure {
		sr, _ := e.runStep(ctx, rec, pb, st, "on_failure")
		rec.Steps[len(rec.Steps)-1] = sr
		e.persist(*rec, "record on_failure step end")
		if sr.State != ha.Succeeded {
			e.lg.Error("on_failure step failed", "run", rec.ID, "step", st.Name, "err", sr.Error)
		}
	}
}
