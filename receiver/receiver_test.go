package receiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// failingSink fails every Put with err.
type failingSink struct{ err error }

func (f failingSink) Put(context.Context, alert.Batch) (alert.Batch, error) {
	return alert.Batch{}, f.err
}

type server struct {
	rc    *Receiver
	url   string
	inbox *Inbox
	reg   *prometheus.Registry
	ready *atomic.Bool
}

func newServer(t *testing.T, auth Auth, maxBody int64, capacity int) server {
	t.Helper()
	in, err := OpenInbox(t.TempDir(), capacity)
	require.NoError(t, err)
	t.Cleanup(func() { in.Close() })
	reg := prometheus.NewPedanticRegistry()
	ready := &atomic.Bool{}
	ready.Store(true)
	rc := New(in, Options{Auth: auth, MaxBodyBytes: maxBody, MaxAlerts: capacity, Ready: ready.Load, Registerer: reg})
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return server{rc: rc, url: srv.URL, inbox: in, reg: reg, ready: ready}
}

func post(t *testing.T, url string, body []byte, setAuth func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if setAuth != nil {
		setAuth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func TestReceiverStatusCodes(t *testing.T) {
	s := newServer(t, Auth{BearerToken: "s3cret"}, 2048, 100)
	good := payload(t, "single-firing")
	cases := []struct {
		name   string
		body   []byte
		auth   func(*http.Request)
		want   int
		reason string
	}{
		{"no credentials", good, nil, 401, ReasonUnauthorized},
		{"wrong token", good, bearer("nope"), 401, ReasonUnauthorized},
		{"basic instead of bearer", good, func(r *http.Request) { r.SetBasicAuth("u", "s3cret") }, 401, ReasonUnauthorized},
		{"malformed JSON", []byte(`{"version":"4",`), bearer("s3cret"), 400, ReasonInvalid},
		{"version 3", bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), bearer("s3cret"), 400, ReasonInvalid},
		{"missing body", nil, bearer("s3cret"), 400, ReasonInvalid},
		{"over the body limit", append(good, bytes.Repeat([]byte(" "), 2048)...), bearer("s3cret"), 413, ReasonTooLarge},
		{"a second document", append(bytes.Clone(good), good[:200]...), bearer("s3cret"), 400, ReasonInvalid},
		{"NUL in a label", bytes.Replace(good, []byte(`"worker-01:9100","jenkins_job"`), []byte(`"worker-01\u0000","jenkins_job"`), 1), bearer("s3cret"), 400, ReasonInvalid},
		{"non-UTF-8 label", bytes.Replace(good, []byte(`"worker-01:9100","jenkins_job"`), []byte("\"worker-\xff\",\"jenkins_job\""), 1), bearer("s3cret"), 400, ReasonInvalid},
		{"startsAt beyond 2262", bytes.Replace(good, []byte(`"2026-11-21T19:08:21.8Z"`), []byte(`"2263-01-01T00:00:00Z"`), 1), bearer("s3cret"), 400, ReasonInvalid},
		{"endsAt beyond 9999 in UTC", bytes.Replace(good, []byte(`"0001-01-01T00:00:00Z"`), []byte(`"9999-12-31T23:59:59-01:00"`), 1), bearer("s3cret"), 400, ReasonInvalid},
		{"valid", good, bearer("s3cret"), 202, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before float64
			if c.reason != "" {
				before = testutil.ToFloat64(s.rc.rejected.WithLabelValues(c.reason))
			}
			require.Equal(t, c.want, post(t, s.url+"/", c.body, c.auth))
			if c.reason != "" {
				require.Equal(t, before+1, testutil.ToFloat64(s.rc.rejected.WithLabelValues(c.reason)))
			}
		})
	}
	// After all the bad input the receiver still serves, and stored exactly the one good payload.
	require.Equal(t, 202, post(t, s.url+"/", good, bearer("s3cret")))
	require.Equal(t, 2, s.inbox.Depth())
}

func TestReceiverBasicAuth(t *testing.T) {
	s := newServer(t, Auth{Username: "amlab", Password: "amlab-secret"}, 0, 100)
	good := payload(t, "single-firing")
	require.Equal(t, 401, post(t, s.url, good, func(r *http.Request) { r.SetBasicAuth("amlab", "wrong") }))
	require.Equal(t, 202, post(t, s.url, good, func(r *http.Request) { r.SetBasicAuth("amlab", "amlab-secret") }))
}

func TestReceiverNotReadyAndFull(t *testing.T) {
	s := newServer(t, Auth{Insecure: true}, 0, 6)
	multi := payload(t, "multi-firing") // 5 alerts
	s.ready.Store(false)
	require.Equal(t, 503, post(t, s.url, multi, nil))
	s.ready.Store(true)
	require.Equal(t, 202, post(t, s.url, multi, nil))
	require.Equal(t, 503, post(t, s.url, multi, nil), "5 more alerts do not fit in 6")
	require.Equal(t, 202, post(t, s.url, payload(t, "single-firing"), nil), "1 more does")
	require.Equal(t, 6, s.inbox.Depth())
}

func TestReceiverRefusesMoreAlertsThanTheInboxHolds(t *testing.T) {
	s := newServer(t, Auth{Insecure: true}, 0, 4)
	before := testutil.ToFloat64(s.rc.rejected.WithLabelValues(ReasonTooManyAlerts))
	resp, err := http.Post(s.url, "application/json", bytes.NewReader(payload(t, "multi-firing"))) // 5 alerts
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "it can never fit: 503 would be retried forever")
	require.Contains(t, string(body), "5 alerts, over the limit of 4 (receiver.inbox_size)")
	require.Equal(t, before+1, testutil.ToFloat64(s.rc.rejected.WithLabelValues(ReasonTooManyAlerts)))
	require.Equal(t, 0, s.inbox.Depth())
	require.Equal(t, 202, post(t, s.url, payload(t, "multi-after-partial-repeat"), nil), "3 alerts fit")
}

func TestReceiverStorageErrorIs5xx(t *testing.T) {
	srv := httptest.NewServer(New(failingSink{errors.New("disk on fire")}, Options{Auth: Auth{Insecure: true}}))
	defer srv.Close()
	require.Equal(t, 503, post(t, srv.URL, payload(t, "single-firing"), nil))
}

func TestReceiverCountsTruncatedAlerts(t *testing.T) {
	s := newServer(t, Auth{Insecure: true}, 0, 100)
	require.Equal(t, 202, post(t, s.url, payload(t, "truncated"), nil))
	require.Equal(t, 3.0, testutil.ToFloat64(s.rc.truncated))
	require.NoError(t, testutil.GatherAndCompare(s.reg, strings.NewReader(`
# HELP selfheal_receiver_alerts_accepted_total Alerts stored in the inbox.
# TYPE selfheal_receiver_alerts_accepted_total counter
selfheal_receiver_alerts_accepted_total 2
`), "selfheal_receiver_alerts_accepted_total"))
}

func TestReceiverRejectsGet(t *testing.T) {
	s := newServer(t, Auth{Insecure: true}, 0, 100)
	resp, err := http.Get(s.url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.True(t, strings.Contains(resp.Header.Get("Allow"), "POST"))
}
