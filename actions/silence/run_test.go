package silence

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// received is one request the fake Alertmanager got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// reply is how the fake answers an endpoint.
type reply struct {
	status      int
	contentType string
	body        string
}

// fakeAM is an httptest fake of the Alertmanager API v2 silence endpoints:
// POST /api/v2/silences and DELETE /api/v2/silence/{id} (under prefix). It
// records every request.
type fakeAM struct {
	*httptest.Server
	mu     sync.Mutex
	post   reply
	delete reply
	got    []received
	// hold, when set, makes every handler wait until the request's
	// context ends; arrived gets a value when a request is held.
	hold    bool
	arrived chan struct{}
}

func newFakeAM(t *testing.T, prefix string) *fakeAM {
	t.Helper()
	f := &fakeAM{
		post:    reply{status: 200, contentType: "application/json", body: `{"silenceID":"6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10"}`},
		delete:  reply{status: 200, contentType: "application/json"},
		arrived: make(chan struct{}, 1),
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)})
		hold, rep := f.hold, reply{status: http.StatusNotFound, contentType: "text/plain", body: "404 page not found"}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == prefix+"/api/v2/silences":
			rep = f.post
		case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, prefix+"/api/v2/silence/"):
			rep = f.delete
		}
		f.mu.Unlock()
		if hold {
			f.arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		if rep.contentType != "" {
			w.Header().Set("Content-Type", rep.contentType)
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAM) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

func (f *fakeAM) set(fn func(f *fakeAM)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// now is the fixed clock of the unit tests.
var now = time.Date(2025, 3, 1, 9, 5, 0, 123456789, time.UTC)

// newAction builds an action on url from defaults changed by set.
func newAction(t *testing.T, url string, set func(p *Params)) *Action {
	t.Helper()
	p := DefaultParams()
	if set != nil {
		set(p)
	}
	a, err := New(p, Options{URL: url, Now: func() time.Time { return now }})
	require.NoError(t, err)
	return a
}

func TestRunRequest(t *testing.T) {
	tests := []struct {
		name       string
		prefix     string // the route prefix of the fake
		url        func(srv string) string
		set        func(p *Params)
		wantBody   string
		wantAuth   string
		wantShown  string // the URL as results show it
		wantDetail map[string]string
	}{
		{
			name: "defaults: all labels, 1h",
			url:  func(srv string) string { return srv },
			wantBody: `{
				"matchers": [
					{"name": "alertname", "value": "DiskFull", "isRegex": false, "isEqual": true},
					{"name": "instance", "value": "worker-01", "isRegex": false, "isEqual": true},
					{"name": "severity", "value": "page", "isRegex": false, "isEqual": true}
				],
				"startsAt": "2025-03-01T09:05:00.123Z",
				"endsAt": "2025-03-01T10:05:00.123Z",
				"createdBy": "selfheal",
				"comment": "selfheal: remediation of DiskFull (run-42)"
			}`,
			wantDetail: map[string]string{
				"silence_id": "6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10",
				"ends_at":    "2025-03-01T10:05:00.123Z",
				"matchers":   `alertname="DiskFull", instance="worker-01", severity="page"`,
			},
		},
		{
			name:   "route prefix, basic auth, chosen matchers",
			prefix: "/am",
			url:    func(srv string) string { return strings.Replace(srv, "http://", "http://ops:s3cret@", 1) + "/am/" },
			set: func(p *Params) {
				p.Matchers = []string{"instance"}
				p.Duration = model.Duration(90 * time.Minute)
				p.Comment = actions.MustTemplate("fixing {{ .Labels.instance }}")
				p.CreatedBy = "bot"
			},
			wantBody: `{
				"matchers": [{"name": "instance", "value": "worker-01", "isRegex": false, "isEqual": true}],
				"startsAt": "2025-03-01T09:05:00.123Z",
				"endsAt": "2025-03-01T10:35:00.123Z",
				"createdBy": "bot",
				"comment": "fixing worker-01"
			}`,
			wantAuth: "Basic b3BzOnMzY3JldA==",
			wantDetail: map[string]string{
				"silence_id": "6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10",
				"ends_at":    "2025-03-01T10:35:00.123Z",
				"matchers":   `instance="worker-01"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAM(t, tt.prefix)
			a := newAction(t, tt.url(srv.URL), tt.set)
			res, err := a.Run(context.Background(), target())
			require.NoError(t, err)
			require.Equal(t, tt.wantDetail, res.Details)
			require.NotContains(t, res.Summary, "s3cret")
			require.Contains(t, res.Summary, "silence 6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10 on http://")
			got := srv.requests()
			require.Len(t, got, 1)
			require.Equal(t, http.MethodPost, got[0].Method)
			require.Equal(t, tt.prefix+"/api/v2/silences", got[0].Path)
			require.Equal(t, "application/json", got[0].Header.Get("Content-Type"))
			require.Equal(t, tt.wantAuth, got[0].Header.Get("Authorization"))
			require.JSONEq(t, tt.wantBody, got[0].Body)
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name          string
		rep           reply
		wantErr       string // after "alertmanager.silence: silence … on <url>: "
		wantRetryable bool
	}{
		{
			name:    "400 with alertmanager's message",
			rep:     reply{400, "application/json", `"matcher set 0: at least one matcher must not match the empty string"` + "\n"},
			wantErr: "status 400 Bad Request: matcher set 0: at least one matcher must not match the empty string",
		},
		{
			name:    "404",
			rep:     reply{404, "application/json", `"silence not found"`},
			wantErr: "status 404 Not Found: silence not found",
		},
		{
			name:    "422 from the API's validation",
			rep:     reply{422, "application/json", `{"code":602,"message":"comment in body is required"}`},
			wantErr: "status 422 Unprocessable Entity: comment in body is required",
		},
		{
			name:    "401 from a proxy",
			rep:     reply{401, "text/plain", "Unauthorized"},
			wantErr: "status 401 Unauthorized: Unauthorized",
		},
		{
			name:          "500",
			rep:           reply{500, "application/json", `"boom"`},
			wantErr:       "status 500 Internal Server Error: boom",
			wantRetryable: true,
		},
		{
			name:          "502 from a proxy, odd content type",
			rep:           reply{502, "application/x-weird", "upstream down"},
			wantErr:       "status 502 Bad Gateway: upstream down",
			wantRetryable: true,
		},
		{
			name:          "503 without a body",
			rep:           reply{503, "", ""},
			wantErr:       "status 503 Service Unavailable",
			wantRetryable: true,
		},
		{
			name:          "429",
			rep:           reply{429, "text/plain", "slow down"},
			wantErr:       "status 429 Too Many Requests: slow down",
			wantRetryable: true,
		},
		{
			name:    "200 without an id",
			rep:     reply{200, "application/json", `{}`},
			wantErr: "the response has no silence id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAM(t, "")
			srv.set(func(f *fakeAM) { f.post = tt.rep })
			a := newAction(t, srv.URL, nil)
			res, err := a.Run(context.Background(), target())
			require.Zero(t, res)
			require.EqualError(t, err, `alertmanager.silence: silence alertname="DiskFull", instance="worker-01", severity="page" on `+
				srv.URL+": "+tt.wantErr)
			require.Equal(t, tt.wantRetryable, actions.IsRetryable(err))
			require.Len(t, srv.requests(), 1)
		})
	}
}

func TestRunTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	a := newAction(t, url, nil)
	_, err := a.Run(context.Background(), target())
	require.ErrorContains(t, err, "on "+url+": Post \""+url+"/api/v2/silences\": dial tcp ")
	require.True(t, actions.IsRetryable(err))
}

func TestRunPrepareErrorSendsNothing(t *testing.T) {
	srv := newFakeAM(t, "")
	a := newAction(t, srv.URL, func(p *Params) { p.Matchers = []string{"pod"} })
	_, err := a.Run(context.Background(), target())
	require.EqualError(t, err, `alertmanager.silence: matchers: the alert has no label "pod"`)
	require.False(t, actions.IsRetryable(err))
	require.Empty(t, srv.requests())
}

func TestContextCancel(t *testing.T) {
	tests := []struct {
		name string
		call func(ctx context.Context, a *Action) error
	}{
		{name: "run", call: func(ctx context.Context, a *Action) error {
			_, err := a.Run(ctx, target())
			return err
		}},
		{name: "expire", call: func(ctx context.Context, a *Action) error {
			return a.Expire(ctx, "6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAM(t, "")
			srv.set(func(f *fakeAM) { f.hold = true })
			a := newAction(t, srv.URL, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-srv.arrived
				cancel()
			}()
			start := time.Now()
			err := tt.call(ctx, a)
			require.Less(t, time.Since(start), 5*time.Second)
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, actions.IsRetryable(err), "a cancelled run is over: %v", err)
		})
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		url  string
		set  func(p *Params)
		want actions.Plan
	}{
		{
			name: "defaults",
			url:  "http://am:9093",
			want: actions.Plan{
				Summary: `silence alertname="DiskFull", instance="worker-01", severity="page" on http://am:9093 for 1h`,
				Params: []actions.Param{
					{Name: "matchers", Value: `alertname="DiskFull", instance="worker-01", severity="page"`},
					{Name: "comment", Value: "selfheal: remediation of DiskFull (run-42)"},
					{Name: "created_by", Value: "selfheal"},
					{Name: "duration", Value: "1h"},
					{Name: "expire_on_finish", Value: "false"},
					{Name: "url", Value: "http://am:9093"},
				},
				Details: []string{
					"the silence starts when the step runs and ends 1h later; Alertmanager gossips it to its peers",
					"while it is active, notifications of matching alerts are muted, the resolved one included",
					"not expired when the run finishes: it lasts its whole duration",
					"transport errors, timeouts (30s per request), 408, 429 and 5xx are retryable; other 4xx fail the step",
				},
			},
		},
		{
			name: "chosen matchers, expired on finish, password hidden",
			url:  "https://ops:s3cret@am.example/prefix/",
			set: func(p *Params) {
				p.Matchers = []string{"instance", "alertname"}
				p.Duration = model.Duration(30 * time.Minute)
				p.ExpireOnFinish = true
			},
			want: actions.Plan{
				Summary: `silence alertname="DiskFull", instance="worker-01" on https://ops:xxxxx@am.example/prefix for 30m`,
				Params: []actions.Param{
					{Name: "matchers", Value: `alertname="DiskFull", instance="worker-01"`},
					{Name: "comment", Value: "selfheal: remediation of DiskFull (run-42)"},
					{Name: "created_by", Value: "selfheal"},
					{Name: "duration", Value: "30m"},
					{Name: "expire_on_finish", Value: "true"},
					{Name: "url", Value: "https://ops:xxxxx@am.example/prefix"},
				},
				Details: []string{
					"the silence starts when the step runs and ends 30m later; Alertmanager gossips it to its peers",
					"while it is active, notifications of matching alerts are muted, the resolved one included",
					"expired when the run finishes, whatever its outcome (DELETE /api/v2/silence/{id})",
					"transport errors, timeouts (30s per request), 408, 429 and 5xx are retryable; other 4xx fail the step",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(t, tt.url, tt.set)
			got, err := a.Plan(context.Background(), target())
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPlanSendsNothing(t *testing.T) {
	srv := newFakeAM(t, "")
	a := newAction(t, srv.URL, func(p *Params) { p.ExpireOnFinish = true })
	_, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	require.Empty(t, srv.requests())

	a = newAction(t, srv.URL, func(p *Params) { p.Matchers = []string{"pod"} })
	_, err = a.Plan(context.Background(), target())
	require.EqualError(t, err, `alertmanager.silence: matchers: the alert has no label "pod"`)
	require.Empty(t, srv.requests())
}

func TestFinish(t *testing.T) {
	const id = "6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10"
	withID := actions.Result{Details: map[string]string{"silence_id": id}}
	tests := []struct {
		name          string
		expire        bool
		res           actions.Result
		rep           reply
		wantDelete    bool
		wantErr       string // after "alertmanager.silence: expire silence <id> on <url>: "
		wantNotFound  bool
		wantRetryable bool
	}{
		{name: "expire_on_finish unset", res: withID},
		{name: "no silence id", expire: true, res: actions.Result{}},
		{name: "expired", expire: true, res: withID, rep: reply{200, "application/json", ""}, wantDelete: true},
		{
			name: "already expired on an old alertmanager", expire: true, res: withID, wantDelete: true,
			rep: reply{500, "application/json", `"silence ` + id + ` already expired"`},
		},
		{
			name: "unknown to alertmanager", expire: true, res: withID, wantDelete: true,
			rep:     reply{404, "application/json", ""},
			wantErr: "silence not found: status 404 Not Found", wantNotFound: true,
		},
		{
			name: "unknown to alertmanager 0.25", expire: true, res: withID, wantDelete: true,
			rep:     reply{500, "application/json", `"silence not found"`},
			wantErr: "silence not found: status 500 Internal Server Error: silence not found", wantNotFound: true,
		},
		{
			name: "500", expire: true, res: withID, wantDelete: true,
			rep:     reply{500, "application/json", `"write failed"`},
			wantErr: "status 500 Internal Server Error: write failed", wantRetryable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAM(t, "")
			if tt.rep.status != 0 {
				srv.set(func(f *fakeAM) { f.delete = tt.rep })
			}
			a := newAction(t, srv.URL, func(p *Params) { p.ExpireOnFinish = tt.expire })
			var f actions.Finisher = a
			err := f.Finish(context.Background(), target(), tt.res)
			got := srv.requests()
			if tt.wantDelete {
				require.Len(t, got, 1)
				require.Equal(t, http.MethodDelete, got[0].Method)
				require.Equal(t, "/api/v2/silence/"+id, got[0].Path)
			} else {
				require.Empty(t, got)
			}
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, "alertmanager.silence: expire silence "+id+" on "+srv.URL+": "+tt.wantErr)
			require.Equal(t, tt.wantNotFound, errors.Is(err, ErrNotFound))
			require.Equal(t, tt.wantRetryable, actions.IsRetryable(err))
		})
	}
}

func TestExpireNeedsAnID(t *testing.T) {
	srv := newFakeAM(t, "")
	a := newAction(t, srv.URL, nil)
	require.EqualError(t, a.Expire(context.Background(), ""), "alertmanager.silence: expire: no silence id")
	require.Empty(t, srv.requests())
}
