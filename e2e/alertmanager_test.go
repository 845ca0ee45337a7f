package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// exporter serves clean_data_worker_stuck with a value the test switches,
// so alerts fire and resolve without reloading Prometheus (a reload in
// Prometheus 2.42 drops alerts).
type exporter struct {
	stuck atomic.Int64
	srv   *httptest.Server
}

func newExporter(t *testing.T) *exporter {
	e := &exporter{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE clean_data_worker_stuck gauge\nclean_data_worker_stuck{instance=\"worker-01:9100\"} %d\n", e.stuck.Load())
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *exporter) addr() string { return e.srv.Listener.Addr().(*net.TCPAddr).String() }

const token = "e2e-token"

// TestAlertmanagerRepeatsRunOncePerEpisode is the walking skeleton against
// real components: Prometheus fires, Alertmanager repeats every 3s, and the
// exec step runs once per episode however many copies arrive.
func TestAlertmanagerRepeatsRunOncePerEpisode(t *testing.T) {
	requireE2E(t, "prometheus", "prometheus-alertmanager")
	dir := t.TempDir()
	exp := newExporter(t)
	shPort, amPort, promPort := freePort(t), freePort(t), freePort(t)
	firedLog, resolvedLog := filepath.Join(dir, "fired.log"), filepath.Join(dir, "resolved.log")

	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), "receiver:\n  bearer_token_file: token\nplaybooks:\n  files: [playbooks/*.yaml]\n")
	writeFile(t, filepath.Join(dir, "playbooks", "e2e.yaml"), fmt.Sprintf(`playbooks:
  - name: clean-data-worker
    match: ['selfhealing="true"', 'jenkins_job="clean_data_worker"']
    steps:
      - name: record
        action: exec
        with:
          command: [/bin/sh, -c, 'echo "$SELFHEAL_EPISODE $1" >> %s', sh, '{{ .Labels.instance }}']
  - name: note-resolution
    match: ['selfhealing="true"']
    on: resolved
    steps:
      - name: record
        action: exec
        with:
          command: [/bin/sh, -c, 'echo "$SELFHEAL_EPISODE" >> %s']
`, firedLog, resolvedLog))
	writeFile(t, filepath.Join(dir, "alertmanager.yml"), fmt.Sprintf(`route:
  receiver: selfheal
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 3s
receivers:
  - name: selfheal
    webhook_configs:
      - url: http://127.0.0.1:%d/api/v1/alerts
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: %s
`, shPort, token))
	writeFile(t, filepath.Join(dir, "rules.yml"), `groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: CleanDataWorkerStuck
        expr: clean_data_worker_stuck == 1
        labels: {selfhealing: "true", jenkins_job: clean_data_worker, severity: high}
        annotations: {summary: "clean_data_worker is stuck on {{ $labels.instance }}"}
`)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:%d']}]}]
scrape_configs:
  - job_name: clean_data_worker
    honor_labels: true
    static_configs: [{targets: ['%s']}]
`, amPort, exp.addr()))

	sh := startSelfheal(t, dir, filepath.Join(dir, "data"), shPort)
	amURL := fmt.Sprintf("http://127.0.0.1:%d", amPort)
	start(t, dir, "alertmanager", "prometheus-alertmanager",
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+strings.TrimPrefix(amURL, "http://"),
		"--cluster.listen-address=")
	waitHTTP(t, amURL+"/-/ready", 30*time.Second)
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	start(t, dir, "prometheus", "prometheus",
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "prom-data"),
		"--web.listen-address="+strings.TrimPrefix(promURL, "http://"),
		"--rules.alert.resend-delay=1s")
	waitHTTP(t, promURL+"/-/ready", 60*time.Second)
	// Alerts evaluated before Prometheus has discovered its Alertmanager are
	// dropped; flip the metric only once it has.
	eventually(t, 30*time.Second, "Prometheus to discover Alertmanager", func() bool {
		return strings.Contains(getBody(t, promURL+"/api/v1/alertmanagers"), fmt.Sprint(amPort))
	})

	duplicates := func() float64 {
		return metric(t, sh.url, "selfheal_engine_episodes_total", map[string]string{"kind": "duplicate"})
	}

	// Episode 1: fire, and let Alertmanager repeat at least 3 times.
	exp.stuck.Store(1)
	eventually(t, 60*time.Second, "the first run", func() bool { return len(lines(t, firedLog)) >= 1 })
	dupBase := duplicates()
	eventually(t, 60*time.Second, "3 repeats of the first episode", func() bool { return duplicates() >= dupBase+3 })
	first := lines(t, firedLog)
	require.Len(t, first, 1, "the step must run once, and only once, across the repeats")
	require.Contains(t, first[0], "worker-01:9100")

	// Resolve: the firing playbook starts nothing; the resolved one runs once.
	exp.stuck.Store(0)
	eventually(t, 60*time.Second, "the resolution", func() bool { return len(lines(t, resolvedLog)) >= 1 })
	require.Len(t, lines(t, firedLog), 1, "a resolved alert starts nothing for on: firing")

	// Episode 2: re-fire, a new startsAt for the same fingerprint.
	exp.stuck.Store(1)
	eventually(t, 60*time.Second, "the run of the second episode", func() bool { return len(lines(t, firedLog)) >= 2 })
	dupBase = duplicates()
	eventually(t, 60*time.Second, "3 repeats of the second episode", func() bool { return duplicates() >= dupBase+3 })
	fired := lines(t, firedLog)
	require.Len(t, fired, 2, "exactly once more after a re-fire")
	ep1, ep2 := strings.Fields(fired[0])[0], strings.Fields(fired[1])[0]
	require.NotEqual(t, ep1, ep2, "a new episode")
	require.Equal(t, strings.Split(ep1, "@")[0], strings.Split(ep2, "@")[0], "same fingerprint, new startsAt")
	require.Equal(t, strings.Fields(lines(t, resolvedLog)[0])[0], ep1, "the resolution was of the first episode")
	require.Len(t, lines(t, resolvedLog), 1)
	require.Equal(t, 2.0, metric(t, sh.url, "selfheal_engine_runs_total", map[string]string{"playbook": "clean-data-worker", "outcome": "succeeded"}))
	t.Logf("webhooks accepted: %v, duplicates seen: %v",
		metric(t, sh.url, "selfheal_receiver_notifications_accepted_total", nil), duplicates())
}
