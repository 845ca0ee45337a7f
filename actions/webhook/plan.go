package webhook

import (
	"context"
	"fmt"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

// Plan renders the request for t and says what Run would send: method,
// URL, headers, body and timeout, and which answers the step's retries
// send again. Secret header values, the bearer token and secrets in the
// URL show as "<secret>". It sends nothing; it reads the token file, so a
// missing or empty token is a plan error, as it would be for Run.
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

// planDetails explains what fails the attempt, redirects and the token.
// How often the step is tried is the step's retries, which dry-run shows
// with the step.
func (a *Action) planDetails() []string {
	d := []string{
		fmt.Sprintf("one request per attempt, timing out after %s; a transport error, the timeout, 408, 429 and 5xx fail it as retryable: "+
			"the step's retries send it again, with the engine's backoff", a.p.Timeout),
		"2xx succeeds; a 3xx (redirects are not followed) and other 4xx fail the step at once, whatever its retries",
	}
	if a.p.BearerTokenFile != "" {
		d = append(d, fmt.Sprintf("the bearer token is read from %s when the step runs", a.p.BearerTokenFile))
	}
	return d
}
