package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostilePayload is a webhook payload (version 4) with one firing alert
// for each label set.
func hostilePayload(t *testing.T, labels ...map[string]string) []byte {
	t.Helper()
	type alertJSON struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    string            `json:"startsAt"`
		EndsAt      string            `json:"endsAt"`
	}
	var alerts []alertJSON
	for _, l := range labels {
		alerts = append(alerts, alertJSON{Status: "firing", Labels: l, Annotations: map[string]string{},
			StartsAt: "2026-11-21T19:08:21.8Z", EndsAt: "0001-01-01T00:00:00Z"})
	}
	b, err := json.Marshal(map[string]any{
		"version": "4", "receiver": "selfheal", "status": "firing", "groupKey": "{}:{}", "truncatedAlerts": 0,
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{}, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager:9093", "alerts": alerts,
	})
	require.NoError(t, err)
	return b
}

// TestHostileLabels runs the three reproductions of labels steering actions
// against the daemon: a webhook whose bearer token would go to a host a
// label names and a label templated into `sh -c` are refused at load with
// their positions (/-/reload, the API, selfheal check); a data_dir a label walks out
// of with ../victim loads but is refused at run time, the reason in the run
// record. Nothing reaches the label's host, no PWNED file appears, the
// victim's WAL stays where it is, and a value quoted with shellquote runs
// as one harmless file name.
func TestHostileLabels(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	work, tsdb := filepath.Join(dir, "work"), filepath.Join(dir, "tsdb")
	victimWAL := filepath.Join(tsdb, "victim", "wal", "00000001")
	writeFile(t, victimWAL, strings.Repeat("w", 4096))
	require.NoError(t, os.MkdirAll(filepath.Join(tsdb, "proms"), 0o755))
	require.NoError(t, os.MkdirAll(work, 0o755))
	writeFile(t, filepath.Join(dir, "hook-token"), "e2e-hook-token\n")

	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { stolen.Add(1) }))
	defer evil.Close()
	evilHost := strings.TrimPrefix(evil.URL, "http://")

	pb := filepath.Join(dir, "playbooks")
	files := map[string]string{
		"webhook.yaml": fmt.Sprintf(`playbooks:
  - name: token-to-label-host
    match: ['alertname="HostileWebhook"']
    steps:
      - name: post
        action: webhook
        with:
          url: 'http://{{ .Labels.instance }}/hook'
          bearer_token_file: %s
`, filepath.Join(dir, "hook-token")),
		"shell.yaml": fmt.Sprintf(`playbooks:
  - name: label-in-shell
    match: ['alertname="HostileExec"']
    steps:
      - name: clean
        action: exec
        with: {command: [/bin/sh, -c, 'touch {{ .Labels.instance }}'], dir: %s}
`, work),
		"wal.yaml": fmt.Sprintf(`playbooks:
  - name: label-in-data-dir
    match: ['alertname="HostileWAL"']
    steps:
      - name: drop-head
        action: prometheus.wal_cleanup
        with:
          data_dir: '%s/proms/{{ .Labels.prom }}'
          quarantine_dir: %s/quarantine
          min_wal_bytes: 1
`, tsdb, tsdb),
		"quoted.yaml": fmt.Sprintf(`playbooks:
  - name: quoted-label-in-shell
    match: ['alertname="HostileExec"']
    steps:
      - name: touch
        action: exec
        with: {command: [/bin/sh, -c, 'touch -- {{ .Labels.instance | shellquote }}'], dir: %s}
`, work),
	}
	// The daemon refuses to start on a playbook it refuses (as Prometheus
	// does on a bad rule file): start it with wal.yaml, then add the others
	// and reload.
	writeFile(t, filepath.Join(pb, "wal.yaml"), files["wal.yaml"])
	writeFile(t, filepath.Join(dir, "selfheal.yml"), "receiver:\n  insecure: true\nplaybooks:\n  files: [playbooks/*.yaml]\n  watch_files: false\n")
	d := startSelfheal(t, dir, filepath.Join(dir, "data"), freePort(t))
	for name, content := range files {
		writeFile(t, filepath.Join(pb, name), content)
	}
	reloadCode, reloadBody := reload(t, d)

	require.Equal(t, 202, d.postAlerts(t, hostilePayload(t,
		map[string]string{"alertname": "HostileWebhook", "instance": evilHost},
		map[string]string{"alertname": "HostileExec", "instance": "x; touch PWNED"},
		map[string]string{"alertname": "HostileWAL", "prom": "../victim"},
	), ""))
	eventually(t, 30*time.Second, "the alerts to be processed and their runs to end", func() bool {
		if metric(t, d.url, "selfheal_engine_episodes_total", map[string]string{"kind": "new"}) < 3 ||
			metric(t, d.url, "selfheal_inbox_depth", nil) != 0 {
			return false
		}
		for _, r := range runs(t, d) {
			if r.State != "succeeded" && r.State != "failed" {
				return false
			}
		}
		return true
	})

	// Defused: nothing reached the label's host, nothing ran the label.
	_, err := os.Stat(filepath.Join(work, "PWNED"))
	require.ErrorIs(t, err, os.ErrNotExist, "a label ran `touch PWNED`")
	require.Zero(t, stolen.Load(), "a request (with the bearer token) went to the host a label named")
	got, err := os.ReadFile(victimWAL)
	require.NoError(t, err, "the victim's WAL was moved")
	require.Len(t, got, 4096)
	_, err = os.Stat(filepath.Join(tsdb, "quarantine"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing was quarantined")
	entries, err := os.ReadDir(work)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "x; touch PWNED", entries[0].Name(), "shellquote kept the label one file name")

	// The run-time refusal is in the run record, with its reason.
	byPlaybook := map[string]runView{}
	for _, r := range runs(t, d) {
		byPlaybook[r.Playbook] = r
	}
	require.Len(t, byPlaybook, 2, "only the two playbooks that loaded ran")
	require.Equal(t, "succeeded", byPlaybook["quoted-label-in-shell"].State)
	wal := byPlaybook["label-in-data-dir"]
	require.Equal(t, "failed", wal.State)
	record := d.get(t, "/api/v1/runs/"+wal.ID)
	require.Contains(t, record, `leaves `+tsdb+`/proms, the folder the playbook names`)

	// The refusals at load name file, line, column and YAML path: in the
	// API, in /-/reload's answer and in selfheal check.
	webhookErr := filepath.Join(pb, "webhook.yaml") + `:8:16: playbooks[0].steps[0].with.url: the request carries a bearer token (bearer_token_file), so the URL's scheme, host and port must be literal`
	shellErr := filepath.Join(pb, "shell.yaml") + `:7:39: playbooks[0].steps[0].with.command[2]: /bin/sh runs this as shell code, so a label could become a command: {{.Labels.instance}} must end in "| shellquote"`
	v := apiPlaybooks(t, d)
	require.Contains(t, v.source(filepath.Join(pb, "webhook.yaml")).LastError, webhookErr)
	require.Contains(t, v.source(filepath.Join(pb, "shell.yaml")).LastError, shellErr)
	require.Equal(t, 500, reloadCode)
	require.Contains(t, reloadBody, webhookErr)
	require.Contains(t, reloadBody, shellErr)

	check := exec.Command(selfhealBin, "check", filepath.Join(pb, "webhook.yaml"), filepath.Join(pb, "shell.yaml"), filepath.Join(pb, "wal.yaml"))
	var stderr bytes.Buffer
	check.Stderr = &stderr
	err = check.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, stderr.String(), "  "+webhookErr)
	require.Contains(t, stderr.String(), "  "+shellErr)
	require.NotContains(t, stderr.String(), "wal.yaml", "a contained templated path loads")
}
