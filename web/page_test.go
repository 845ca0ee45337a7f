package web

import (
	"errors"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

// TestStatusPage: the page at / lists the runs (playbook, alert, outcome,
// reason, node, duration) with links to their pages, the breaker, the
// playbooks and their sources' errors, and the cluster's members; it
// refreshes itself and escapes what alerts and sources put in it.
func TestStatusPage(t *testing.T) {
	f := newFixture(t)
	f.opts.Breaker = func() (ha.BreakerState, error) {
		return ha.BreakerState{Open: true, OpenedAt: f.now, Reason: "3 runs failed or unhealed in the last 10m (max_failures: 3)"}, nil
	}
	f.opts.Sources = func() []playbooks.SourceStatus {
		return []playbooks.SourceStatus{
			{Source: "playbooks/demo.yaml", Revision: "abcdef0123456789", Playbooks: []string{"clean", "restart"}, LastReload: f.now},
			{Source: "configmap/ops/disk/a.yaml", LatestRevision: "fff", LastError: `configmap/ops/disk/a.yaml:4:5: playbooks[0]: unknown field "<b>x</b>"`, LastReload: f.now},
		}
	}
	f.opts.Cluster = func() any {
		return map[string]any{"mode": "cluster", "name": "n1", "settled": true, "logRuns": 3, "logEpisodes": 2,
			"members": []map[string]any{{"name": "n1", "address": "127.0.0.1:9094", "state": "alive", "self": true}, {"name": "n2", "address": "127.0.0.1:9095", "state": "suspect"}}}
	}
	f.opts.Version = "1.2.3"
	f.serve(t)
	xss := `<script>alert("x")</script>`
	ran := f.add(t, "clean", map[string]string{"alertname": "DiskFull", "instance": "w1", "note": xss}, 5*time.Minute, ha.Succeeded)
	skipped := f.add(t, "clean", map[string]string{"alertname": "DiskFull", "instance": "w2"}, time.Minute, ha.Skipped)

	code, body := f.get(t, "/")
	require.Equal(t, 200, code, body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		`href="` + runURL(ran.ID) + `"`, `href="` + runURL(skipped.ID) + `"`,
		`<span class="badge state succeeded">succeeded</span>`,
		`<span class="badge state skipped">skipped</span>`, `<code>cooldown</code>`, "ran for this key 2m ago; cooldown 1h",
		"<b>DiskFull</b> w1", "1.5s", // the alert, the duration
		"<b>OPEN</b>", "3 runs failed or unhealed in the last 10m (max_failures: 3)",
		"playbooks/demo.yaml", "cleanup (exec)", `alertname=&#34;DiskFull&#34;`,
		`unknown field &#34;&lt;b&gt;x&lt;/b&gt;&#34;`, "newest fff not active",
		"127.0.0.1:9095", `<span class="badge bad">suspect</span>`, "(this node)", "3 runs, 2 episodes",
		"version 1.2.3", `<span class="badge ok">ready</span>`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "<b>x</b>", "a source's error is escaped")
	require.Equal(t, 2, strings.Count(body, `<tr class="run `), "two runs")
	require.Less(t, strings.Index(body, runURL(skipped.ID)), strings.Index(body, runURL(ran.ID)), "newest first")

	t.Run("filters", func(t *testing.T) {
		code, body := f.get(t, "/?outcome=skipped")
		require.Equal(t, 200, code)
		require.Equal(t, 1, strings.Count(body, `<tr class="run `))
		require.Contains(t, body, `<option selected>skipped</option>`)
		code, body = f.get(t, "/?limit=1")
		require.Equal(t, 200, code)
		require.Equal(t, 1, strings.Count(body, `<tr class="run `))
		require.Contains(t, body, "older runs →")
		code, body = f.get(t, "/?outcome=nope")
		require.Equal(t, 400, code)
		require.Contains(t, body, html.EscapeString(`outcome: unknown state "nope"`))
	})
	t.Run("run page", func(t *testing.T) {
		code, body := f.get(t, runURL(ran.ID))
		require.Equal(t, 200, code, body)
		require.Contains(t, body, html.EscapeString(xss), "a label is escaped")
		require.NotContains(t, body, xss)
		code, body = f.get(t, runURL(skipped.ID))
		require.Equal(t, 200, code)
		require.Contains(t, body, "cooldown")
		require.Contains(t, body, "No step has started.")
	})
	t.Run("unknown paths", func(t *testing.T) {
		code, _ := f.get(t, "/runs/clean/nope")
		require.Equal(t, 404, code)
		code, _ = f.get(t, "/nope")
		require.Equal(t, 404, code, "only / is the status page")
	})
}

// TestRunPageShowsEverySteps: each step's state, attempts, summary,
// error, details and parameters; never a secret.
func TestRunPageShowsEverySteps(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	started := f.now.Add(-time.Minute)
	rec := f.add(t, "clean", map[string]string{"alertname": "DiskFull", "instance": "w1"}, 2*time.Minute, ha.Failed,
		ha.StepRecord{Name: "cleanup", Action: "exec", State: ha.Succeeded, Attempts: 1, StartedAt: started, FinishedAt: started.Add(2 * time.Second),
			Summary: "exit 0 after 2s", Details: map[string]string{"output": "cleaned w1\nfreed 3 GiB"}},
		ha.StepRecord{Name: "notify", Action: "webhook", State: ha.Failed, Attempts: 3, StartedAt: started.Add(2 * time.Second), FinishedAt: started.Add(5 * time.Second),
			Error: "POST https://chat.example/hook?token=<secret>&room=sre: status 503"})
	code, body := f.get(t, runURL(rec.ID))
	require.Equal(t, 200, code, body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"cleanup", "notify", "exit 0 after 2s", "cleaned w1\nfreed 3 GiB", "attempts 3", "took 3s", "took 2s",
		html.EscapeString("POST https://chat.example/hook?token=<secret>&room=sre: status 503"),
		html.EscapeString(`["/bin/echo","cleaning","w1"]`), "env.TARGET", "headers.X-Room",
		html.EscapeString("<secret>"), "parameters from revision",
		`<span class="badge state failed">failed</span>`,
	} {
		require.Contains(t, body, want)
	}
	for _, s := range fixtureSecrets {
		require.NotContains(t, body, s)
	}
}

func TestPagesNeedTheReceiverCredentials(t *testing.T) {
	f := newFixture(t)
	f.opts.Auth = receiver.Auth{Username: "demo", Password: "pw"}
	f.serve(t)
	rec := f.add(t, "clean", map[string]string{"alertname": "DiskFull"}, time.Minute, ha.Succeeded)
	for _, path := range []string{"/", runURL(rec.ID)} {
		resp, err := http.Get(f.srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 401, resp.StatusCode, path)
		require.Equal(t, `Basic realm="selfheal"`, resp.Header.Get("WWW-Authenticate"), "a browser asks for them")
		req, err := http.NewRequest("GET", f.srv.URL+path, nil)
		require.NoError(t, err)
		req.SetBasicAuth("demo", "pw")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	}
}

func TestStatusPageShowsStoreErrors(t *testing.T) {
	f := newFixture(t)
	f.opts.Runs = failingRuns{}
	f.serve(t)
	code, body := f.get(t, "/")
	require.Equal(t, 500, code)
	require.Contains(t, body, "disk on fire")
	require.Contains(t, body, "Playbooks", "the rest of the page still shows")
}

type failingRuns struct{}

func (failingRuns) Query(ha.Query) (ha.Page, error) { return ha.Page{}, errors.New("disk on fire") }
func (failingRuns) Get(string) (ha.Record, bool, error) {
	return ha.Record{}, false, errors.New("disk on fire")
}
