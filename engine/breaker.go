package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// Breaker configures the global circuit breaker: it opens once MaxFailures
// runs ended failed or unhealed in Window, or MaxRuns runs were started in
// Window (0 turns a condition off), and then every would-be run is recorded
// skipped (breaker_open) until ResetBreaker. The zero Breaker never opens.
type Breaker struct {
	MaxFailures int
	MaxRuns     int
	Window      time.Duration
	// OnOpen are steps run once each time the breaker opens: a run of its
	// own, recorded under the playbook name BreakerOnOpen, for an alert
	// named SelfhealCircuitBreakerOpen whose description is why it opened.
	OnOpen []playbooks.Step
}

// BreakerOnOpen is the playbook name the runs of Breaker.OnOpen are
// recorded under; no playbook can have it, as names have no dot.
const BreakerOnOpen = "breaker.on_open"

// breakerPlaybook is the playbook the runs of b.OnOpen run as; nil when b
// has no on_open steps.
func breakerPlaybook(b Breaker) *playbooks.Playbook {
	if len(b.OnOpen) == 0 {
		return nil
	}
	return &playbooks.Playbook{Name: BreakerOnOpen, On: alert.Firing, Source: "limits.breaker.on_open", Steps: b.OnOpen}
}

// onOpen claims the run of the breaker's on_open steps for the breaker
// that opened, st, and hands it to a worker. A failure to claim it is
// logged; the breaker stays open, with its log line and metric.
func (e *Engine) onOpen(st ha.BreakerState) {
	pb := e.breakerPB
	if pb == nil {
		return
	}
	labels := map[string]string{"alertname": "SelfhealCircuitBreakerOpen"}
	a := alert.Alert{
		// Its episode is the breaker's since its last reset: replicas that
		// open it at once name the same run, and the claim picks one.
		Status: alert.Firing, Labels: labels, Fingerprint: alert.Fingerprint(labels), StartsAt: st.ResetAt,
		Annotations: map[string]string{
			"summary":     "selfheal circuit breaker open: all automation is paused until POST /api/v1/breaker/reset",
			"description": st.Reason,
			"node":        e.log.Node(),
		},
	}
	rec := ha.Record{
		ID: ha.RunID(pb.Name, a.Episode()), Playbook: pb.Name, Source: pb.Source,
		Episode: a.Episode(), Alert: a, ClaimedAt: st.OpenedAt, NotBefore: st.OpenedAt,
	}
	stored, won, err := e.log.Claim(context.Background(), rec)
	if err != nil {
		e.lg.Error("claim the run of limits.breaker.on_open; it does not run", "err", err)
		return
	}
	if won {
		e.lg.Warn("running limits.breaker.on_open", "run", stored.ID, "steps", len(pb.Steps))
		e.hold(job{rec: stored, pb: pb})
	}
}

// playbook returns the playbook a record of name runs: the active one, or
// the breaker's on_open steps.
func (e *Engine) playbook(name string) *playbooks.Playbook {
	if name == BreakerOnOpen {
		return e.breakerPB
	}
	return e.Playbooks().Get(name)
}

func (b Breaker) enabled() bool { return b.Window > 0 && (b.MaxFailures > 0 || b.MaxRuns > 0) }

// BreakerLog is what the breaker keeps in the execution log (an *ha.Log).
type BreakerLog interface {
	SetBreaker(ha.BreakerState) error
	Outcomes(since time.Time) (started, failed int, err error)
}

// checkBreaker opens the breaker if the runs since its window started (or
// its last reset, if later) reached a limit. It is called before each
// decision, so that no run starts past max_runs, and after each failed
// run.
func (e *Engine) checkBreaker() error {
	b := e.opts.Breaker
	if !b.enabled() {
		return nil
	}
	e.breakerMu.Lock()
	defer e.breakerMu.Unlock()
	st, err := e.log.Breaker()
	if err != nil || st.Open {
		return err
	}
	now := e.opts.Now().UTC()
	since := now.Add(-b.Window)
	if st.ResetAt.After(since) {
		since = st.ResetAt
	}
	started, failed, err := e.log.Outcomes(since)
	if err != nil {
		return err
	}
	var reason string
	switch {
	case b.MaxFailures > 0 && failed >= b.MaxFailures:
		reason = fmt.Sprintf("%d runs failed or unhealed in the last %s (max_failures: %d)", failed, model.Duration(b.Window), b.MaxFailures)
	case b.MaxRuns > 0 && started >= b.MaxRuns:
		reason = fmt.Sprintf("%d runs started in the last %s (max_runs: %d)", started, model.Duration(b.Window), b.MaxRuns)
	default:
		return nil
	}
	st = ha.BreakerState{Open: true, OpenedAt: now, Reason: reason, ResetAt: st.ResetAt}
	if err := e.log.SetBreaker(st); err != nil {
		return err
	}
	e.m.breakerOpens.Inc()
	e.lg.Error("CIRCUIT BREAKER OPEN: all automation is paused; every run is recorded skipped (breaker_open) until POST /api/v1/breaker/reset",
		"reason", reason)
	e.onOpen(st)
	return nil
}

// BreakerState returns the breaker's state, for the API.
func (e *Engine) BreakerState() (ha.BreakerState, error) { return e.log.Breaker() }

// ResetBreaker closes the breaker. The runs before the reset no longer
// count towards opening it again.
func (e *Engine) ResetBreaker() error {
	e.breakerMu.Lock()
	defer e.breakerMu.Unlock()
	st, err := e.log.Breaker()
	if err != nil {
		return err
	}
	now := e.opts.Now().UTC()
	if err := e.log.SetBreaker(ha.BreakerState{ResetAt: now}); err != nil {
		return err
	}
	if st.Open {
		e.lg.Warn("circuit breaker reset: automation resumes", "was_open_since", st.OpenedAt, "reason", st.Reason)
	}
	return nil
}
