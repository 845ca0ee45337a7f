package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// received is one request a fake server got.
type received struct {
	Method string
	URL    string // path and query
	Header http.Header
	Body   string
}

// fake is an httptest server answering with statuses in turn (the last one
// repeats) and body, and recording what it received.
type fake struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	body     string
	got      []received
}

func newFake(t *testing.T, body string, statuses ...int) *fake {
	t.Helper()
	f := &fake{statuses: statuses, body: body}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		status := f.statuses[min(len(f.got), len(f.statuses)-1)]
		f.got = append(f.got, received{Method: r.Method, URL: r.URL.RequestURI(), Header: r.Header, Body: string(b)})
		f.mu.Unlock()
		if status/100 == 3 {
			w.Header().Set("Location", "http://elsewhere.example/")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, f.body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

// newAction builds an action from defaults changed by set, with a fast
// backoff.
func newAction(t *testing.T, set func(p *Params)) *Action {
	t.Helper()
	p := DefaultParams()
	set(p)
	a, err := New(p, nil, nil)
	require.NoError(t, err)
	a.backoff = backoff{initial: time.Millisecond, max: 4 * time.Millisecond}
	return a
}

func TestRunStatuses(t *testing.T) {
	tests := []struct {
		name          string
		statuses      []int
		maxAttempts   int
		wantRequests  int
		wantErr       string // "" means success
		wantRetryable bool
		wantStatus    string
		wantNoBody    bool
	}{
		{name: "200", statuses: []int{200}, wantRequests: 1, wantStatus: "200"},
		{name: "204", statuses: []int{204}, wantRequests: 1, wantStatus: "204", wantNoBody: true},
		{name: "500 then 200", statuses: []int{500, 200}, wantRequests: 2, wantStatus: "200"},
		{name: "429 then 502 then 200", statuses: []int{429, 502, 200}, wantRequests: 3, wantStatus: "200"},
		{
			name: "404 is permanent", statuses: []int{404, 200}, wantRequests: 1, wantStatus: "404",
			wantErr: `status 404 Not Found: "the body"`,
		},
		{
			name: "400 is permanent", statuses: []int{400}, wantRequests: 1, wantStatus: "400",
			wantErr: `status 400 Bad Request: "the body"`,
		},
		{
			name: "redirect is not followed", statuses: []int{302}, wantRequests: 1, wantStatus: "302",
			wantErr: `status 302 Found: redirects are not followed (Location: "http://elsewhere.example/")`,
		},
		{
			name: "every attempt 5xx", statuses: []int{500, 503, 500}, wantRequests: 3, wantStatus: "500",
			wantErr:       `failed after 3 attempts: status 500 Internal Server Error: "the body"`,
			wantRetryable: true,
		},
		{
			name: "one attempt", statuses: []int{503, 200}, maxAttempts: 1, wantRequests: 1, wantStatus: "503",
			wantErr:       `failed after 1 attempt: status 503 Service Unavailable: "the body"`,
			wantRetryable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, "the body", tt.statuses...)
			a := newAction(t, func(p *Params) {
				p.URL = actions.MustTemplate(srv.URL + "/hook")
				if tt.maxAttempts > 0 {
					p.MaxAttempts = tt.maxAttempts
				}
			})
			res, err := a.Run(context.Background(), target())
			require.Len(t, srv.requests(), tt.wantRequests)
			require.Equal(t, tt.wantStatus, res.Details["status"])
			if tt.wantNoBody {
				require.Empty(t, res.Details["body"])
			} else {
				require.Equal(t, "the body", res.Details["body"])
			}
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Contains(t, res.Summary, "POST "+srv.URL+"/hook: ")
				return
			}
			require.EqualError(t, err, "webhook POST "+srv.URL+"/hook: "+tt.wantErr)
			require.Equal(t, tt.wantRetryable, actions.IsRetryable(err))
		})
	}
}

func TestRunBacksOff(t *testing.T) {
	srv := newFake(t, "", 500)
	a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate(srv.URL) })
	a.backoff = backoff{initial: 50 * time.Millisecond, max: time.Second}
	start := time.Now()
	_, err := a.Run(context.Background(), target())
	require.True(t, actions.IsRetryable(err))
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "waits 50ms then 100ms")
}

func TestRunAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	a := newAction(t, func(p *Params) {
		p.URL = actions.MustTemplate(srv.URL)
		p.Timeout = model.Duration(50 * time.Millisecond)
		p.MaxAttempts = 2
	})
	start := time.Now()
	_, err := a.Run(context.Background(), target())
	require.Less(t, time.Since(start), 2*time.Second)
	require.EqualError(t, err, "webhook POST "+srv.URL+": failed after 2 attempts: timed out after 50ms")
	require.True(t, actions.IsRetryable(err))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, calls)
}

func TestRunTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate(url) })
	res, err := a.Run(context.Background(), target())
	require.ErrorContains(t, err, "webhook POST "+url+": failed after 3 attempts: dial tcp ")
	require.ErrorContains(t, err, "connection refused")
	require.True(t, actions.IsRetryable(err))
	require.Equal(t, "3", res.Details["attempts"])
}

func TestRunContextCancelledDuringBackoff(t *testing.T) {
	srv := newFake(t, "", 500)
	a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate(srv.URL) })
	a.backoff = backoff{initial: time.Minute, max: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := a.Run(ctx, target())
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, actions.IsRetryable(err))
	require.Len(t, srv.requests(), 1)
}

func TestRunSendsRenderedRequest(t *testing.T) {
	srv := newFake(t, "ok", 200)
	a := newAction(t, func(p *Params) {
		p.URL = actions.MustTemplate(srv.URL + "/hooks/{{ .Labels.alertname }}?host={{ .Labels.instance }}")
		p.Method = http.MethodPut
		p.Headers = map[string]actions.Template{
			"x-playbook":   actions.MustTemplate("{{ .Playbook }}"),
			"X-Api-Key":    actions.MustTemplate("key-{{ .Run }}"),
			"Content-Type": actions.MustTemplate("text/plain"),
		}
		p.Body = actions.MustTemplate("{{ .Labels.instance }}: {{ .Annotations.summary }}")
	})
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "ok", res.Details["body"])
	got := srv.requests()
	require.Len(t, got, 1)
	require.Equal(t, http.MethodPut, got[0].Method)
	require.Equal(t, "/hooks/DiskFull?host=worker-01", got[0].URL)
	require.Equal(t, "worker-01: disk 95% full", got[0].Body)
	require.Equal(t, "clean-disk", got[0].Header.Get("X-Playbook"))
	require.Equal(t, "key-run-42", got[0].Header.Get("X-Api-Key"))
	require.Equal(t, "text/plain", got[0].Header.Get("Content-Type"))
	require.Empty(t, got[0].Header.Get("Authorization"))
}

func TestRunBodyAndContentType(t *testing.T) {
	tests := []struct {
		name            string
		body            string
		wantContentType string
	}{
		{name: "no body", body: "", wantContentType: ""},
		{name: "body defaults to JSON", body: `{"a": 1}`, wantContentType: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, "", 200)
			a := newAction(t, func(p *Params) {
				p.URL = actions.MustTemplate(srv.URL)
				p.Body = actions.MustTemplate(tt.body)
			})
			_, err := a.Run(context.Background(), target())
			require.NoError(t, err)
			got := srv.requests()
			require.Equal(t, tt.body, got[0].Body)
			require.Equal(t, tt.wantContentType, got[0].Header.Get("Content-Type"))
		})
	}
}

func TestRunRenderErrorSendsNothing(t *testing.T) {
	srv := newFake(t, "", 200)
	a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate(srv.URL + "/{{ .Labels.missing }}") })
	_, err := a.Run(context.Background(), target())
	require.ErrorContains(t, err, `webhook: url: render "`)
	require.ErrorContains(t, err, `map has no entry for key "missing"`)
	require.False(t, actions.IsRetryable(err))
	require.Empty(t, srv.requests())

	a = newAction(t, func(p *Params) { p.URL = actions.MustTemplate("{{ .Labels.instance }}/hook") })
	_, err = a.Run(context.Background(), target())
	require.EqualError(t, err, `webhook: url: "worker-01/hook" is not an absolute http or https URL`)
}

// writeToken writes a token file and returns its path.
func writeToken(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}
