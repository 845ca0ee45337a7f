package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

const (
	// bodyExcerpt is how much of a response body is kept: its start, where
	// an API puts its error.
	bodyExcerpt = 1 << 10
	// drainLimit is how much more of a body is read (and dropped) so the
	// connection can be reused.
	drainLimit = 64 << 10
)

// errAttemptTimeout is the cause of an attempt's context when its timeout
// passes.
var errAttemptTimeout = errors.New("webhook attempt timeout")

// Run sends the request for t once: one attempt of the step. A 2xx
// succeeds. A transport error, the attempt's timeout, 408, 429 and 5xx
// fail with an actions.Retryable error, which the step's retries (the
// engine's one retry layer, with its backoff) send again. Any other
// status, a 3xx included, fails permanently. A cancelled ctx fails
// permanently too, with its cause.
func (a *Action) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	r, err := a.prepare(t)
	if err != nil {
		return actions.Result{}, redact.New().Error(fmt.Errorf("webhook: %w", err))
	}
	res, err := a.attempt(ctx, r)
	switch {
	case err == nil:
		res.Summary = fmt.Sprintf("%s: %s", r, res.Summary)
		a.logger.Info("webhook sent", "playbook", t.Playbook, "step", t.Step, "run", t.Run, "request", r.String(), "status", res.Details["status"])
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("webhook %s: %w", r, context.Cause(ctx))
	}
	return res, fmt.Errorf("webhook %s: %w", r, err)
}

// attempt sends r once. Its error is actions.Retryable when another attempt
// may succeed. The Result's Details always exist; they hold the status and
// body excerpt when a response came. Neither shows a secret of r, even
// when the server echoes one (in a body, in a redirect's Location).
func (a *Action) attempt(ctx context.Context, r *request) (actions.Result, error) {
	res, err := a.send(ctx, r)
	return res.Redacted(r.redactor), r.redactor.Error(err)
}

// send is attempt before redaction.
func (a *Action) send(ctx context.Context, r *request) (actions.Result, error) {
	res := actions.Result{Details: map[string]string{}}
	actx, cancel := context.WithTimeoutCause(ctx, time.Duration(a.p.Timeout), errAttemptTimeout)
	defer cancel()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, r.url.String(), body)
	if err != nil {
		return res, fmt.Errorf("build request: %w", err)
	}
	req.Header = r.header.Clone()
	resp, err := a.client.Do(req)
	if err != nil {
		if errors.Is(context.Cause(actx), errAttemptTimeout) && ctx.Err() == nil {
			return res, actions.Retryablef("timed out after %s", a.p.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return res, actions.Retryable(err)
	}
	defer resp.Body.Close()
	excerpt := readExcerpt(resp.Body)
	res.Summary = resp.Status
	res.Details["status"] = strconv.Itoa(resp.StatusCode)
	res.Details["body"] = excerpt
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return res, nil
	case code >= 300 && code < 400:
		return res, fmt.Errorf("status %s: redirects are not followed (Location: %q)", resp.Status, resp.Header.Get("Location"))
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return res, actions.Retryablef("status %s%s", resp.Status, bodySuffix(excerpt))
	default:
		return res, fmt.Errorf("status %s%s", resp.Status, bodySuffix(excerpt))
	}
}

// readExcerpt returns the first bodyExcerpt bytes of body as valid UTF-8,
// ending in "…" when there was more, and drains a bounded rest so the
// connection can be reused. A read error ends the excerpt early.
func readExcerpt(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, bodyExcerpt+1))
	more := len(b) > bodyExcerpt
	if more {
		b = trimPartialRune(b[:bodyExcerpt])
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD")
	if more {
		s += "…"
	}
	return s
}

// trimPartialRune drops an incomplete rune a cut left at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

func bodySuffix(excerpt string) string {
	if excerpt == "" {
		return ""
	}
	return fmt.Sprintf(": %q", excerpt)
}
