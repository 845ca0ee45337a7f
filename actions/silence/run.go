package silence

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/selfheal/selfheal/actions"
)

// Action closes its silence at the end of the run when expire_on_finish is set.
var _ actions.Finisher = (*Action)(nil)

// Result detail keys.
const (
	// DetailSilenceID is the id Alertmanager gave the silence; Finish
	// expires it.
	DetailSilenceID = "silence_id"
	// DetailEndsAt is when the silence ends unless expired, RFC 3339.
	DetailEndsAt = "ends_at"
	// DetailMatchers are the silence's matchers, like
	// `alertname="DiskFull", instance="db-1"`.
	DetailMatchers = "matchers"
)

// matcher is one equality matcher of a silence.
type matcher struct{ name, value string }

func (m matcher) String() string { return fmt.Sprintf("%s=%q", m.name, m.value) }

// prepared is the silence a step creates for one target: what Plan shows
// and Run posts. Plan and Run both build it with prepare.
type prepared struct {
	matchers []matcher // sorted by name
	comment  string
}

// matcherString renders the matchers as `a="x", b="y"`.
func (s *prepared) matcherString() string {
	parts := make([]string, len(s.matchers))
	for i, m := range s.matchers {
		parts[i] = m.String()
	}
	return strings.Join(parts, ", ")
}

// prepare picks the matchers and renders the comment for t. It has no side
// effect. Every matcher has a non-empty value, so the silence meets
// Alertmanager's rule that one matcher must not match the empty string.
func (a *Action) prepare(t actions.Target) (*prepared, error) {
	s := &prepared{}
	if len(a.p.Matchers) == 0 {
		for _, name := range slices.Sorted(maps.Keys(t.Labels)) {
			if v := t.Labels[name]; v != "" {
				s.matchers = append(s.matchers, matcher{name, v})
			}
		}
		if len(s.matchers) == 0 {
			return nil, fmt.Errorf("matchers: the alert has no labels to silence on")
		}
	} else {
		for _, name := range slices.Sorted(slices.Values(a.p.Matchers)) {
			v := t.Labels[name]
			if v == "" {
				return nil, fmt.Errorf("matchers: the alert has no label %q", name)
			}
			s.matchers = append(s.matchers, matcher{name, v})
		}
	}
	c, err := a.p.Comment.Render(t)
	if err != nil {
		return nil, fmt.Errorf("comment: %w", err)
	}
	if strings.TrimSpace(c) == "" {
		return nil, fmt.Errorf("comment: renders empty")
	}
	s.comment = c
	return s, nil
}

// postable is the API silence from start to end.
func (s *prepared) postable(start, end time.Time, createdBy string) *models.PostableSilence {
	ms := make(models.Matchers, len(s.matchers))
	for i, m := range s.matchers {
		ms[i] = &models.Matcher{
			Name:    ptr(m.name),
			Value:   ptr(m.value),
			IsRegex: ptr(false),
			IsEqual: ptr(true),
		}
	}
	startsAt, endsAt := strfmt.DateTime(start), strfmt.DateTime(end)
	return &models.PostableSilence{Silence: models.Silence{
		Matchers:  ms,
		StartsAt:  &startsAt,
		EndsAt:    &endsAt,
		CreatedBy: ptr(createdBy),
		Comment:   ptr(s.comment),
	}}
}

func ptr[T any](v T) *T { return &v }

// Plan says which silence Run would create for t, and where. It sends
// nothing. The URL's password shows as xxxxx, and nothing else shows it or
// the basic auth built from it.
func (a *Action) Plan(_ context.Context, t actions.Target) (actions.Plan, error) {
	s, err := a.prepare(t)
	if err != nil {
		return actions.Plan{}, a.am.redactor.Error(fmt.Errorf("%s: %w", ID, err))
	}
	ms := s.matcherString()
	expire := "not expired when the run finishes: it lasts its whole duration"
	if a.p.ExpireOnFinish {
		expire = "expired when the run finishes, whatever its outcome (DELETE /api/v2/silence/{id})"
	}
	plan := actions.Plan{
		Summary: fmt.Sprintf("silence %s on %s for %s", ms, a.am.url, a.p.Duration),
		Params: []actions.Param{
			{Name: "matchers", Value: ms},
			{Name: "comment", Value: s.comment},
			{Name: "created_by", Value: a.p.CreatedBy},
			{Name: "duration", Value: a.p.Duration.String()},
			{Name: "expire_on_finish", Value: strconv.FormatBool(a.p.ExpireOnFinish)},
			{Name: "url", Value: a.am.url},
		},
		Details: []string{
			fmt.Sprintf("the silence starts when the step runs and ends %s later; Alertmanager gossips it to its peers", a.p.Duration),
			"while it is active, notifications of matching alerts are muted, the resolved one included",
			expire,
			fmt.Sprintf("transport errors, timeouts (%s per request), 408, 429 and 5xx are retryable; other 4xx fail the step", requestTimeout),
		},
	}
	return plan.Redacted(a.am.redactor), nil
}

// Run creates the silence for t, from now for the step's duration. Its
// Result's Details hold the silence_id, ends_at and matchers. Transport
// errors, timeouts, 408, 429 and 5xx are actions.Retryable; other 4xx fail
// permanently with Alertmanager's message. A done ctx ends Run at once,
// permanently. Neither the result nor the error shows the URL's password
// or the basic auth built from it, even when Alertmanager (or a proxy in
// front of it) echoes them.
func (a *Action) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	res, err := a.run(ctx, t)
	return res.Redacted(a.am.redactor), a.am.redactor.Error(err)
}

// run is Run before redaction.
func (a *Action) run(ctx context.Context, t actions.Target) (actions.Result, error) {
	s, err := a.prepare(t)
	if err != nil {
		return actions.Result{}, fmt.Errorf("%s: %w", ID, err)
	}
	ms := s.matcherString()
	// The API keeps milliseconds: truncate so ends_at is what is stored.
	start := a.now().UTC().Truncate(time.Millisecond)
	end := start.Add(time.Duration(a.p.Duration))
	id, err := a.am.post(ctx, s.postable(start, end, a.p.CreatedBy))
	if err != nil {
		return actions.Result{}, fmt.Errorf("%s: silence %s on %s: %w", ID, ms, a.am.url, err)
	}
	a.logger.Info("silence created", "playbook", t.Playbook, "step", t.Step, "run", t.Run,
		"silence_id", id, "matchers", ms, "ends_at", end)
	endsAt := end.Format(time.RFC3339Nano)
	return actions.Result{
		Summary: fmt.Sprintf("silence %s on %s until %s: %s", id, a.am.url, endsAt, ms),
		Details: map[string]string{
			DetailSilenceID: id,
			DetailEndsAt:    endsAt,
			DetailMatchers:  ms,
		},
	}, nil
}

// Expire expires silence id now (the API's DELETE). Expiring an expired
// silence succeeds; an id Alertmanager does not know is ErrNotFound.
// Errors are retryable like Run's, and redacted like them.
func (a *Action) Expire(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%s: expire: no silence id", ID)
	}
	if err := a.am.expire(ctx, id); err != nil {
		return a.am.redactor.Error(fmt.Errorf("%s: expire silence %s on %s: %w", ID, id, a.am.url, err))
	}
	return nil
}

// Finish expires the silence res reports when the step has
// expire_on_finish set; otherwise, or when res holds no silence_id, it does
// nothing.
func (a *Action) Finish(ctx context.Context, t actions.Target, res actions.Result) error {
	id := res.Details[DetailSilenceID]
	if !a.p.ExpireOnFinish || id == "" {
		return nil
	}
	if err := a.Expire(ctx, id); err != nil {
		return err
	}
	a.logger.Info("silence expired", "playbook", t.Playbook, "step", t.Step, "run", t.Run, "silence_id", id)
	return nil
}
