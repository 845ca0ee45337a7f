package webhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

// Plan renders the request for t and says what Run would send: method,
// URL, headers, body, timeout and attempts. Secret header values, the
// bearer token and secrets in the URL show as "<secret>". It sends nothing; it reads the token
// file, so a missing or empty token is a plan error, as it would be for
// Run.
func (a *Action) Plan(_ context.Context, t actions.Target) (actions.Plan, error) {
	r, err := a.prepare(t)
	if err != nil {
		return actions.Plan{}, redact.New().Error(fmt.Errorf("webhook: %w", err))
	}
	params := []actions.Param{
		{Name: "url", Value: r.url.String()},
		{Name: "method", Value: r.method},
	}
	params = append(params, r.shownHeaders()...)
	params = append(params,
		actions.Param{Name: "body", Value: r.body},
		actions.Param{Name: "timeout", Value: a.p.Timeout.String()},
		actions.Param{Name: "max_attempts", Value: strconv.Itoa(a.p.MaxAttempts)},
	)
	if a.p.BearerTokenFile != "" {
		params = append(params, actions.Param{Name: "bearer_token_file", Value: a.p.BearerTokenFile})
	}
	return actions.Plan{
		Summary: r.String(),
		Params:  params,
		Details: a.planDetails(),
	}.Redacted(r.redactor), nil
}

// planDetails explains retries, redirects and the token.
func (a *Action) planDetails() []string {
	var d []string
	if a.p.MaxAttempts > 1 {
		waits := make([]string, a.p.MaxAttempts-1)
		for i := range waits {
			waits[i] = a.backoff.delay(i + 1).String()
		}
		d = append(d, fmt.Sprintf("transport errors, timeouts (%s per attempt), 408, 429 and 5xx are tried again, "+
			"up to %d attempts, waiting %s between them", a.p.Timeout, a.p.MaxAttempts, strings.Join(waits, ", ")))
	} else {
		d = append(d, fmt.Sprintf("one attempt, timing out after %s; no retry within the step", a.p.Timeout))
	}
	d = append(d, "2xx succeeds; a 3xx fails the step (redirects are not followed); other 4xx fail the step at once")
	if a.p.BearerTokenFile != "" {
		d = append(d, fmt.Sprintf("the bearer token is read from %s when the step runs", a.p.BearerTokenFile))
	}
	return d
}
