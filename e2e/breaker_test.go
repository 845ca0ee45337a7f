package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBreakerOpensAndResets: a real selfheal serve with limits.breaker
// {max_failures: 3, window: 10m}; three runs of exec false open it, which a
// second playbook then feels too (skipped breaker_open); the breaker is
// still open after a restart; POST /api/v1/breaker/reset closes it and runs
// resume. Its on_open step pages once, with why it opened.
func TestBreakerOpensAndResets(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.log")
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	paged := filepath.Join(dir, "paged.log")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), "receiver:\n  bearer_token_file: token\nplaybooks:\n  files: [playbooks/*.yaml]\n"+
		"engine:\n  workers: 1\n  shutdown_grace: 1s\nlimits:\n  breaker:\n    max_failures: 3\n    window: 10m\n"+
		fmt.Sprintf("    on_open: [{name: page, action: exec, with: {command: [/bin/sh, -c, 'echo \"$SELFHEAL_ANNOTATION_DESCRIPTION\" >> %s']}}]\n", paged))
	writeFile(t, filepath.Join(dir, "playbooks", "p.yaml"), fmt.Sprintf(`playbooks:
  - name: failing
    match: ['alertname=~"F.*"']
    steps: [{name: s, action: exec, with: {command: [/bin/false]}}]
  - name: healthy
    match: ['alertname=~"H.*"']
    steps: [{name: s, action: exec, with: {command: [/bin/sh, -c, 'echo "$SELFHEAL_LABEL_ALERTNAME" >> %s']}}]
`, ran))
	storage, port := filepath.Join(dir, "data"), freePort(t)
	d := startSelfheal(t, dir, storage, port)
	states := func(playbook string) map[string]int {
		var out struct {
			Runs []struct{ Playbook, State, SkipReason string }
		}
		require.NoError(t, json.Unmarshal([]byte(d.get(t, "/api/v1/runs")), &out))
		m := map[string]int{}
		for _, r := range out.Runs {
			if r.Playbook == playbook {
				m[r.State+" "+r.SkipReason]++
			}
		}
		return m
	}
	for i, name := range []string{"F1", "F2", "F3"} {
		require.Equal(t, 202, d.postAlerts(t, withAlertname(t, name), token))
		eventually(t, 30*time.Second, name+" to fail", func() bool { return states("failing")["failed "] == i+1 })
	}
	eventually(t, 10*time.Second, "the breaker to open", func() bool {
		return metric(t, d.url, "selfheal_engine_breaker_open", nil) == 1
	})
	require.Equal(t, 202, d.postAlerts(t, withAlertname(t, "H1"), token))
	eventually(t, 30*time.Second, "H1 to be skipped", func() bool { return states("healthy")["skipped breaker_open"] == 1 })
	require.Empty(t, lines(t, ran), "the healthy playbook is paused too")
	log, err := os.ReadFile(d.log)
	require.NoError(t, err)
	require.Contains(t, string(log), "CIRCUIT BREAKER OPEN")
	eventually(t, 10*time.Second, "on_open to page", func() bool { return len(lines(t, paged)) == 1 })
	require.Equal(t, []string{"3 runs failed or unhealed in the last 10m (max_failures: 3)"}, lines(t, paged))
	require.Equal(t, map[string]int{"succeeded ": 1}, states("breaker.on_open"), "the page is a run in the API")

	d.stop(t)
	d = startSelfheal(t, dir, storage, port)
	require.Equal(t, 1.0, metric(t, d.url, "selfheal_engine_breaker_open", nil), "still open after a restart")
	code, body := d.request(t, http.MethodPost, "/api/v1/breaker/reset")
	require.Equal(t, 200, code, body)
	var reset struct{ Breaker struct{ Open bool } }
	require.NoError(t, json.Unmarshal([]byte(body), &reset))
	require.False(t, reset.Breaker.Open, body)
	require.Equal(t, 0.0, metric(t, d.url, "selfheal_engine_breaker_open", nil))
	require.Equal(t, 202, d.postAlerts(t, withAlertname(t, "H2"), token))
	eventually(t, 30*time.Second, "H2 to run after the reset", func() bool { return len(lines(t, ran)) == 1 })
	require.Equal(t, []string{"H2"}, lines(t, ran))
	require.Len(t, lines(t, paged), 1, "paged once: not again after the restart or the reset")
}
