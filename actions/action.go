// Package actions defines what a remediation action is (the contract every
// integration satisfies), the registry that builds actions from playbook
// steps, and the templates their parameters use. The integrations live in
// sub-packages; builtin registers them.
package actions

import (
	"context"
	"time"

	"github.com/selfheal/selfheal/alert"
)

// Params is the parameter struct of an action type. A Spec's Params func
// returns it pre-filled with defaults; the registry decodes a step's `with`
// into it strictly and then calls Validate.
type Params interface {
	// Validate checks the decoded parameters. It must not render templates
	// or touch anything outside the value.
	Validate() error
}

// Action is one configured step: an action type bound to its parameters and
// dependencies. Implementations are safe for concurrent use: one Action
// serves every run of its step.
type Action interface {
	// Plan says exactly what Run would do for target, with no side effect.
	Plan(ctx context.Context, target Target) (Plan, error)
	// Run performs the action. It honours ctx. A failure always returns a
	// non-nil error; wrap it with Retryable when trying again can succeed.
	Run(ctx context.Context, target Target) (Result, error)
}

// Target is what an action acts for: the alert, and the run around it. It is
// also the data templates see (.Labels, .Annotations, .Playbook, .Run, …).
type Target struct {
	Status       alert.Status
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
	Fingerprint  string
	// Episode is the episode as "fingerprint@startsAt".
	Episode string
	// Playbook and Step name what is running; Run is the run's id.
	Playbook string
	Step     string
	Run      string
}

// NewTarget returns the target for a step of a run acting on a.
func NewTarget(a alert.Alert, playbook, step, run string) Target {
	return Target{
		Status:       a.Status,
		Labels:       a.Labels,
		Annotations:  a.Annotations,
		StartsAt:     a.StartsAt,
		EndsAt:       a.EndsAt,
		GeneratorURL: a.GeneratorURL,
		Fingerprint:  a.Fingerprint,
		Episode:      a.Episode().String(),
		Playbook:     playbook,
		Step:         step,
		Run:          run,
	}
}

// Plan describes what an action would do. Params holds the rendered
// parameters by name; a secret parameter is shown as "<secret>".
type Plan struct {
	// Summary is one line, like "run /usr/bin/cleanup --host db-1".
	Summary string `json:"summary"`
	// Params are the rendered parameters, in a stable order.
	Params []Param `json:"params,omitempty"`
	// Details are further lines: what is checked, what could go wrong.
	Details []string `json:"details,omitempty"`
}

// Param is one rendered parameter of a plan.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is what a successful Run reports; it goes into the run record.
type Result struct {
	// Summary is one line, like "exit 0 after 1.2s".
	Summary string `json:"summary"`
	// Details are named facts (an exit code, a build URL, a silence id).
	Details map[string]string `json:"details,omitempty"`
	// Touched are the objects the attempt changed; the engine records
	// them (TouchedKey) and, when the run ends, a Kubernetes Event is
	// posted on each. It is read on a failed attempt too: an action that
	// fails after a change returns what it changed with its error.
	Touched []ObjectRef `json:"touched,omitempty"`
}

// Finisher is implemented by actions that close what they opened once the
// run ends, whatever its outcome: an Alertmanager silence set with
// expire_on_finish is expired. The engine calls Finish, in reverse step
// order, for every step whose Run succeeded, with that Run's result.
type Finisher interface {
	Finish(ctx context.Context, target Target, res Result) error
}

// Bounded is implemented by parameters of actions that bound their own work,
// like a Jenkins build they wait for or a readiness poll. A step that sets
// no timeout gets MaxDuration plus a minute; a step whose timeout is shorter
// is refused at load, because the engine would cut the action off before it
// could report.
type Bounded interface {
	MaxDuration() time.Duration
}
