package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// realPayload reads a payload captured from a real Alertmanager.
func realPayload(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "receiver", "testdata", "alertmanager", name+".json"))
	require.NoError(t, err)
	return data
}

// withAlertname returns a real payload with the alert renamed, so that one
// capture gives several distinct alerts. The fingerprint is dropped: the
// receiver recomputes it from the new labels.
func withAlertname(t *testing.T, name string) []byte {
	t.Helper()
	s := string(realPayload(t, "single-firing"))
	s = strings.ReplaceAll(s, `"alertname":"CleanDataWorkerStuck"`, fmt.Sprintf(`"alertname":%q`, name))
	s = strings.Replace(s, `,"fingerprint":"ae801e89cbc3f5a2"`, "", 1)
	return []byte(s)
}

func crashConfig(t *testing.T, dir string, workers, queue int, playbooks string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), fmt.Sprintf(
		"receiver:\n  bearer_token_file: token\nplaybooks:\n  files: [playbooks/*.yaml]\nengine:\n  workers: %d\n  queue: %d\n  shutdown_grace: 1s\n",
		workers, queue))
	writeFile(t, filepath.Join(dir, "playbooks", "crash.yaml"), playbooks)
}

type runView struct {
	ID       string `json:"id"`
	Playbook string `json:"playbook"`
	Source   string `json:"source"`
	Revision string `json:"revision"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Node     string `json:"node"`
}

func runs(t *testing.T, d *daemon) []runView {
	t.Helper()
	var out struct{ Runs []runView }
	require.NoError(t, json.Unmarshal([]byte(d.get(t, "/api/v1/runs")), &out))
	return out.Runs
}

func killPID(t *testing.T, pid string) {
	n, err := strconv.Atoi(pid)
	require.NoError(t, err)
	_ = syscall.Kill(n, syscall.SIGKILL)
}

// TestCrashAfterRunDoesNotRunAgain kills the daemon with -9 after a run,
// restarts it on the same storage and re-delivers every payload of the
// episode: nothing runs a second time.
func TestCrashAfterRunDoesNotRunAgain(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.log")
	crashConfig(t, dir, 2, 16, fmt.Sprintf(`playbooks:
  - name: clean-data-worker
    match: ['jenkins_job="clean_data_worker"']
    steps:
      - name: record
        action: exec
        with: {command: [/bin/sh, -c, 'echo "$SELFHEAL_EPISODE" >> %s']}
`, ran))
	storage, port := filepath.Join(dir, "data"), freePort(t)

	d := startSelfheal(t, dir, storage, port)
	require.Equal(t, 202, d.postAlerts(t, realPayload(t, "single-firing"), token))
	eventually(t, 30*time.Second, "the run", func() bool { return len(lines(t, ran)) == 1 })
	eventually(t, 10*time.Second, "the run to be recorded", func() bool {
		r := runs(t, d)
		return len(r) == 1 && r[0].State == "succeeded"
	})
	d.kill9(t)

	d = startSelfheal(t, dir, storage, port)
	for _, p := range []string{"single-firing", "repeat", "single-firing"} {
		require.Equal(t, 202, d.postAlerts(t, realPayload(t, p), token), p)
	}
	eventually(t, 30*time.Second, "the re-deliveries to be processed", func() bool {
		return metric(t, d.url, "selfheal_engine_episodes_total", map[string]string{"kind": "duplicate"}) >= 3 &&
			metric(t, d.url, "selfheal_inbox_depth", nil) == 0
	})
	require.Len(t, lines(t, ran), 1, "no second run after a crash and re-delivery")
	r := runs(t, d)
	require.Len(t, r, 1)
	require.Equal(t, "succeeded", r[0].State)
}

// TestCrashAfter202RunsAfterRestart kills the daemon with -9 right after it
// answered 202 for alerts it had not yet run, at every stage between the
// webhook and a worker: queued for a worker, claimed but not queued, and
// only in the inbox. After the restart each runs exactly once. The run that
// was in progress during the crash is recorded as interrupted, not re-run.
// The restart is under another node name, as a Deployment pod's would be:
// nothing the previous name left open may be stranded.
func TestCrashAfter202RunsAfterRestart(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	ran, started := filepath.Join(dir, "ran.log"), filepath.Join(dir, "started.log")
	// One worker, a queue of one: the slow run holds the worker, B waits in
	// the queue, C is claimed with the dispatcher blocked on the queue, and
	// D stays in the inbox.
	crashConfig(t, dir, 1, 1, fmt.Sprintf(`playbooks:
  - name: slow
    match: ['alertname="Slow"']
    steps:
      - name: hold-the-worker
        action: exec
        with: {command: [/bin/sh, -c, 'echo $$ >> %s; exec sleep 300'], timeout: 10m}
        timeout: 10m
  - name: record
    match: ['alertname=~"B|C|D"']
    steps:
      - name: record
        action: exec
        with: {command: [/bin/sh, -c, 'echo "$SELFHEAL_LABEL_ALERTNAME" >> %s']}
`, started, ran))
	storage, port := filepath.Join(dir, "data"), freePort(t)

	d := startSelfheal(t, dir, storage, port)
	require.Equal(t, 202, d.postAlerts(t, withAlertname(t, "Slow"), token))
	eventually(t, 30*time.Second, "the slow run to start", func() bool { return len(lines(t, started)) == 1 })
	// The step runs in its own process group, and the kernel kills it with
	// the daemon (Pdeathsig); the cleanup is for a kernel that would not.
	slowPID := lines(t, started)[0]
	t.Cleanup(func() { killPID(t, slowPID) })
	for _, name := range []string{"B", "C", "D"} {
		require.Equal(t, 202, d.postAlerts(t, withAlertname(t, name), token), name)
	}
	d.kill9(t)
	require.Empty(t, lines(t, ran), "nothing but the slow run had started before the crash")

	d = startSelfhealAs(t, dir, storage, port, "e2e-pod-renamed")
	eventually(t, 30*time.Second, "B, C and D to run after the restart", func() bool { return len(lines(t, ran)) == 3 })
	require.ElementsMatch(t, []string{"B", "C", "D"}, lines(t, ran))
	require.Len(t, lines(t, started), 1, "the interrupted run is not run again")
	byPlaybook := map[string][]runView{}
	for _, r := range runs(t, d) {
		byPlaybook[r.Playbook] = append(byPlaybook[r.Playbook], r)
	}
	require.Len(t, byPlaybook["slow"], 1)
	require.Equal(t, "failed", byPlaybook["slow"][0].State)
	require.Contains(t, byPlaybook["slow"][0].Reason, "interrupted")
	// The step's record names the process group it had started and says
	// it did not outlive the daemon.
	require.Contains(t, d.get(t, "/api/v1/runs/"+byPlaybook["slow"][0].ID),
		"interrupted: the daemon stopped during this step; process group "+slowPID+" had ended by the restart")
	eventually(t, 10*time.Second, "three succeeded runs", func() bool {
		n := 0
		for _, r := range runs(t, d) {
			if r.Playbook == "record" && r.State == "succeeded" {
				n++
			}
		}
		return n == 3
	})
	// Re-delivering everything changes nothing.
	for _, name := range []string{"Slow", "B", "C", "D"} {
		require.Equal(t, 202, d.postAlerts(t, withAlertname(t, name), token))
	}
	eventually(t, 30*time.Second, "the re-deliveries to be processed", func() bool {
		return metric(t, d.url, "selfheal_inbox_depth", nil) == 0 &&
			metric(t, d.url, "selfheal_engine_episodes_total", map[string]string{"kind": "duplicate"}) >= 4
	})
	require.Len(t, lines(t, ran), 3, "0 doubled")
	require.Len(t, lines(t, started), 1)
	for _, r := range runs(t, d) {
		require.Contains(t, []string{"succeeded", "failed"}, r.State, "0 stranded: %s is %s", r.ID, r.State)
		require.Equal(t, "e2e-pod-renamed", r.Node, "%s was finished by the node that opened the store", r.ID)
	}
}

// TestBadInputGetsDocumentedStatusAndDaemonKeepsServing sends the binary
// every kind of bad request, then a good one.
func TestBadInputGetsDocumentedStatusAndDaemonKeepsServing(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.log")
	crashConfig(t, dir, 1, 4, fmt.Sprintf(`playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps:
      - {name: s, action: exec, with: {command: [/bin/sh, -c, 'echo ran >> %s']}}
`, ran))
	writeFile(t, filepath.Join(dir, "selfheal.yml"), "receiver:\n  bearer_token_file: token\n  max_body_bytes: 2KiB\nplaybooks:\n  files: [playbooks/*.yaml]\n")
	d := startSelfheal(t, dir, filepath.Join(dir, "data"), freePort(t))
	good := realPayload(t, "single-firing")
	cases := []struct {
		name  string
		body  []byte
		token string
		want  int
	}{
		{"malformed JSON", []byte(`{"version":"4","alerts":[`), token, 400},
		{"version 3", []byte(strings.Replace(string(good), `"version":"4"`, `"version":"3"`, 1)), token, 400},
		{"missing body", nil, token, 400},
		{"over the limit", append([]byte(strings.Repeat(" ", 4096)), good...), token, 413},
		{"missing credentials", good, "", 401},
		{"wrong credentials", good, "not-the-token", 401},
	}
	for _, c := range cases {
		require.Equal(t, c.want, d.postAlerts(t, c.body, c.token), c.name)
	}
	require.Equal(t, 202, d.postAlerts(t, good, token), "still serving after bad input")
	eventually(t, 30*time.Second, "the run", func() bool { return len(lines(t, ran)) == 1 })
	require.Equal(t, 6.0, metric(t, d.url, "selfheal_receiver_notifications_rejected_total", nil))
}
