package engine

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/ha"
)

// Breaker configures the global circuit breaker: it opens once MaxFailures
// runs ended failed or unhealed in Window, or MaxRuns runs were started in
// Window (0 turns a condition off), and then every would-be run is recorded
// skipped (breaker_open) until ResetBreaker. The zero Breaker never opens.
type Breaker struct {
	MaxFailures int
	MaxRuns     int
	Window      time.Duration
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
	e.m.breakerOpen.Set(1)
	e.m.breakerOpens.Inc()
	e.lg.Error("CIRCUIT BREAKER OPEN: all automation is paused; every run is recorded skipped (breaker_open) until POST /api/v1/breaker/reset",
		"reason", reason)
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
	e.m.breakerOpen.Set(0)
	if st.Open {
		e.lg.Warn("circuit breaker reset: automation resumes", "was_open_since", st.OpenedAt, "reason", st.Reason)
	}
	return nil
}
