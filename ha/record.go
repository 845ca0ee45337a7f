// Package ha owns the execution log: which playbook ran, is running or was
// skipped for which episode, on which node, with what outcome. The log is
// persisted in bbolt under --storage.path, so a restart never re-runs an
// episode. Replicating it between replicas by gossip comes in a later step;
// the merge rules (states only move forward) are already the log's own.
package ha

import (
	"fmt"
	"time"

	"github.com/selfheal/selfheal/alert"
)

// State is where a run is. States only move forward: Claimed, then Running,
// then one of the final states.
type State string

// The states of a run, in order.
const (
	// Claimed: the run is decided and durably recorded; no step started.
	Claimed State = "claimed"
	// Running: a step has started; its effects may have happened.
	Running State = "running"
	// Succeeded: every step succeeded.
	Succeeded State = "succeeded"
	// Failed: a step failed, or the run was interrupted.
	Failed State = "failed"
	// Skipped: nothing ran, on purpose (dry run, playbook removed, ...).
	Skipped State = "skipped"
	// Unhealed: the steps ran but the alert did not resolve in time.
	Unhealed State = "unhealed"
	// Verifying: the steps succeeded and the run waits, until VerifyBy,
	// for the alert to resolve (verify.resolved_within).
	Verifying State = "verifying"
	// Shadow: shadow mode (dry_run) recorded what would have run, each
	// step's plan, and ran nothing.
	Shadow State = "shadow"
)

func (s State) rank() int {
	switch s {
	case Claimed:
		return 1
	case Running:
		return 2
	case Verifying:
		return 3
	case Succeeded, Failed, Skipped, Unhealed, Shadow:
		return 4
	default:
		return 0
	}
}

// Final reports whether s is an end state.
func (s State) Final() bool { return s.rank() == 4 }

// Record is one run of one playbook for one episode.
type Record struct {
	// ID is RunID(playbook, episode), or RepeatID for a repeat: the same
	// on every node.
	ID       string        `json:"id"`
	Playbook string        `json:"playbook"`
	Source   string        `json:"source"`
	Revision string        `json:"revision"`
	Episode  alert.Episode `json:"episode"`
	// Alert is the alert the run acts on, kept so that a claimed run can
	// start after a restart without the notification.
	Alert alert.Alert `json:"alert"`
	State State       `json:"state"`
	Node  string      `json:"node"`
	// Epoch counts take-overs: a replica that takes over the run of one
	// that left raises it, and a later epoch supersedes (see Supersedes).
	Epoch int `json:"epoch,omitempty"`
	// TakenOverFrom names the replica whose run this one took over.
	TakenOverFrom string `json:"takenOverFrom,omitempty"`
	// Rev counts the writes of this version of the record, so that of two
	// copies the later one stands.
	Rev    uint64 `json:"rev,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	// Reason explains a final state other than Succeeded, in words.
	Reason string `json:"reason,omitempty"`
	// SkipReason is the machine-readable cause of a Skipped state that a
	// guard decided (rate_limited, cooldown, concurrency, limit_key), as in
	// the metric selfheal_engine_runs_skipped_total{reason}.
	SkipReason string `json:"skipReason,omitempty"`
	// LimitKey is the rendered limits.key the run counts under; "" when its
	// playbook has no limits.
	LimitKey string `json:"limitKey,omitempty"`
	// NextAllowedAt is, for a run a guard skipped, when a run for the same
	// key would next have been allowed.
	NextAllowedAt time.Time `json:"nextAllowedAt,omitzero"`
	// NotBefore is, for a claimed run that waits (a delay, or for its
	// window to open), when it is due; Waiting says why, in words. A
	// restart keeps waiting for it.
	NotBefore time.Time `json:"notBefore,omitzero"`
	Waiting   string    `json:"waiting,omitempty"`
	// VerifyBy is, for a Verifying run, when it becomes unhealed unless
	// its alert resolved.
	VerifyBy time.Time `json:"verifyBy,omitzero"`
	// Repeat is, for a run that repeat_after started, how many runs of the
	// episode came before it; 0 for the episode's first.
	Repeat int `json:"repeat,omitempty"`
	// RepeatAt is, on a final record of a playbook with repeat_after, when
	// the playbook runs again for the episode if it still fires then. The
	// record of that repeat is RepeatID(playbook, episode, Repeat+1).
	RepeatAt   time.Time    `json:"repeatAt,omitzero"`
	Steps      []StepRecord `json:"steps,omitempty"`
	ClaimedAt  time.Time    `json:"claimedAt"`
	StartedAt  time.Time    `json:"startedAt,omitzero"`
	FinishedAt time.Time    `json:"finishedAt,omitzero"`
}

// StepRecord is what happened to one step of a run.
type StepRecord struct {
	Name       string            `json:"name"`
	Action     string            `json:"action"`
	State      State             `json:"state"`
	Attempts   int               `json:"attempts"`
	StartedAt  time.Time         `json:"startedAt,omitzero"`
	FinishedAt time.Time         `json:"finishedAt,omitzero"`
	Error      string            `json:"error,omitempty"`
	Summary    string            `json:"summary,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
	// Phase is "on_failure" for a step of the playbook's on_failure list;
	// "" for its steps.
	Phase string `json:"phase,omitempty"`
}

// RunID is the id of the run of playbook for episode. It is derived, never
// random, so every node and every restart names a run the same way.
func RunID(playbook string, ep alert.Episode) string {
	return playbook + "/" + ep.Key()
}

// RepeatID is the id of the n-th repeat (repeat_after) of playbook for
// episode; the 0th is the first run, RunID.
func RepeatID(playbook string, ep alert.Episode, n int) string {
	if n == 0 {
		return RunID(playbook, ep)
	}
	return fmt.Sprintf("%s/repeat-%d", RunID(playbook, ep), n)
}

// Duration is how long the run took, or 0 while it is not finished.
func (r Record) Duration() time.Duration {
	if r.StartedAt.IsZero() || r.FinishedAt.IsZero() {
		return 0
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

// DueAt is when a run next needs the engine: its verify deadline while it
// is Verifying, its RepeatAt once it is final (zero: never), its NotBefore
// otherwise (zero: at once).
func (r Record) DueAt() time.Time {
	switch {
	case r.State == Verifying:
		return r.VerifyBy
	case r.State.Final():
		return r.RepeatAt
	}
	return r.NotBefore
}

// Counts reports whether the run counts against its playbook's limits: it
// was decided to run (claimed, running or finished), or would have been in
// a dry run. A run a guard or anything else skipped does not count.
func (r Record) Counts() bool {
	return r.LimitKey != "" && (r.State != Skipped || r.DryRun && r.SkipReason == "")
}
