package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

func TestAPI(t *testing.T) {
	log, err := ha.Open(t.TempDir(), ha.Options{Node: "n1"})
	require.NoError(t, err)
	defer log.Close()
	a := alert.Alert{Status: alert.Firing, Labels: map[string]string{"alertname": "A"}, StartsAt: time.Unix(5, 0).UTC()}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	id := ha.RunID("pb", a.Episode())
	_, _, err = log.Claim(context.Background(), ha.Record{ID: id, Playbook: "pb", Episode: a.Episode(), Alert: a})
	require.NoError(t, err)

	ready := false
	srv := httptest.NewServer(Handler(Options{
		Webhook:   http.NotFoundHandler(),
		Auth:      receiver.Auth{Insecure: true},
		Runs:      log,
		Playbooks: func() *playbooks.Set { return &playbooks.Set{} },
		Ready:     func() bool { return ready },
		Node:      "n1",
		Gatherer:  prometheus.NewPedanticRegistry(),
	}))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}

	code, body := get("/api/v1/runs")
	require.Equal(t, 200, code)
	var list struct{ Runs []ha.Record }
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Runs, 1)
	require.Equal(t, id, list.Runs[0].ID)

	code, body = get("/api/v1/runs/" + id) // the id holds slashes
	require.Equal(t, 200, code)
	var rec ha.Record
	require.NoError(t, json.Unmarshal([]byte(body), &rec))
	require.Equal(t, ha.Claimed, rec.State)

	code, _ = get("/api/v1/runs/nope")
	require.Equal(t, 404, code)
	code, _ = get("/api/v1/runs?limit=-1")
	require.Equal(t, 400, code)
	code, _ = get("/api/v1/runs?limit=1000")
	require.Equal(t, 200, code)
	code, body = get("/api/v1/runs?limit=1001")
	require.Equal(t, 400, code)
	require.Contains(t, body, "limit: at most 1000")
	code, body = get("/api/v1/playbooks")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"playbooks": [], "sources": []}`, body)

	code, _ = get("/-/ready")
	require.Equal(t, 503, code)
	ready = true
	code, _ = get("/-/ready")
	require.Equal(t, 200, code)
	code, _ = get("/-/healthy")
	require.Equal(t, 200, code)
	code, _ = get("/metrics")
	require.Equal(t, 200, code)
}

func TestReloadAndSources(t *testing.T) {
	var reloadErr error
	reloads := 0
	srv := httptest.NewServer(Handler(Options{
		Webhook:   http.NotFoundHandler(),
		Auth:      receiver.Auth{Insecure: true},
		Playbooks: func() *playbooks.Set { return &playbooks.Set{} },
		Sources: func() []playbooks.SourceStatus {
			return []playbooks.SourceStatus{{Source: "configmap/ops/disk/a.yaml", Revision: "abc", Playbooks: []string{"clean"}, LatestRevision: "def", LastError: "configmap/ops/disk/a.yaml:4:5: playbooks[0]: unknown field \"x\""}}
		},
		Reload: func() error { reloads++; return reloadErr },
		Kubernetes: func() any {
			return map[string]any{"problems": []string{"forbidden: needs verb list on resource configmaps"}}
		},
		Ready:    func() bool { return true },
		Gatherer: prometheus.NewPedanticRegistry(),
	}))
	defer srv.Close()
	do := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}

	code, _ := do("GET", "/-/reload")
	require.Equal(t, 405, code)
	require.Zero(t, reloads, "GET does not reload")
	code, body := do("POST", "/-/reload")
	require.Equal(t, 200, code)
	require.Equal(t, "Reloaded.\n", body)
	reloadErr = errors.New("pb.yaml:3:7: playbooks[0].steps: unknown field \"stpes\"")
	code, body = do("POST", "/-/reload")
	require.Equal(t, 500, code)
	require.Contains(t, body, "pb.yaml:3:7: playbooks[0].steps: unknown field")
	require.Equal(t, 2, reloads)

	code, body = do("GET", "/api/v1/playbooks")
	require.Equal(t, 200, code)
	var pl struct{ Sources []playbooks.SourceStatus }
	require.NoError(t, json.Unmarshal([]byte(body), &pl))
	require.Equal(t, "abc", pl.Sources[0].Revision)
	require.Contains(t, pl.Sources[0].LastError, "4:5")

	code, body = do("GET", "/api/v1/status")
	require.Equal(t, 200, code)
	require.True(t, strings.Contains(body, `"failingSources": [`) && strings.Contains(body, "configmap/ops/disk/a.yaml"), body)
	require.Contains(t, body, "forbidden: needs verb list on resource configmaps")
}

// TestManagementEndpointsNeedTheReceiverCredentials: the read API and
// /-/reload carry annotations and command output, so they ask for the
// receiver's credentials; metrics and health stay open, as in Prometheus,
// and receiver.insecure opens everything.
func TestManagementEndpointsNeedTheReceiverCredentials(t *testing.T) {
	log, err := ha.Open(t.TempDir(), ha.Options{Node: "n1"})
	require.NoError(t, err)
	defer log.Close()
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	var none func(*http.Request)
	protected := []string{"GET /api/v1/runs", "GET /api/v1/runs/pb/x", "GET /api/v1/playbooks", "GET /api/v1/status", "POST /-/reload", "POST /api/v1/breaker/reset"}
	open := []string{"GET /metrics", "GET /-/healthy", "GET /-/ready"}
	cases := []struct {
		name      string
		auth      receiver.Auth
		set       func(*http.Request)
		protected int // the answer of the protected paths
		challenge string
	}{
		{"bearer: none", receiver.Auth{BearerToken: "s3cret"}, none, 401, "Bearer"},
		{"bearer: wrong", receiver.Auth{BearerToken: "s3cret"}, bearer("nope"), 401, "Bearer"},
		{"bearer: right", receiver.Auth{BearerToken: "s3cret"}, bearer("s3cret"), 200, ""},
		{"basic: none", receiver.Auth{Username: "am", Password: "pw"}, none, 401, "Basic"},
		{"basic: wrong", receiver.Auth{Username: "am", Password: "pw"}, basic("am", "nope"), 401, "Basic"},
		{"basic: right", receiver.Auth{Username: "am", Password: "pw"}, basic("am", "pw"), 200, ""},
		{"insecure", receiver.Auth{Insecure: true}, none, 200, ""},
		{"zero value", receiver.Auth{}, none, 401, "Bearer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reloads := 0
			srv := httptest.NewServer(Handler(Options{
				Webhook:      http.NotFoundHandler(),
				Auth:         c.auth,
				Runs:         log,
				Playbooks:    func() *playbooks.Set { return &playbooks.Set{} },
				Reload:       func() error { reloads++; return nil },
				Breaker:      func() (ha.BreakerState, error) { return ha.BreakerState{}, nil },
				ResetBreaker: func() error { reloads++; return nil },
				Ready:        func() bool { return true },
				Gatherer:     prometheus.NewPedanticRegistry(),
			}))
			defer srv.Close()
			do := func(route string, set func(*http.Request)) (int, http.Header) {
				method, path, _ := strings.Cut(route, " ")
				req, err := http.NewRequest(method, srv.URL+path, nil)
				require.NoError(t, err)
				if set != nil {
					set(req)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				return resp.StatusCode, resp.Header
			}
			for _, route := range protected {
				code, h := do(route, c.set)
				want := c.protected
				if want == 200 && route == "GET /api/v1/runs/pb/x" {
					want = 404 // in, and there is no such run
				}
				require.Equal(t, want, code, route)
				if c.challenge != "" {
					require.Contains(t, h.Get("WWW-Authenticate"), c.challenge, route)
				}
			}
			if c.protected == 401 {
				require.Zero(t, reloads, "an unauthenticated POST /-/reload does not reload, nor a reset reset")
			}
			for _, route := range open {
				code, _ := do(route, none)
				require.Equal(t, 200, code, route)
			}
		})
	}
}
