// Package playbooks owns the playbook format: the schema, loading from files
// (and later ConfigMaps) with strict, positioned validation, matching alerts
// to playbooks, and the Set the engine runs from.
package playbooks

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
)

// Playbook is one loaded, validated playbook. It is immutable once built and
// safe to share between goroutines; a reload builds new values.
type Playbook struct {
	Name        string
	Description string
	// Matchers must all hold for an alert to match (Alertmanager syntax).
	Matchers labels.Matchers
	// On is the alert status the playbook acts on.
	On alert.Status
	// DryRun records what would run and runs nothing.
	DryRun bool
	// Windows, when there are any, are when it may act: outside them a run
	// waits for the next opening (see Allowed).
	Windows []Window
	// Blackouts are when it must not act, in a window or not.
	Blackouts []Window
	// Limits bound how often it runs, per key; nil means no limits.
	Limits *Limits
	// Delay is how long an alert must have been firing (from its startsAt)
	// before the playbook acts; resolved before that, nothing runs. 0 acts
	// at once.
	Delay time.Duration
	// RepeatAfter runs the playbook again for an episode at this interval,
	// from when the run before started, while the episode fires; 0 runs it
	// once per episode.
	RepeatAfter time.Duration
	Steps       []Step
	// Verify closes the loop: nil, or how long after its steps succeed the
	// alert must resolve before the run is unhealed.
	Verify *Verify
	// OnFailure are the steps run when a step fails or the run is unhealed.
	OnFailure []Step
	// Source names where the playbook came from: a file path, or
	// configmap/<ns>/<name>/<key>.
	Source string
	// Revision identifies the content of the source it came from (a hash),
	// so run records say which version ran.
	Revision string
	// Pos is where the playbook's name is in Source; errors about the
	// playbook as a whole, like a name defined twice, point there.
	Pos Position
}

// Position is a line and column in a source, both 1-based. The zero
// Position means unknown.
type Position struct {
	Line   int
	Column int
}

// where renders "source:line:col", or just the source when the position is
// unknown.
func (p *Playbook) where() string {
	if p.Pos.Line == 0 {
		return p.Source
	}
	return fmt.Sprintf("%s:%d:%d", p.Source, p.Pos.Line, p.Pos.Column)
}

// Step is one action of a playbook, built and validated at load.
type Step struct {
	Name string
	// ActionID is the action type, like "exec".
	ActionID string
	Action   actions.Action
	// Params are the decoded parameters, kept for display.
	Params actions.Params
	// Timeout bounds one attempt of the step.
	Timeout time.Duration
	// Retries is how many more attempts a retryable error gets.
	Retries int
	// ContinueOnError: a failure of this step is recorded and the next
	// step runs; the run's outcome does not change for it.
	ContinueOnError bool
	// SafeToRetry says the step may run again after it was cut off midway
	// (it is idempotent): a run whose replica left the cluster during it
	// is taken over, and run again from the start, only if every step of
	// its playbook says so.
	SafeToRetry bool
}

// SafeToRetry reports whether every step of p is marked safe_to_retry.
func (p *Playbook) SafeToRetry() bool {
	if p == nil || len(p.Steps) == 0 {
		return false
	}
	for _, s := range p.Steps {
		if !s.SafeToRetry {
			return false
		}
	}
	return true
}

// Verify is a playbook's verify block.
type Verify struct {
	// ResolvedWithin is how long after the steps succeed a "resolved" for
	// the episode must arrive.
	ResolvedWithin time.Duration
}

// Step returns the step called name. A nil playbook has no steps.
func (p *Playbook) Step(name string) (Step, bool) {
	if p == nil {
		return Step{}, false
	}
	for _, st := range p.Steps {
		if st.Name == name {
			return st, true
		}
	}
	return Step{}, false
}

// Matches reports whether a satisfies every matcher of p and p acts on a's
// status.
func (p *Playbook) Matches(a alert.Alert) bool {
	return p.matches(a.Status, a.LabelSet())
}

func (p *Playbook) matches(s alert.Status, ls model.LabelSet) bool {
	return s == p.On && p.Matchers.Matches(ls)
}

// Explain says whether p would act on a and, when it would not, every
// reason why: the status it acts on, and each matcher that does not hold
// with the label value it saw. It agrees with Matches; dry runs and
// `selfheal check` show its text.
func (p *Playbook) Explain(a alert.Alert) (matches bool, why string) {
	var reasons []string
	if a.Status != p.On {
		reasons = append(reasons, fmt.Sprintf("acts on %s alerts; this alert is %s", p.On, a.Status))
	}
	for _, m := range p.Matchers {
		v, ok := a.Labels[m.Name]
		if m.Matches(v) {
			continue
		}
		seen := "is missing"
		if ok {
			seen = fmt.Sprintf("is %q", v)
		}
		reasons = append(reasons, fmt.Sprintf("matcher %s does not hold: label %s %s", m, m.Name, seen))
	}
	if len(reasons) > 0 {
		return false, strings.Join(reasons, "; ")
	}
	return true, fmt.Sprintf("acts on %s alerts and every matcher holds", p.On)
}

// DefaultStepTimeout bounds a step that sets no timeout.
const DefaultStepTimeout = 5 * time.Minute
