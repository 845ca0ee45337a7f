package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The marker secrets of TestSecretsNeverShown, one per way a secret reaches
// selfheal.
const (
	markerReceiverToken = "MARKER-SECRET-1" // receiver.bearer_token_file
	markerAMPassword    = "MARKER-SECRET-2" // alertmanager.url userinfo (sent as basic auth)
	markerJenkinsToken  = "MARKER-SECRET-3" // jenkins.<name>.api_token (basic auth)
	markerSignature     = "MARKER-SECRET-4" // webhook header X-Signature
	markerQueryToken    = "MARKER-SECRET-5" // webhook url ?token=
	markerEnvPassword   = "MARKER-SECRET-6" // exec env FOO_PASSWORD
	markerBearer        = "MARKER-SECRET-7" // webhook bearer_token_file
	markerURLPassword   = "MARKER-SECRET-8" // webhook url userinfo (sent as basic auth)
	markerXAuth         = "MARKER-SECRET-9" // webhook header X-Auth
)

// forbidden are the strings no output may hold: every marker, and the
// basic-auth credentials built from the user:password pairs.
func forbidden() []string {
	out := []string{markerReceiverToken, markerAMPassword, markerJenkinsToken, markerSignature,
		markerQueryToken, markerEnvPassword, markerBearer, markerURLPassword, markerXAuth, "MARKER-SECRET"}
	for _, pair := range []string{"selfheal:" + markerAMPassword, "jenkins-user:" + markerJenkinsToken, "hookuser:" + markerURLPassword} {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(pair)))
	}
	return out
}

// requireNoSecret fails naming every forbidden string out holds, with the
// line it is on.
func requireNoSecret(t *testing.T, what, out string) {
	t.Helper()
	require.NotEmpty(t, out, "%s is empty: nothing was checked", what)
	var leaks []string
	for _, s := range forbidden() {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, s) {
				leaks = append(leaks, fmt.Sprintf("%s in: %.400s", s, line))
			}
		}
	}
	require.Empty(t, leaks, "%s shows secrets", what)
}

// echoServer is a fake that answers every request with answer, after
// reading its credentials the way a careless server echoes them back.
func echoServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, echo string)) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		echo := strings.Join([]string{
			r.Header.Get("Authorization"), strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "),
			r.Header.Get("X-Signature"), r.Header.Get("X-Auth"), r.URL.Query().Get("token"), user + ":" + pass,
		}, " ")
		_, _ = io.Copy(io.Discard, r.Body)
		answer(w, r, echo)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// locationEcho answers 302 with a Location carrying every credential of
// the request in its path.
func locationEcho(w http.ResponseWriter, _ *http.Request, echo string) {
	var segs []string
	for _, f := range strings.Fields(echo) {
		segs = append(segs, url.PathEscape(f))
	}
	w.Header().Set("Location", "http://elsewhere.example/next/"+strings.Join(segs, "/"))
	w.WriteHeader(http.StatusFound)
}

// TestSecretsNeverShown configures a secret in every place one can be set,
// has fake servers echo them back (a 3xx Location, error bodies), runs
// playbooks using all of them, and greps every output for them: the
// daemon's log, its API and status, the raw bytes of its store, and
// the output of dry-run and check.
func TestSecretsNeverShown(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	redirect := echoServer(t, locationEcho)
	echo500 := echoServer(t, func(w http.ResponseWriter, _ *http.Request, echo string) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "upstream rejected %s", echo)
	})
	am := echoServer(t, func(w http.ResponseWriter, _ *http.Request, echo string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode("bad credentials: " + echo)
	})
	jenkins := echoServer(t, locationEcho)
	hostOf := func(u string) string { return strings.TrimPrefix(u, "http://") }

	writeFile(t, filepath.Join(dir, "token"), markerReceiverToken+"\n")
	writeFile(t, filepath.Join(dir, "bearer"), markerBearer+"\n")
	config := fmt.Sprintf(`receiver:
  bearer_token_file: token
playbooks:
  files: [playbooks/*.yaml]
  watch_files: false
alertmanager:
  url: http://selfheal:%s@%s
jenkins:
  default:
    url: %s
    user: jenkins-user
    api_token: %s
engine:
  shutdown_grace: 1s
`, markerAMPassword, hostOf(am), jenkins, markerJenkinsToken)
	writeFile(t, filepath.Join(dir, "selfheal.yml"), config)
	step := func(name, action, with string, retries ...int) string {
		s := fmt.Sprintf(`  - name: %s
    match: ['jenkins_job="clean_data_worker"']
    steps:
      - name: %s
        action: %s
        with: %s
`, name, name, action, with)
		for _, r := range retries {
			s += fmt.Sprintf("        retries: %d\n", r)
		}
		return s
	}
	hook := fmt.Sprintf(`{url: '%s/hook?token=%s', headers: {X-Signature: %s, X-Auth: %s}, bearer_token_file: %s}`,
		redirect, markerQueryToken, markerSignature, markerXAuth, filepath.Join(dir, "bearer"))
	exe := fmt.Sprintf(`{command: [/bin/sh, -c, 'echo "cannot log in with $FOO_PASSWORD" >&2; exit 3'], env: {FOO_PASSWORD: %s}}`, markerEnvPassword)
	playbooks := "playbooks:\n" +
		step("redirect", "webhook", hook) +
		step("echo-500", "webhook", fmt.Sprintf(`{url: 'http://hookuser:%s@%s/hook?token=%s', headers: {X-Signature: %s}}`,
			markerURLPassword, hostOf(echo500), markerQueryToken, markerSignature), 1) +
		step("silence", "alertmanager.silence", "{duration: 10m}") +
		step("jenkins", "jenkins.build", "{job: clean_data_worker}") +
		step("exec", "exec", exe) +
		step("dry", "webhook", hook) + "    dry_run: true\n" +
		step("dry-exec", "exec", exe) + "    dry_run: true\n"
	writeFile(t, filepath.Join(dir, "playbooks", "secrets.yaml"), playbooks)
	payload := filepath.Join(dir, "alerts.json")
	writeFile(t, payload, string(realPayload(t, "single-firing")))

	t.Run("dry-run", func(t *testing.T) {
		for _, format := range []string{"text", "json"} {
			out, err := exec.Command(selfhealBin, "dry-run", "--config.file="+filepath.Join(dir, "selfheal.yml"),
				"--alerts="+payload, "--output="+format).CombinedOutput()
			require.NoError(t, err, "%s", out)
			requireNoSecret(t, "dry-run --output="+format, string(out))
		}
	})
	t.Run("check", func(t *testing.T) {
		out, err := exec.Command(selfhealBin, "check", "--config.file="+filepath.Join(dir, "selfheal.yml")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		requireNoSecret(t, "check", string(out))
		// A config whose URLs are wrong is reported with the URLs, never
		// with their passwords.
		bad := strings.NewReplacer("url: http://selfheal:", "url: ftp://selfheal:", "url: "+jenkins, "url: ftp://jenkins-user:"+markerJenkinsToken+"@"+hostOf(jenkins)).Replace(config)
		writeFile(t, filepath.Join(dir, "bad", "selfheal.yml"), bad)
		out, err = exec.Command(selfhealBin, "check", "--config.file="+filepath.Join(dir, "bad", "selfheal.yml")).CombinedOutput()
		require.Error(t, err, "%s", out)
		require.Contains(t, string(out), "alertmanager.url")
		require.Contains(t, string(out), "jenkins.default.url")
		requireNoSecret(t, "check of a bad config", string(out))
	})

	storage := filepath.Join(dir, "data")
	d := startSelfheal(t, dir, storage, freePort(t))
	require.Equal(t, 202, d.postAlerts(t, realPayload(t, "single-firing"), markerReceiverToken))
	eventually(t, 60*time.Second, "the seven runs to end", func() bool {
		r := runs(t, d)
		done := 0
		for _, v := range r {
			if v.State == "failed" || v.State == "skipped" || v.State == "shadow" || v.State == "succeeded" {
				done++
			}
		}
		return done == 7
	})
	states := map[string]string{}
	for _, r := range runs(t, d) {
		states[r.Playbook] = r.State
	}
	require.Equal(t, map[string]string{"redirect": "failed", "echo-500": "failed", "silence": "failed",
		"jenkins": "failed", "exec": "failed", "dry": "shadow", "dry-exec": "shadow"}, states,
		"every step reached the fake that echoes the secrets")

	t.Run("api", func(t *testing.T) {
		all := d.get(t, "/api/v1/runs")
		// The records hold what the fakes echoed, secrets masked.
		require.Contains(t, all, "elsewhere.example")
		require.Contains(t, all, "upstream rejected")
		require.Contains(t, all, "bad credentials")
		require.Contains(t, all, "cannot log in with")
		requireNoSecret(t, "GET /api/v1/runs", all)
		for _, r := range runs(t, d) {
			requireNoSecret(t, "GET /api/v1/runs/"+r.ID, d.get(t, "/api/v1/runs/"+r.ID))
		}
		for _, p := range []string{"/api/v1/playbooks", "/api/v1/status"} {
			requireNoSecret(t, "GET "+p, d.get(t, p))
		}
	})
	d.stop(t)
	t.Run("store", func(t *testing.T) {
		db, err := os.ReadFile(filepath.Join(storage, "log.db"))
		require.NoError(t, err)
		require.Contains(t, string(db), "elsewhere.example", "the store holds the failed runs")
		requireNoSecret(t, "log.db", string(db))
	})
	t.Run("log", func(t *testing.T) {
		log, err := os.ReadFile(d.log)
		require.NoError(t, err)
		require.Contains(t, string(log), "retrying step", "the retry of echo-500 is logged")
		requireNoSecret(t, "the daemon's log", string(log))
	})
}
