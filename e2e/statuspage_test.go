package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium is Debian's package, which `make deps` installs.
const chromium = "/usr/bin/chromium"

// pageSecret is the value of a secret-named variable of the playbook's
// step, which the command prints: the pages must never show it.
const pageSecret = "e2e-page-secret-7d41"

// TestStatusPageInChromium: a real selfheal serve runs an exec playbook for
// one alert and skips it, by cooldown, for a second one; in a real headless
// Chromium, sending the bearer token, the status page lists both runs with
// their playbook and outcome, the run's link opens its page, and that page
// shows each step with its state, summary and output, never the secret.
// Screenshots of both pages are left in $SELFHEAL_ARTIFACTS (default
// /tmp/selfheal-artifacts).
func TestStatusPageInChromium(t *testing.T) {
	requireE2E(t)
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is not installed; run `make deps` (apt-get install chromium): %v", chromium, err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), "receiver:\n  bearer_token_file: token\nplaybooks:\n  files: [playbooks/*.yaml]\nengine:\n  workers: 1\n  shutdown_grace: 1s\n")
	writeFile(t, filepath.Join(dir, "playbooks", "disk.yaml"), `playbooks:
  - name: clean-disk
    description: Free disk on a worker, at most once an hour per instance.
    match: ['alertname=~"DiskFull.*"']
    limits:
      key: '{{ .Labels.instance }}'
      cooldown: 1h
    steps:
      - name: cleanup
        action: exec
        with:
          command: [/bin/sh, -c, 'echo "cleaned $SELFHEAL_LABEL_INSTANCE with token $API_TOKEN"']
          env: {API_TOKEN: `+pageSecret+`}
      - name: report
        action: exec
        with:
          command: [/bin/echo, 'freed space on {{ .Labels.instance }}']
`)
	d := startSelfheal(t, dir, filepath.Join(dir, "data"), freePort(t))

	require.Equal(t, 202, d.postAlerts(t, withAlertname(t, "DiskFull1"), token))
	eventually(t, 30*time.Second, "the first run to succeed", func() bool { return d.runStates(t)["succeeded "] == 1 })
	require.Equal(t, 202, d.postAlerts(t, withAlertname(t, "DiskFull2"), token)) // the same instance
	eventually(t, 30*time.Second, "the second to be skipped", func() bool { return d.runStates(t)["skipped cooldown"] == 1 })

	ctx := newChromium(t, d.token)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), chromedp.WaitVisible(chromedp.CSS("table.runs"))))
	runs, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("table.runs")))
	require.NoError(t, err)
	t.Logf("runs table:\n%s", runs)
	for _, want := range []string{"clean-disk", "succeeded", "skipped", "cooldown", "DiskFull1", "DiskFull2", "worker-01:9100", "e2e"} {
		require.Contains(t, runs, want)
	}
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	require.Contains(t, page, "Playbooks")
	require.Contains(t, page, "running alone (no gossip)")
	requirePageHidesSecret(t, ctx)
	saveScreenshot(t, ctx, "statuspage.png")

	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("tr.state-succeeded a.playbook")))
	require.NoError(t, err)
	require.Equal(t, int64(200), resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#steps"))))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, d.url+"/runs/clean-disk/")
	steps, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#steps")))
	require.NoError(t, err)
	t.Logf("steps:\n%s", steps)
	for _, want := range []string{
		"cleanup", "report", "succeeded", "attempts 1", "exit 0 after",
		"cleaned worker-01:9100 with token <secret>", // the step's output, its secret masked
		"freed space on worker-01:9100",
		"env.API_TOKEN", `["/bin/echo","freed space on worker-01:9100"]`, // parameters, rendered
	} {
		require.Contains(t, steps, want)
	}
	requirePageHidesSecret(t, ctx)
	saveScreenshot(t, ctx, "statuspage-run.png")
}

// runStates counts the daemon's runs by "state skipReason".
func (d *daemon) runStates(t *testing.T) map[string]int {
	t.Helper()
	var out struct {
		Runs []struct{ State, SkipReason string }
	}
	body := d.get(t, "/api/v1/runs")
	if body == "" {
		return nil
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	m := map[string]int{}
	for _, r := range out.Runs {
		m[r.State+" "+r.SkipReason]++
	}
	return m
}

// newChromium starts Debian's chromium headless, with a fresh profile and
// without the background traffic that hangs it on a closed network, and
// returns a tab that sends the bearer token with every request. The
// browser is stopped when the test ends; its output is logged if it fails.
func newChromium(t *testing.T, bearer string) context.Context {
	t.Helper()
	out := &syncBuffer{}
	parent, cancelTimeout := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // stops the browser process it started, and waits for it
		cancelTimeout()
		if t.Failed() {
			t.Logf("--- chromium output ---\n%s", out.String())
		}
	})
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + bearer},
		})
		return err
	}))
	require.NoError(t, err, "start %s and set the Authorization header", chromium)
	return ctx
}

// syncBuffer is a strings.Builder safe for the browser's output goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requirePageHidesSecret fails if the page's HTML holds pageSecret.
func requirePageHidesSecret(t *testing.T, ctx context.Context) {
	t.Helper()
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	require.NotContains(t, html, pageSecret)
}

// saveScreenshot writes a PNG of the whole page to the artifacts folder:
// $SELFHEAL_ARTIFACTS, or /tmp/selfheal-artifacts.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := os.Getenv("SELFHEAL_ARTIFACTS")
	if dir == "" {
		dir = "/tmp/selfheal-artifacts"
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	require.True(t, len(png) > 8 && string(png[1:4]) == "PNG", "a PNG")
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
