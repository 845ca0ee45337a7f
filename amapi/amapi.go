// Package amapi holds what selfheal's clients of Alertmanager's API v2
// (alertmanager.silence, reconciliation) share: turning a non-2xx answer
// into an error that carries the API's message.
package amapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"

	"github.com/selfheal/selfheal/redact"
)

const (
	// MessageLimit is how much of an error response body is kept.
	MessageLimit = 1 << 10
	// drainLimit is how much more of a body is read (and dropped) so the
	// connection can be reused.
	drainLimit = 64 << 10
)

// StatusError is a non-2xx answer of the API, with its message.
type StatusError struct {
	Code   int
	Status string // "400 Bad Request"
	Msg    string
}

func (e *StatusError) Error() string {
	if e.Msg == "" {
		return "status " + e.Status
	}
	return fmt.Sprintf("status %s: %s", e.Status, e.Msg)
}

// ReadStatus makes an operation turn every non-2xx response into a
// *StatusError carrying the API's message. The generated readers know only
// the documented codes and drop the body of the others (a proxy's 502).
// Pass it as an option to any generated client call.
func ReadStatus(op *runtime.ClientOperation) { op.Reader = statusReader{next: op.Reader} }

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
	return nil, &StatusError{Code: code, Status: status, Msg: Message(resp.Body())}
}

// Message reads the message of an error body: a JSON string (what
// Alertmanager sends), the "message" of a JSON object (go-openapi's
// validation errors) or the start of the text. It drains a bounded rest so
// the connection can be reused.
func Message(body io.Reader) string {
	if body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(body, MessageLimit+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	more := len(b) > MessageLimit
	if more {
		b = b[:MessageLimit]
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

// Transport builds the go-openapi transport for the API v2 at u, as amtool
// does (runtime/client.NewWithClient), on hc (nil: &http.Client{}). A
// password in u is sent as basic auth; the redactor knows it and the basic
// auth built from it, what an error body may echo.
func Transport(u *url.URL, hc *http.Client) (*httptransport.Runtime, *redact.Redactor) {
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
	return rt, redact.New(secrets...)
}
