package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stormPayloads returns n distinct firing alerts of one job, as
// notifications of size alerts each, built from a real capture: each alert
// has its own instance, so its own fingerprint and episode.
func stormPayloads(t *testing.T, n, size int) [][]byte {
	t.Helper()
	var capture map[string]any
	require.NoError(t, json.Unmarshal(realPayload(t, "single-firing"), &capture))
	template := capture["alerts"].([]any)[0].(map[string]any)
	delete(template, "fingerprint") // the receiver computes it from the labels
	var out [][]byte
	for start := 0; start < n; start += size {
		var alerts []any
		for i := start; i < min(start+size, n); i++ {
			a := map[string]any{}
			for k, v := range template {
				a[k] = v
			}
			labels := map[string]any{}
			for k, v := range template["labels"].(map[string]any) {
				labels[k] = v
			}
			labels["instance"] = fmt.Sprintf("worker-%04d:9100", i)
			a["labels"] = labels
			alerts = append(alerts, a)
		}
		capture["alerts"] = alerts
		body, err := json.Marshal(capture)
		require.NoError(t, err)
		out = append(out, body)
	}
	return out
}

// TestStormIsRateLimited posts 1000 distinct episodes sharing one limit key
// (their job) over HTTP to a real selfheal serve, with max_runs: 3 per 1h:
// exactly 3 run, and 997 are recorded skipped with reason rate_limited, in
// the API and the metrics. After a restart, re-posting everything adds
// neither a run nor a record.
func TestStormIsRateLimited(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.log")
	crashConfig(t, dir, 4, 256, fmt.Sprintf(`playbooks:
  - name: clean-data-worker
    match: ['jenkins_job="clean_data_worker"']
    limits: {key: '{{ .Labels.job }}', max_runs: 3, per: 1h}
    steps:
      - name: record
        action: exec
        with: {command: [/bin/sh, -c, 'echo "$SELFHEAL_LABEL_INSTANCE" >> %s']}
`, ran))
	storage, port := filepath.Join(dir, "data"), freePort(t)
	payloads := stormPayloads(t, 1000, 100)

	d := startSelfheal(t, dir, storage, port)
	for _, p := range payloads {
		require.Equal(t, 202, d.postAlerts(t, p, token))
	}
	type storm struct {
		Runs []struct {
			State      string `json:"state"`
			SkipReason string `json:"skipReason"`
			Reason     string `json:"reason"`
			LimitKey   string `json:"limitKey"`
		} `json:"runs"`
	}
	count := func() map[string]int {
		var s storm
		require.NoError(t, json.Unmarshal([]byte(d.get(t, "/api/v1/runs?limit=1000")), &s))
		out := map[string]int{}
		for _, r := range s.Runs {
			require.Equal(t, "clean_data_worker", r.LimitKey)
			out[r.State+" "+r.SkipReason]++
		}
		return out
	}
	eventually(t, 60*time.Second, "1000 decisions", func() bool {
		c := count()
		return c["succeeded "]+c["skipped rate_limited"] == 1000
	})
	require.Equal(t, map[string]int{"succeeded ": 3, "skipped rate_limited": 997}, count())
	require.Len(t, lines(t, ran), 3, "exactly three runs executed")
	require.Equal(t, 997.0, metric(t, d.url, "selfheal_engine_runs_skipped_total",
		map[string]string{"playbook": "clean-data-worker", "reason": "rate_limited"}))
	require.Equal(t, 3.0, metric(t, d.url, "selfheal_engine_runs_total",
		map[string]string{"playbook": "clean-data-worker", "outcome": "succeeded"}))

	d.stop(t)
	d = startSelfheal(t, dir, storage, port)
	for _, p := range payloads {
		require.Equal(t, 202, d.postAlerts(t, p, token))
	}
	eventually(t, 60*time.Second, "the re-posted storm to be processed", func() bool {
		return metric(t, d.url, "selfheal_engine_episodes_total", map[string]string{"kind": "duplicate"}) == 1000
	})
	require.Equal(t, map[string]int{"succeeded ": 3, "skipped rate_limited": 997}, count(), "nothing added after the restart")
	require.Len(t, lines(t, ran), 3)
	require.Zero(t, metric(t, d.url, "selfheal_engine_runs_skipped_total", nil), "re-posted episodes are decided already")
}
