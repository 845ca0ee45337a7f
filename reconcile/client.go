package reconcile

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/client/general"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/selfheal/selfheal/amapi"
	"github.com/selfheal/selfheal/redact"
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
	rt, redactor := amapi.Transport(u, hc)
	return &member{
		url:      shown(raw),
		alerts:   amalert.New(rt, strfmt.Default),
		general:  general.New(rt, strfmt.Default),
		redactor: redactor,
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
		WithActive(all).WithSilenced(all).WithInhibited(all).WithUnprocessed(all), amapi.ReadStatus)
	if err != nil {
		a.err = m.fail(ctx, "GET /api/v2/alerts", err)
		return a
	}
	a.alerts = list.Payload
	st, err := m.general.GetStatus(general.NewGetStatusParamsWithContext(ctx).WithTimeout(timeout), amapi.ReadStatus)
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
