package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// TestReconcileRunsAlertsMissedWhileDown: an alert fires at a real
// Alertmanager while no webhook can reach selfheal (its route has no
// receiver config). selfheal, started afterwards with
// alertmanager.urls, finds it by reconciling (GET /api/v2/alerts) and runs
// its playbook once, however many reconciliations follow. When the alert
// resolves at Alertmanager, the next reconciliation records the episode
// resolved: the on: resolved playbook runs, once.
func TestReconcileRunsAlertsMissedWhileDown(t *testing.T) {
	requireE2E(t, "prometheus-alertmanager")
	dir := t.TempDir()
	shPort, amPort := freePort(t), freePort(t)
	amURL := fmt.Sprintf("http://127.0.0.1:%d", amPort)
	firedLog, resolvedLog := filepath.Join(dir, "fired.log"), filepath.Join(dir, "resolved.log")

	writeFile(t, filepath.Join(dir, "alertmanager.yml"), `route:
  receiver: nowhere
  group_wait: 1s
receivers:
  - name: nowhere
`)
	start(t, dir, "alertmanager", "prometheus-alertmanager",
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+strings.TrimPrefix(amURL, "http://"),
		"--cluster.listen-address=")
	waitHTTP(t, amURL+"/-/ready", 30*time.Second)

	// Fired a minute ago, as Prometheus sends it: startsAt in ms, endsAt
	// its expiry.
	startsAt := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	postToAlertmanager(t, amURL, startsAt, time.Now().Add(10*time.Minute))

	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), fmt.Sprintf(`receiver:
  bearer_token_file: token
playbooks:
  files: [playbooks/*.yaml]
alertmanager:
  urls: [%s]
  reconcile_interval: 1s
`, amURL))
	writeFile(t, filepath.Join(dir, "playbooks", "e2e.yaml"), fmt.Sprintf(`playbooks:
  - name: clean-data-worker
    match: ['selfhealing="true"', 'jenkins_job="clean_data_worker"']
    steps:
      - name: record
        action: exec
        with:
          command: [/bin/sh, -c, 'echo "$SELFHEAL_EPISODE" >> %s']
  - name: note-resolution
    match: ['selfhealing="true"']
    on: resolved
    steps:
      - name: record
        action: exec
        with:
          command: [/bin/sh, -c, 'echo "$SELFHEAL_EPISODE" >> %s']
`, firedLog, resolvedLog))
	sh := startSelfheal(t, dir, filepath.Join(dir, "data"), shPort)

	rounds := func() float64 {
		return metric(t, sh.url, "selfheal_reconcile_runs_total", map[string]string{"result": "success"})
	}
	eventually(t, 30*time.Second, "the run of the alert fired while selfheal was down", func() bool { return len(lines(t, firedLog)) >= 1 })
	base := rounds()
	eventually(t, 10*time.Second, "3 more reconciliations", func() bool { return rounds() >= base+3 })
	fired := lines(t, firedLog)
	require.Len(t, fired, 1, "once, however many reconciliations list the alert")
	episode := fired[0]
	require.Equal(t, alert.Fingerprint(cleanDataLabels)+"@"+startsAt.Format(time.RFC3339Nano), episode, "Alertmanager's episode")
	require.Zero(t, metric(t, sh.url, "selfheal_reconcile_runs_total", map[string]string{"result": "error"}))
	require.Equal(t, 1.0, metric(t, sh.url, "selfheal_reconcile_alerts_fetched", nil))

	// Resolved at Alertmanager: it no longer lists the alert.
	postToAlertmanager(t, amURL, startsAt, time.Now().Add(-time.Second))
	eventually(t, 10*time.Second, "the episode to be recorded resolved", func() bool { return len(lines(t, resolvedLog)) >= 1 })
	require.Equal(t, []string{episode}, lines(t, resolvedLog), "the resolve is of that episode")
	base = rounds()
	eventually(t, 10*time.Second, "3 more reconciliations", func() bool { return rounds() >= base+3 })
	require.Equal(t, []string{episode}, lines(t, resolvedLog), "resolved once")
	require.Len(t, lines(t, firedLog), 1, "a resolve starts nothing for on: firing")
	require.Equal(t, 1.0, metric(t, sh.url, "selfheal_reconcile_resolved_total", nil))
	require.Equal(t, 1.0, metric(t, sh.url, "selfheal_engine_episodes_total", map[string]string{"kind": "resolved"}))
	require.Zero(t, metric(t, sh.url, "selfheal_reconcile_alerts_fetched", nil))
}

var cleanDataLabels = map[string]string{"alertname": "CleanDataWorkerStuck", "selfhealing": "true",
	"jenkins_job": "clean_data_worker", "instance": "worker-01:9100"}

// postToAlertmanager POSTs the clean_data_worker alert to Alertmanager's
// API as Prometheus does; endsAt in the past resolves it.
func postToAlertmanager(t *testing.T, amURL string, startsAt, endsAt time.Time) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{
		"labels":       cleanDataLabels,
		"annotations":  map[string]string{"summary": "clean_data_worker is stuck on worker-01:9100"},
		"startsAt":     startsAt.Format(time.RFC3339Nano),
		"endsAt":       endsAt.UTC().Format(time.RFC3339Nano),
		"generatorURL": "http://prometheus:9090/graph",
	}})
	require.NoError(t, err)
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST %s/api/v2/alerts", amURL)
}
