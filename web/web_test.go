package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

func TestAPI(t *testing.T) {
	log, err := ha.Open(t.TempDir(), ha.Options{Node: "n1"})
	require.NoError(t, err)
	defer log.Close()
	a := alert.Alert{Status: alert.Firing, Labels: map[string]string{"alertname": "A"}, StartsAt: time.Unix(5, 0).UTC()}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	id := ha.RunID("pb", a.Episode())
	_, _, err = log.Claim(ha.Record{ID: id, Playbook: "pb", Episode: a.Episode(), Alert: a})
	require.NoError(t, err)

	ready := false
	srv := httptest.NewServer(Handler(Options{
		Webhook:   http.NotFoundHandler(),
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
	code, body = get("/api/v1/playbooks")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"playbooks": []}`, body)

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
