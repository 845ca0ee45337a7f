package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// DefaultRunsLimit is the page size of GET /api/v1/runs without ?limit.
const DefaultRunsLimit = 100

// runsParams are the query parameters GET /api/v1/runs and the status page
// know; any other is refused, so that a misspelt filter is not silently
// ignored.
var runsParams = []string{"playbook", "outcome", "since", "limit", "after"}

// paramError is a query parameter that cannot be used: a 400 that names it.
type paramError struct {
	param string
	msg   string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

// runsQuery reads the filters and the page of a runs listing:
//
//	playbook=NAME          the runs of one playbook
//	outcome=STATE[,STATE]  the runs in one of these states (repeatable)
//	since=TIME|DURATION    the runs claimed at or after an RFC 3339 time, or
//	                       within a Prometheus duration (1h, 30m, 7d) of now
//	limit=N                at most N runs (1..MaxRunsLimit, default 100)
//	after=CURSOR           the page after the one whose "next" this was
func runsQuery(v url.Values, now time.Time) (ha.Query, error) {
	q := ha.Query{Playbook: v.Get("playbook"), After: v.Get("after"), Limit: DefaultRunsLimit}
	for name := range v {
		if !slices.Contains(runsParams, name) {
			return q, &paramError{name, "unknown parameter; known: " + strings.Join(runsParams, ", ")}
		}
	}
	for _, list := range v["outcome"] {
		for s := range strings.SplitSeq(list, ",") {
			st, ok := ha.ParseState(strings.TrimSpace(s))
			if !ok {
				return q, &paramError{"outcome", fmt.Sprintf("unknown state %q; want one of %s", s, stateNames())}
			}
			q.States = append(q.States, st)
		}
	}
	if s := v.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.Since = t
		} else if d, err := model.ParseDuration(s); err == nil {
			q.Since = now.Add(-time.Duration(d))
		} else {
			return q, &paramError{"since", fmt.Sprintf("want an RFC 3339 time (2026-11-21T19:08:21Z) or a duration (1h, 30m, 7d), got %q", s)}
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 1:
			return q, &paramError{"limit", fmt.Sprintf("want a positive integer, got %q", s)}
		case n > MaxRunsLimit:
			return q, &paramError{"limit", fmt.Sprintf("at most %d, got %s", MaxRunsLimit, s)}
		}
		q.Limit = n
	}
	return q, nil
}

func stateNames() string {
	names := make([]string, len(ha.States))
	for i, s := range ha.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// queryRuns runs the query of r's parameters. An error is a paramError
// (400) or the log's (500).
func queryRuns(runs Runs, r *http.Request) (ha.Page, error) {
	q, err := runsQuery(r.URL.Query(), time.Now())
	if err != nil {
		return ha.Page{}, err
	}
	page, err := runs.Query(q)
	if errors.Is(err, ha.ErrBadCursor) {
		return page, &paramError{"after", err.Error()}
	}
	return page, err
}

// writeQueryError answers 400 naming the parameter, or 500.
func writeQueryError(w http.ResponseWriter, err error) {
	var pe *paramError
	if errors.As(err, &pe) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": pe.Error(), "parameter": pe.param})
		return
	}
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
}

// runDetail is GET /api/v1/runs/{id}: the record, each step with its
// duration and parameters, and where the parameters come from.
type runDetail struct {
	ha.Record
	DurationSeconds float64      `json:"durationSeconds,omitempty"`
	Steps           []stepDetail `json:"steps,omitempty"`
	// Definition is the loaded playbook the step parameters are read
	// from: the record keeps what each step did, not its parameters.
	Definition definitionView `json:"definition"`
}

type stepDetail struct {
	ha.StepRecord
	DurationSeconds float64     `json:"durationSeconds,omitempty"`
	Params          []paramView `json:"params,omitempty"`
}

type definitionView struct {
	Loaded   bool   `json:"loaded"`
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Changed: the loaded revision is not the one that ran, so the
	// parameters shown may not be those the run used.
	Changed bool   `json:"changed,omitempty"`
	Note    string `json:"note"`
}

// detail joins rec with the step definitions of its playbook in set.
func detail(rec ha.Record, set *playbooks.Set) runDetail {
	d := runDetail{Record: rec, DurationSeconds: rec.Duration().Seconds(), Steps: []stepDetail{}}
	var pb *playbooks.Playbook
	if set != nil {
		pb = set.Get(rec.Playbook)
	}
	switch {
	case pb == nil:
		d.Definition.Note = fmt.Sprintf("playbook %q is not loaded now; the record does not keep step parameters", rec.Playbook)
	case rec.Revision != "" && pb.Revision != rec.Revision:
		d.Definition = definitionView{Loaded: true, Source: pb.Source, Revision: pb.Revision, Changed: true,
			Note: fmt.Sprintf("parameters from revision %s of %s, which is not the one that ran (%s); rendered for this run's alert", pb.Revision, pb.Source, rec.Revision)}
	default:
		d.Definition = definitionView{Loaded: true, Source: pb.Source, Revision: pb.Revision,
			Note: fmt.Sprintf("parameters from revision %s of %s, rendered for this run's alert", pb.Revision, pb.Source)}
	}
	for _, sr := range rec.Steps {
		sd := stepDetail{StepRecord: sr}
		if !sr.StartedAt.IsZero() && !sr.FinishedAt.IsZero() {
			sd.DurationSeconds = sr.FinishedAt.Sub(sr.StartedAt).Seconds()
		}
		if st := stepOf(pb, sr); st != nil {
			sd.Params = stepParams(st.Params, actions.NewTarget(rec.Alert, pb.Name, st.Name, rec.ID))
		}
		d.Steps = append(d.Steps, sd)
	}
	return d
}

// stepOf is the step of pb that sr recorded: by name, among the steps or
// the on_failure steps as sr's phase says.
func stepOf(pb *playbooks.Playbook, sr ha.StepRecord) *playbooks.Step {
	if pb == nil {
		return nil
	}
	steps := pb.Steps
	if sr.Phase == "on_failure" {
		steps = pb.OnFailure
	}
	for i := range steps {
		if steps[i].Name == sr.Name && steps[i].ActionID == sr.Action {
			return &steps[i]
		}
	}
	return nil
}
