package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// Verdict is what Decide says happens to a playbook for an alert.
type Verdict string

const (
	// Run: claim the run and start it.
	Run Verdict = "run"
	// Skip: record the run skipped, with the reason; it never starts.
	Skip Verdict = "skip"
	// Defer: claim the run, and start it at NotBefore if its alert is
	// still firing then (and it is not in a blackout, and in a window).
	Defer Verdict = "defer"
)

// The machine-readable reasons of a Skip, as in the run record's
// skipReason and the metric selfheal_engine_runs_skipped_total{reason}.
const (
	ReasonRateLimited = "rate_limited"
	ReasonCooldown    = "cooldown"
	ReasonConcurrency = "concurrency"
	// ReasonLimitKey: the limit key could not be rendered for the alert,
	// so no limit could be checked; the run is not started.
	ReasonLimitKey = "limit_key"
	// ReasonBreakerOpen: the global circuit breaker is open; every
	// playbook is paused until it is reset.
	ReasonBreakerOpen = "breaker_open"
	// ReasonBlackout: one of the playbook's blackouts holds.
	ReasonBlackout = "blackout"
	// ReasonOutsideWindows: the playbook has windows, none is open, and
	// none opens again.
	ReasonOutsideWindows = "outside_windows"
	// ReasonResolved: the alert resolved while the run waited.
	ReasonResolved = "resolved"
	// The reasons of a Defer.
	ReasonDelay   = "delay"
	ReasonWindows = "windows"
)

// Decision is what happens to a playbook for an alert, and why.
type Decision struct {
	Verdict Verdict `json:"verdict"`
	// Reason is the machine-readable cause of a Skip; "" for Run.
	Reason string `json:"reason,omitempty"`
	// Explain says it in words, for the record, the log and dry-run.
	Explain string `json:"explain,omitempty"`
	// Key is the rendered limit key; "" without limits.
	Key string `json:"key,omitempty"`
	// NextAllowed is, for a Skip by a limit, when a run for Key would next
	// be allowed.
	NextAllowed time.Time `json:"nextAllowed,omitzero"`
	// NotBefore is, for a Defer, when the run is due.
	NotBefore time.Time `json:"notBefore,omitzero"`
}

// History is what the guards read from the execution log (an *ha.Log).
type History interface {
	// KeyRuns returns the runs of playbook that count against its limits
	// for key claimed after since, and those not finished, oldest claim
	// first.
	KeyRuns(playbook, key string, since time.Time) ([]ha.Record, error)
	// Breaker returns the global circuit breaker's state.
	Breaker() (ha.BreakerState, error)
}

// NoHistory is a History with no runs: what dry-run decides against when it
// has no execution log to read.
type NoHistory struct{}

// KeyRuns returns nothing.
func (NoHistory) KeyRuns(string, string, time.Time) ([]ha.Record, error) { return nil, nil }

// Breaker returns a closed breaker.
func (NoHistory) Breaker() (ha.BreakerState, error) { return ha.BreakerState{}, nil }

// Decide says what happens to pb for alert a at now, given the runs h
// holds. It is the one place that decides: the daemon acts on it, and
// dry-run prints it. It has no side effect. An error is one reading h.
func Decide(now time.Time, h History, a alert.Alert, pb *playbooks.Playbook) (Decision, error) {
	st, err := h.Breaker()
	if err != nil {
		return Decision{}, fmt.Errorf("read the circuit breaker: %w", err)
	}
	if st.Open {
		return Decision{Verdict: Skip, Reason: ReasonBreakerOpen, Explain: fmt.Sprintf(
			"circuit breaker open since %s (%s): all automation is paused until POST /api/v1/breaker/reset",
			st.OpenedAt.UTC().Format(time.RFC3339), st.Reason)}, nil
	}
	if d, ok := blackout(now, pb); ok {
		return d, nil
	}
	var key string
	if pb.Limits != nil {
		if key, err = LimitKey(a, pb); err != nil {
			return Decision{Verdict: Skip, Reason: ReasonLimitKey, Explain: err.Error()}, nil
		}
		// The runs a limit can see: those in the longer of its windows,
		// and those in flight.
		runs, err := h.KeyRuns(pb.Name, key, now.Add(-max(pb.Limits.Per, pb.Limits.Cooldown)))
		if err != nil {
			return Decision{}, fmt.Errorf("read the runs of %s for limit key %q: %w", pb.Name, key, err)
		}
		if d := checkLimits(now, pb.Limits, runs); d.Verdict != Run {
			d.Key = key
			return d, nil
		}
	}
	d := When(now, a, pb)
	d.Key = key
	return d, nil
}

// blackout is a Skip when one of pb's blackouts holds at now.
func blackout(now time.Time, pb *playbooks.Playbook) (Decision, bool) {
	if _, _, in := playbooks.During(pb.Blackouts, now); !in {
		return Decision{}, false
	}
	_, why, _ := playbooks.Allowed(nil, pb.Blackouts, now)
	return Decision{Verdict: Skip, Reason: ReasonBlackout, Explain: why}, true
}

// When says when a run of pb for a, decided at now, may start: at once
// (Run), at a later time (Defer: its delay has not passed, or no window
// is open), or never (Skip: in a blackout, or its windows open no more).
// The engine asks again when a deferred run is due, as a blackout may have
// begun in the meantime.
func When(now time.Time, a alert.Alert, pb *playbooks.Playbook) Decision {
	if d, ok := blackout(now, pb); ok {
		return d
	}
	due, reason, why := now, "", ""
	if pb.Delay > 0 {
		if at := a.StartsAt.Add(pb.Delay); at.After(now) {
			due, reason = at, ReasonDelay
			why = fmt.Sprintf("delay: acts at %s, %s after the alert started firing, if it is still firing then",
				at.UTC().Format(time.RFC3339), model.Duration(pb.Delay))
		}
	}
	if len(pb.Windows) > 0 || len(pb.Blackouts) > 0 {
		ok, windows, next := playbooks.Allowed(pb.Windows, pb.Blackouts, due)
		switch {
		case !ok && next.IsZero():
			return Decision{Verdict: Skip, Reason: ReasonOutsideWindows, Explain: windows}
		case !ok:
			if why != "" {
				why += "; then "
			}
			due, reason, why = next, ReasonWindows, why+windows
		}
	}
	if reason == "" {
		return Decision{Verdict: Run}
	}
	return Decision{Verdict: Defer, Reason: reason, NotBefore: due, Explain: why}
}

// LimitKey renders pb's limits.key for a; without a key it is the
// playbook's name, so the limits count for the playbook as a whole.
func LimitKey(a alert.Alert, pb *playbooks.Playbook) (string, error) {
	if pb.Limits == nil || pb.Limits.Key.IsZero() {
		return pb.Name, nil
	}
	key, err := pb.Limits.Key.Render(actions.NewTarget(a, pb.Name, "", ""))
	switch {
	case err != nil:
		return "", fmt.Errorf("limits.key: %w", err)
	case key == "":
		return "", fmt.Errorf("limits.key: %q rendered empty for this alert", pb.Limits.Key.String())
	case strings.ContainsRune(key, 0):
		return "", fmt.Errorf("limits.key: %q rendered a NUL byte", pb.Limits.Key.String())
	}
	return key, nil
}

// checkLimits applies l to the runs that count for one key, oldest claim
// first. Concurrency is checked first, then the rate limit, then the
// cooldown: the first that refuses is the reason, with when a run would
// next be allowed by it.
func checkLimits(now time.Time, l *playbooks.Limits, runs []ha.Record) Decision {
	if l.Concurrency > 0 {
		inFlight := 0
		for _, r := range runs {
			// A run waiting for its verification has no step in flight.
			if !r.State.Final() && r.State != ha.Verifying {
				inFlight++
			}
		}
		if inFlight >= l.Concurrency {
			return Decision{Verdict: Skip, Reason: ReasonConcurrency,
				Explain: fmt.Sprintf("concurrency: %d of at most %d runs for this key are in flight", inFlight, l.Concurrency)}
		}
	}
	if l.MaxRuns > 0 {
		// Runs claimed in (now-per, now]: one claimed exactly per ago has
		// left the window.
		var in []ha.Record
		for _, r := range runs {
			if r.ClaimedAt.After(now.Add(-l.Per)) && !r.ClaimedAt.After(now) {
				in = append(in, r)
			}
		}
		if len(in) >= l.MaxRuns {
			next := in[len(in)-l.MaxRuns].ClaimedAt.Add(l.Per)
			return Decision{Verdict: Skip, Reason: ReasonRateLimited, NextAllowed: next,
				Explain: fmt.Sprintf("rate limited: %d runs for this key in the last %s (max_runs: %d); next allowed at %s",
					len(in), model.Duration(l.Per), l.MaxRuns, next.UTC().Format(time.RFC3339))}
		}
	}
	if l.Cooldown > 0 && len(runs) > 0 {
		last := runs[len(runs)-1].ClaimedAt
		for _, r := range runs {
			if r.ClaimedAt.After(last) {
				last = r.ClaimedAt
			}
		}
		if next := last.Add(l.Cooldown); now.Before(next) {
			return Decision{Verdict: Skip, Reason: ReasonCooldown, NextAllowed: next,
				Explain: fmt.Sprintf("cooldown: the last run for this key was claimed %s ago (cooldown: %s); next allowed at %s",
					model.Duration(now.Sub(last).Round(time.Second)), model.Duration(l.Cooldown), next.UTC().Format(time.RFC3339))}
		}
	}
	return Decision{Verdict: Run}
}
