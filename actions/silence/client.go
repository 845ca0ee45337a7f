package silence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amsilence "github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

const (
	// requestTimeout bounds each API request; a step's context may end it
	// sooner.
	requestTimeout = 30 * time.Second
	// messageLimit is how much of an error response body is kept.
	messageLimit = 1 << 10
	// drainLimit is how much more of a body is read (and dropped) so the
	// connection can be reused.
	drainLimit = 64 << 10
)

// ErrNotFound is returned (wrapped) by Expire when Alertmanager does not
// know the silence: it was never created there, or its state was lost.
var ErrNotFound = errors.New("silence not found")

// client talks to one Alertmanager through the generated API v2 client.
// It is safe for concurrent use.
type client struct {
	api amsilence.ClientService
	// url is the base URL for messages, a password hidden.
	url string
	// redactor knows the URL's password and the basic auth built from
	// it: what an error body may echo.
	redactor *redact.Redactor
}

// newClient builds the go-openapi transport as amtool does
// (runtime/client.NewWithClient) on u with hc (nil: &http.Client{}).
func newClient(u *url.URL, hc *http.Client) *client {
	if hc == nil {
		hc = &http.Client{}
	}
	basePath := strings.TrimSuffix(u.Path, "/") + "/api/v2/"
	rt := httptransport.NewWithClient(u.Host, basePath, []string{u.Scheme}, hc)
	// The runtime turns on request dumps to stderr when $DEBUG is set;
	// they would show credentials.
	rt.Debug = false
	// An error page of a proxy in front of Alertmanager may have any
	// content type; without a catch-all consumer its status would be lost.
	rt.Consumers["*/*"] = runtime.ByteStreamConsumer()
	var secrets []string
	if u.User != nil {
		pw, _ := u.User.Password()
		rt.DefaultAuthentication = httptransport.BasicAuth(u.User.Username(), pw)
		secrets = redact.BasicAuth(u.User.Username(), pw)
	}
	shown := *u
	shown.Path = strings.TrimSuffix(shown.Path, "/")
	return &client{api: amsilence.New(rt, strfmt.Default), url: shown.Redacted(), redactor: redact.New(secrets...)}
}

// post creates s and returns its id. Errors are classified by classify.
func (c *client) post(ctx context.Context, s *models.PostableSilence) (string, error) {
	params := amsilence.NewPostSilencesParamsWithContext(ctx).WithTimeout(requestTimeout).WithSilence(s)
	ok, err := c.api.PostSilences(params, readStatus)
	if err != nil {
		return "", classify(ctx, err)
	}
	if ok.Payload == nil || ok.Payload.SilenceID == "" {
		return "", errors.New("the response has no silence id")
	}
	return ok.Payload.SilenceID, nil
}

// expire expires silence id. Expiring an expired silence succeeds; an
// unknown id is ErrNotFound.
func (c *client) expire(ctx context.Context, id string) error {
	params := amsilence.NewDeleteSilenceParamsWithContext(ctx).WithTimeout(requestTimeout).WithSilenceID(strfmt.UUID(id))
	_, err := c.api.DeleteSilence(params, readStatus)
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		switch {
		case se.code == http.StatusNotFound,
			// Alertmanager 0.25 answers 500 with silence.ErrNotFound's text.
			se.code == http.StatusInternalServerError && se.msg == "silence not found":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case se.code == http.StatusInternalServerError && strings.Contains(se.msg, "already expired"):
			// Older Alertmanagers answer 500 "silence <id> already
			// expired"; the silence is where expiring it again would
			// put it.
			return nil
		}
	}
	return classify(ctx, err)
}

// classify marks an API error retryable when trying again can succeed: a
// transport error, a request timeout, 408, 429 or 5xx. A done ctx is
// permanent: the run is over.
func classify(ctx context.Context, err error) error {
	var (
		se *statusError
		ue *url.Error
		ne net.Error
	)
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.As(err, &se):
		if se.code >= 500 || se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests {
			return actions.Retryable(err)
		}
		return err
	case errors.As(err, &ue), errors.As(err, &ne):
		return actions.Retryable(err)
	}
	return err
}

// statusError is a non-2xx answer of the API, with its message.
type statusError struct {
	code   int
	status string // "400 Bad Request"
	msg    string
}

func (e *statusError) Error() string {
	if e.msg == "" {
		return "status " + e.status
	}
	return fmt.Sprintf("status %s: %s", e.status, e.msg)
}

// readStatus makes an operation turn every non-2xx response into a
// *statusError carrying the API's message. The generated readers know only
// the documented codes and drop the body of the others (a proxy's 502).
func readStatus(op *runtime.ClientOperation) { op.Reader = statusReader{next: op.Reader} }

type statusReader struct{ next runtime.ClientResponseReader }

func (r statusReader) ReadResponse(resp runtime.ClientResponse, cons runtime.Consumer) (any, error) {
	code := resp.Code()
	if code >= 200 && code < 300 {
		return r.next.ReadResponse(resp, cons)
	}
	status := resp.Message()
	if status == "" {
		status = strconv.Itoa(code)
	}
	return nil, &statusError{code: code, status: status, msg: apiMessage(resp.Body())}
}

// apiMessage reads the message of an error body: a JSON string (what
// Alertmanager sends), the "message" of a JSON object (go-openapi's
// validation errors) or the start of the text. It drains a bounded rest so
// the connection can be reused.
func apiMessage(body io.Reader) string {
	if body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(body, messageLimit+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	more := len(b) > messageLimit
	if more {
		b = b[:messageLimit]
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		return strings.TrimSpace(s)
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	s = strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD")
	if more {
		s += "…"
	}
	return s
}
