package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/client/general"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/selfheal/selfheal/redact"
)

const (
	// messageLimit is how much of an error response body is kept.
	messageLimit = 1 << 10
	// drainLimit is how much more of a body is read (and dropped) so the
	// connection can be reused.
	drainLimit = 64 << 10
)

// member is one Alertmanager, reached through the generated API v2
// client. Its fields after seen are the state of the reconciler, used by
// one round at a time.
type member struct {
	// url is the base URL without credentials, query or fragment: what
	// logs, errors and the url label of metrics show.
	url      string
	alerts   amalert.ClientService
	general  general.ClientService
	redactor *redact.Redactor

	// started is when this Alertmanager last started (its status'
	// uptime), as of its last answer; zero before the first.
	started time.Time
	// seen holds the episodes it listed since it started, each with when
	// it last did. Alertmanager keeps alerts in memory only: one that
	// restarted lists nothing until the alerts' sources send them again.
	seen map[episodeKey]time.Time
}

// newMember builds the go-openapi transport as amtool does
// (runtime/client.NewWithClient) on raw with hc. A password in raw is sent
// as basic auth, as by alertmanager.silence, and never shown.
func newMember(raw string, hc *http.Client) (*member, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager URL %q: want an http(s) URL like http://alertmanager:9093", shown(raw))
	}
	basePath := strings.TrimSuffix(u.Path, "/") + "/api/v2/"
	rt := httptransport.NewWithClient(u.Host, basePath, []string{u.Scheme}, hc)
	// The runtime dumps requests to stderr when $DEBUG is set; they would
	// show credentials.
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
	return &member{
		url:      shown(raw),
		alerts:   amalert.New(rt, strfmt.Default),
		general:  general.New(rt, strfmt.Default),
		redactor: redact.New(secrets...),
		seen:     map[episodeKey]time.Time{},
	}, nil
}

// shown is raw without userinfo, query and fragment, and without a
// trailing slash; what cannot be parsed is masked by shape.
func shown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redact.New().String(raw)
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return strings.TrimSuffix(u.String(), "/")
}

// answer is what one Alertmanager said in one round.
type answer struct {
	// alerts are the alerts it listed; they are used even when err is
	// set by the status request that follows.
	alerts models.GettableAlerts
	// started is when it started (GET /api/v2/status, uptime).
	started time.Time
	err     error
}

// all is true for every filter of GET /api/v2/alerts: every alert
// Alertmanager holds that has not ended, suppressed or not.
var all = func() *bool { t := true; return &t }()

// fetch lists the alerts of m, then asks when it started. Each request is
// bounded by timeout. The error says which request failed; secrets are
// masked.
func (m *member) fetch(ctx context.Context, timeout time.Duration) answer {
	var a answer
	list, err := m.alerts.GetAlerts(amalert.NewGetAlertsParamsWithContext(ctx).WithTimeout(timeout).
		WithActive(all).WithSilenced(all).WithInhibited(all).WithUnprocessed(all), readStatus)
	if err != nil {
		a.err = m.fail(ctx, "GET /api/v2/alerts", err)
		return a
	}
	a.alerts = list.Payload
	st, err := m.general.GetStatus(general.NewGetStatusParamsWithContext(ctx).WithTimeout(timeout), readStatus)
	switch {
	case err != nil:
		a.err = m.fail(ctx, "GET /api/v2/status", err)
	case st.Payload == nil || st.Payload.Uptime == nil || time.Time(*st.Payload.Uptime).IsZero():
		a.err = fmt.Errorf("alertmanager %s: GET /api/v2/status: the answer has no uptime", m.url)
	default:
		a.started = time.Time(*st.Payload.Uptime).UTC()
	}
	return a
}

// fail wraps err of request with the URL, masking secrets; a done ctx is
// named by its cause.
func (m *member) fail(ctx context.Context, request string, err error) error {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return m.redactor.Error(fmt.Errorf("alertmanager %s: %s: %w", m.url, request, err))
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
