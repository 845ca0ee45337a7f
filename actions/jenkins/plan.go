package jenkins

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/selfheal/selfheal/actions"
)

// Plan renders the step for t and says what Run would do: the server, the
// job, the parameters, and every HTTP request Run would send. It sends
// nothing. The API token, and the value of a parameter whose name looks
// secret (password, token, secret, key, credential), show as "<secret>".
func (a *Action) Plan(_ context.Context, t actions.Target) (actions.Plan, error) {
	b, err := a.render(t)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("%s: %w", ID, err)
	}
	c := a.conn
	params := []actions.Param{
		{Name: "server", Value: c.name},
		{Name: "server_url", Value: c.base},
		{Name: "user", Value: c.cfg.User},
		{Name: "api_token", Value: secretShown},
		{Name: "job", Value: b.job.String()},
	}
	for _, n := range b.names {
		params = append(params, actions.Param{Name: "parameters." + n, Value: shownValue(n, b.params[n])})
	}
	params = append(params, actions.Param{Name: "wait", Value: strconv.FormatBool(a.p.Wait)})
	if a.p.Wait {
		params = append(params,
			actions.Param{Name: "timeout", Value: a.p.Timeout.String()},
			actions.Param{Name: "poll_interval", Value: a.p.PollInterval.String()},
		)
	}
	return actions.Plan{Summary: a.planSummary(b), Params: params, Details: a.planDetails(b)}, nil
}

// planSummary is "trigger Jenkins job a/b on server default
// (https://jenkins.example) with HOST=worker-01 and wait up to 20m".
func (a *Action) planSummary(b rendered) string {
	var s strings.Builder
	fmt.Fprintf(&s, "trigger Jenkins job %s on server %s (%s)", b.job, a.conn.name, a.conn.base)
	if len(b.names) > 0 {
		pairs := make([]string, len(b.names))
		for i, n := range b.names {
			pairs[i] = n + "=" + quoteIfNeeded(shownValue(n, b.params[n]))
		}
		s.WriteString(" with " + strings.Join(pairs, ", "))
	}
	if a.p.Wait {
		fmt.Fprintf(&s, " and wait up to %s", a.p.Timeout)
	} else {
		s.WriteString(", without waiting for the result")
	}
	return s.String()
}

// planDetails lists the requests Run sends, in order, and how answers are
// taken.
func (a *Action) planDetails(b rendered) []string {
	c := a.conn
	job := c.url(b.job.base())
	poll := a.p.PollInterval.String()
	d := []string{
		fmt.Sprintf("GET %s: connection and credentials check (gojenkins Init), once per server while the daemon runs",
			c.url("/api/json")),
		fmt.Sprintf("GET %s/api/json: the job's parameter definitions; "+
			"parameters the job does not define fail the step here, as Jenkins would drop them", job),
		fmt.Sprintf("GET %s?tree=%s: the ids already queued, to recognise Jenkins merging the trigger into one of them",
			c.url("/queue/api/json"), queueTree),
		fmt.Sprintf("GET %s: gojenkins asks for a CSRF crumb at this doubled path; a 404 sends none, "+
			"which an API token does not need", c.url("/crumbIssuer/api/json/api/json")),
	}
	expect := "expects 201 Created and Location: .../queue/item/<id>/ (only the id is used)"
	if len(b.names) > 0 {
		d = append(d, fmt.Sprintf("POST %s/buildWithParameters with the form body %s: %s", job, shownForm(b), expect))
	} else {
		d = append(d, fmt.Sprintf("POST %s/build with an empty body (%s/buildWithParameters if the job defines parameters: "+
			"their defaults apply): %s", job, job, expect))
	}
	d = append(d, "if a build with the same parameters is already queued, Jenkins answers with its queue item: "+
		"nothing new is triggered and the step succeeds with outcome already_queued")
	if a.p.Wait {
		d = append(d,
			fmt.Sprintf("GET %s every %s until the item leaves the queue; cancelled in the queue fails the step",
				c.url("/queue/item/<id>/api/json"), poll),
			fmt.Sprintf("if the queue item has expired (404): GET %s/api/json?tree=%s to find the build by its queue id",
				job, buildsTree),
			fmt.Sprintf("GET %s/<number>/api/json?tree=%s every %s until building is false", job, buildTree, poll),
			fmt.Sprintf("SUCCESS and UNSTABLE succeed (UNSTABLE is recorded as result UNSTABLE); FAILURE, ABORTED and "+
				"NOT_BUILT fail the step; after %s of waiting the step fails and the build may still run", a.p.Timeout),
		)
	} else {
		d = append(d, "the step succeeds once the build is queued (outcome queued); its result is not awaited")
	}
	return append(d,
		"401, 403, 404 and 409 (a disabled job) fail the step; transport errors, timeouts, 408, 429 and 5xx may be retried",
		fmt.Sprintf("every request authenticates as %q with an API token (basic auth) and times out after %s",
			c.cfg.User, c.client.Timeout),
	)
}

// shownForm is the trigger's form body, secret values replaced.
func shownForm(b rendered) string {
	pairs := make([]string, len(b.names))
	for i, n := range b.names {
		v := secretShown
		if !secretParam(n) {
			v = url.QueryEscape(b.params[n])
		}
		pairs[i] = url.QueryEscape(n) + "=" + v
	}
	return strings.Join(pairs, "&")
}

// shownValue is v, or "<secret>" for a parameter whose name looks secret.
func shownValue(name, v string) string {
	if secretParam(name) {
		return secretShown
	}
	return v
}

// secretParam reports whether a parameter's value must not be shown.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "token", "secret", "key", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// quoteIfNeeded quotes a value that would be ambiguous in a summary.
func quoteIfNeeded(v string) string {
	if v == "" || strings.ContainsAny(v, " ,\"'\t\n") {
		return strconv.Quote(v)
	}
	return v
}
