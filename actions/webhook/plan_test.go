package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
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

const token = "s3cr3t-T0ken"

func TestPlan(t *testing.T) {
	tokenFile := writeToken(t, token+"\n")
	tests := []struct {
		name string
		set  func(p *Params)
		want actions.Plan
	}{
		{
			name: "defaults",
			set:  func(p *Params) { p.URL = actions.MustTemplate("https://chat.example/hook") },
			want: actions.Plan{
				Summary: "POST https://chat.example/hook",
				Params: []actions.Param{
					{Name: "url", Value: "https://chat.example/hook"},
					{Name: "method", Value: "POST"},
					{Name: "body", Value: ""},
					{Name: "timeout", Value: "10s"},
				},
				Details: []string{
					"one request per attempt, timing out after 10s; a transport error, the timeout, 408, 429 and 5xx fail it as retryable: " +
						"the step's retries send it again, with the engine's backoff",
					"2xx succeeds; a 3xx (redirects are not followed) and other 4xx fail the step at once, whatever its retries",
				},
			},
		},
		{
			name: "token, secret headers, body, short timeout",
			set: func(p *Params) {
				p.URL = actions.MustTemplate("https://user:pw@chat.example/{{ .Labels.instance }}")
				p.Method = http.MethodPatch
				p.Headers = map[string]actions.Template{
					"X-Api-Key":    actions.MustTemplate("key-{{ .Run }}"),
					"x-playbook":   actions.MustTemplate("{{ .Playbook }}"),
					"Cookie":       actions.MustTemplate("session=1"),
					"X-Auth-Token": actions.MustTemplate("t"),
				}
				p.Body = actions.MustTemplate(`{"text": "{{ .Annotations.summary }}"}`)
				p.Timeout = model.Duration(2 * time.Second)
				p.BearerTokenFile = tokenFile
			},
			want: actions.Plan{
				Summary: "PATCH https://user:<secret>@chat.example/worker-01",
				Params: []actions.Param{
					{Name: "url", Value: "https://user:<secret>@chat.example/worker-01"},
					{Name: "method", Value: "PATCH"},
					{Name: "headers.Authorization", Value: "Bearer <secret>"},
					{Name: "headers.Content-Type", Value: "application/json"},
					{Name: "headers.Cookie", Value: "<secret>"},
					{Name: "headers.X-Api-Key", Value: "<secret>"},
					{Name: "headers.X-Auth-Token", Value: "<secret>"},
					{Name: "headers.X-Playbook", Value: "clean-disk"},
					{Name: "body", Value: `{"text": "disk 95% full"}`},
					{Name: "timeout", Value: "2s"},
					{Name: "bearer_token_file", Value: tokenFile},
				},
				Details: []string{
					"one request per attempt, timing out after 2s; a transport error, the timeout, 408, 429 and 5xx fail it as retryable: " +
						"the step's retries send it again, with the engine's backoff",
					"2xx succeeds; a 3xx (redirects are not followed) and other 4xx fail the step at once, whatever its retries",
					"the bearer token is read from " + tokenFile + " when the step runs",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAction(t, tt.set)
			got, err := a.Plan(context.Background(), target())
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.NotContains(t, fmt.Sprintf("%#v", got), token)
		})
	}
}

func TestPlanIsWhatRunSends(t *testing.T) {
	srv := newFake(t, "", 200)
	a := newAction(t, func(p *Params) {
		p.URL = actions.MustTemplate(srv.URL + "/hooks/{{ .Labels.instance }}?run={{ .Run }}")
		p.Method = http.MethodDelete
		p.Headers = map[string]actions.Template{"X-Step": actions.MustTemplate("{{ .Step }}")}
		p.Body = actions.MustTemplate(`{"alert": "{{ .Labels.alertname }}"}`)
	})
	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	require.Empty(t, srv.requests(), "Plan sends nothing")
	_, err = a.Run(context.Background(), target())
	require.NoError(t, err)

	got := srv.requests()
	require.Len(t, got, 1)
	params := map[string]string{}
	for _, p := range plan.Params {
		params[p.Name] = p.Value
	}
	require.Equal(t, got[0].Method+" "+srv.URL+got[0].URL, plan.Summary)
	require.Equal(t, srv.URL+got[0].URL, params["url"])
	require.Equal(t, got[0].Method, params["method"])
	require.Equal(t, got[0].Body, params["body"])
	require.Equal(t, got[0].Header.Get("X-Step"), params["headers.X-Step"])
	require.Equal(t, got[0].Header.Get("Content-Type"), params["headers.Content-Type"])
}

func TestBearerTokenIsSentAndNeverShown(t *testing.T) {
	var (
		mu   sync.Mutex
		auth []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		first := len(auth) == 1
		mu.Unlock()
		// A careless server echoes the request headers back: in an
		// error, then in a success.
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = r.Header.Write(w)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	p := DefaultParams()
	p.URL = actions.MustTemplate(srv.URL)
	p.BearerTokenFile = writeToken(t, "  "+token+"\n")
	p.Headers = map[string]actions.Template{"X-Api-Key": actions.MustTemplate("api-key-value")}
	a, err := New(p, srv.Client(), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)

	failed, err := a.Run(context.Background(), target())
	require.True(t, actions.IsRetryable(err))
	require.Contains(t, err.Error(), "Bearer <secret>")
	sent, serr := a.Run(context.Background(), target())
	require.NoError(t, serr)
	require.Contains(t, sent.Details["body"], "Bearer <secret>")
	require.Contains(t, logs.String(), "webhook sent", "the request is logged")
	mu.Lock()
	require.Equal(t, []string{"Bearer " + token, "Bearer " + token}, auth, "one request per run")
	mu.Unlock()

	plan, perr := a.Plan(context.Background(), target())
	require.NoError(t, perr)
	shown := fmt.Sprintf("%v %#v %#v %#v %s", err, failed, sent, plan, logs.String())
	require.NotContains(t, shown, token)
	require.NotContains(t, shown, "api-key-value")
}

func TestBearerTokenFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content *string
		wantErr string
	}{
		{name: "missing", wantErr: "webhook: bearer_token_file: open %s: no such file or directory"},
		{name: "empty", content: ptr(" \n"), wantErr: "webhook: bearer_token_file: %s is empty"},
		{
			name: "two lines", content: ptr(token + "\n" + token),
			wantErr: "webhook: bearer_token_file: %s: the token contains whitespace or control characters",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeToken(t, "")
			if tt.content == nil {
				path += ".missing"
			} else {
				path = writeToken(t, *tt.content)
			}
			srv := newFake(t, "", 200)
			a := newAction(t, func(p *Params) {
				p.URL = actions.MustTemplate(srv.URL)
				p.BearerTokenFile = path
			})
			want := fmt.Sprintf(tt.wantErr, path)
			_, err := a.Run(context.Background(), target())
			require.EqualError(t, err, want)
			require.False(t, actions.IsRetryable(err))
			_, err = a.Plan(context.Background(), target())
			require.EqualError(t, err, want)
			require.Empty(t, srv.requests())
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	other := newFake(t, "", 200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	a := newAction(t, func(p *Params) {
		p.URL = actions.MustTemplate(srv.URL)
		p.BearerTokenFile = writeToken(t, token)
	})
	_, err := a.Run(context.Background(), target())
	require.EqualError(t, err, fmt.Sprintf(
		"webhook POST %s: status 307 Temporary Redirect: redirects are not followed (Location: %q)", srv.URL, other.URL+"/steal"))
	require.False(t, actions.IsRetryable(err))
	require.Empty(t, other.requests())
	require.False(t, strings.Contains(err.Error(), token))
}

func ptr[T any](v T) *T { return &v }
