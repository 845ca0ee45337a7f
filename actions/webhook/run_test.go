package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
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

// newAction builds an action from defaults changed by set.
func newAction(t *testing.T, set func(p *Params)) *Action {
	t.Helper()
	p := DefaultParams()
	set(p)
	a, err := New(p, nil, nil)
	require.NoError(t, err)
	return a
}

// TestRunStatuses: every run sends one request, whatever the answer; the
// answers another attempt could change are retryable, for the step's
// retries to send again.
func TestRunStatuses(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		wantErr       string // "" means success
		wantRetryable bool
		wantNoBody    bool
	}{
		{name: "200", status: 200},
		{name: "204", status: 204, wantNoBody: true},
		{name: "500 is retryable", status: 500, wantErr: `status 500 Internal Server Error: "the body"`, wantRetryable: true},
		{name: "503 is retryable", status: 503, wantErr: `status 503 Service Unavailable: "the body"`, wantRetryable: true},
		{name: "429 is retryable", status: 429, wantErr: `status 429 Too Many Requests: "the body"`, wantRetryable: true},
		{name: "408 is retryable", status: 408, wantErr: `status 408 Request Timeout: "the body"`, wantRetryable: true},
		{name: "404 is permanent", status: 404, wantErr: `status 404 Not Found: "the body"`},
		{name: "400 is permanent", status: 400, wantErr: `status 400 Bad Request: "the body"`},
		{
			name: "redirect is not followed", status: 302,
			wantErr: `status 302 Found: redirects are not followed (Location: "http://elsewhere.example/")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, "the body", tt.status, 200)
			a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate(srv.URL + "/hook") })
			res, err := a.Run(context.Background(), target())
			require.Len(t, srv.requests(), 1, "one request per attempt; the step's retries send it again")
			require.Equal(t, strconv.Itoa(tt.status), res.Details["status"])
			require.NotContains(t, res.Details, "attempts", "the engine counts the attempts")
			if tt.wantNoBody {
				require.Empty(t, res.Details["body"])
			} else {
				require.Equal(t, "the body", res.Details["body"])
			}
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, fmt.Sprintf("POST %s/hook: %d %s", srv.URL, tt.status, http.StatusText(tt.status)), res.Summary)
				return
			}
			require.EqualError(t, err, "webhook POST "+srv.URL+"/hook: "+tt.wantErr)
			require.Equal(t, tt.wantRetryable, actions.IsRetryable(err))
		})
	}
}

// blockingTransport answers no request: each waits for its context. Inside
// a synctest bubble the wait is durable, so fake time runs on to the
// request's deadline.
type blockingTransport struct {
	mu    sync.Mutex
	calls int
}

func (b *blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func (b *blockingTransport) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func TestRunAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &blockingTransport{}
		p := DefaultParams()
		p.URL = actions.MustTemplate("http://hook.example/x")
		p.Timeout = model.Duration(50 * time.Millisecond)
		a, err := New(p, &http.Client{Transport: tr}, nil)
		require.NoError(t, err)
		start := time.Now()
		_, err = a.Run(context.Background(), target())
		require.Equal(t, 50*time.Millisecond, time.Since(start))
		require.EqualError(t, err, "webhook POST http://hook.example/x: timed out after 50ms")
		require.True(t, actions.IsRetryable(err))
		require.Equal(t, 1, tr.count())
	})
}

func TestRunContextCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &blockingTransport{}
		p := DefaultParams()
		p.URL = actions.MustTemplate("http://hook.example/x")
		a, err := New(p, &http.Client{Transport: tr}, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(errors.New("shutting down")) })
		_, err = a.Run(ctx, target())
		require.EqualError(t, err, "webhook POST http://hook.example/x: shutting down")
		require.False(t, actions.IsRetryable(err), "a cancelled run is not tried again")
		require.Equal(t, 1, tr.count())
	})
}

func TestRunTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	a := newAction(t, func(p *Params) { p.URL = actions.MustTemplate(url) })
	_, err := a.Run(context.Background(), target())
	require.ErrorContains(t, err, "webhook POST "+url+": dial tcp ")
	require.ErrorContains(t, err, "connection refused")
	require.True(t, actions.IsRetryable(err))
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
