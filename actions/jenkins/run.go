package jenkins

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strconv"

	"github.com/selfheal/selfheal/actions"
)

// Run triggers the job for t and, with wait, waits for its result.
//
// Outcomes (Result.Details["outcome"]):
//   - "already_queued": Jenkins merged the trigger into a queued item with
//     the same parameters; nothing new was triggered. The step succeeds
//     and says so: it is a recorded skip.
//   - "queued": without wait, the build is queued.
//   - "finished": the build ended. SUCCESS succeeds; so does UNSTABLE (the
//     job ran to its end; only its tests or quality gates complained), with
//     Details["result"] = "UNSTABLE" for whoever reads the record. FAILURE,
//     ABORTED and NOT_BUILT fail permanently, naming the result and URL.
//
// Errors: 401, 403, 404 and 409 (a disabled job) are permanent; transport
// errors, timeouts and 408, 429 and 5xx answers to the trigger are
// actions.Retryable. Once the build is queued, failed polls are polled
// again; when the wait's timeout or ctx ends, the error is permanent
// (ErrGaveUp): the build may still run, and a retry would start another.
// Neither the result nor an error shows the API token, the basic auth
// built from it, or the value of a secret parameter, even where Jenkins
// echoes them.
func (a *Action) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	b, err := a.render(t)
	if err != nil {
		return actions.Result{}, a.conn.redactor.Error(fmt.Errorf("%s: %w", ID, err))
	}
	var secrets []string
	for _, n := range b.names {
		if v := b.params[n]; secretParam(n) {
			secrets = append(secrets, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	r := a.conn.redactor.With(secrets...)
	res, err := a.run(ctx, t, b)
	if err != nil {
		err = r.Error(fmt.Errorf("%s %s on %s: %w", ID, b.job, a.conn.name, err))
	}
	return res.Redacted(r), err
}

func (a *Action) run(ctx context.Context, t actions.Target, b rendered) (actions.Result, error) {
	c := a.conn
	j, err := c.ready(ctx)
	if err != nil {
		return actions.Result{}, err
	}
	q, err := a.trigger(ctx, j, b)
	if err != nil {
		return actions.Result{}, err
	}
	queueURL := c.url(fmt.Sprintf("/queue/item/%d/", q.id))
	res := actions.Result{Details: map[string]string{
		"server":    c.name,
		"job":       b.job.String(),
		"queue_id":  strconv.FormatInt(q.id, 10),
		"queue_url": queueURL,
	}}
	log := a.logger.With("server", c.name, "job", b.job.String(), "queue_id", q.id,
		"playbook", t.Playbook, "step", t.Step, "run", t.Run)
	switch {
	case q.already:
		res.Details["outcome"] = "already_queued"
		res.Summary = fmt.Sprintf("skipped: job %s is already queued on server %s with the same parameters "+
			"(queue item %d, %s); nothing new was triggered", b.job, c.name, q.id, queueURL)
		log.Info("jenkins build already queued, nothing triggered")
		return res, nil
	case !a.p.Wait:
		res.Details["outcome"] = "queued"
		res.Summary = fmt.Sprintf("queued job %s on server %s as queue item %d (%s); not waiting for the result",
			b.job, c.name, q.id, queueURL)
		log.Info("jenkins build queued")
		return res, nil
	}
	log.Info("jenkins build queued, waiting for it", "timeout", a.p.Timeout)
	f, err := a.wait(ctx, j, b, q.id, log)
	maps.Copy(res.Details, f.details())
	if err != nil {
		return res, err
	}
	res.Details["outcome"] = "finished"
	log.Info("jenkins build finished", "number", f.number, "result", f.result, "build_url", f.url, "duration", f.duration)
	switch f.result {
	case "SUCCESS", "UNSTABLE":
		res.Summary = fmt.Sprintf("job %s #%d on server %s: %s after %s (%s)", b.job, f.number, c.name, f.result, f.duration, f.url)
		return res, nil
	}
	return res, fmt.Errorf("%w: #%d ended %s, see %s", ErrBuildFailed, f.number, f.result, f.url)
}
