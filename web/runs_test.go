package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/exec"
	"github.com/selfheal/selfheal/actions/webhook"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

// fixturePlaybooks has secrets in its step parameters that must never
// show: an env var and a header whose names look secret, and a token in
// a URL's query.
const fixturePlaybooks = `playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    steps:
      - name: cleanup
        action: exec
        with:
          command: [/bin/echo, cleaning, '{{ .Labels.instance }}']
          env:
            API_TOKEN: 'tok-{{ .Labels.instance }}-envsecret'
            TARGET: '{{ .Labels.instance }}'
      - name: notify
        action: webhook
        with:
          url: 'https://chat.example/hook?token=querysecret&room=sre'
          headers: {X-Api-Key: headersecret, X-Room: sre}
          body: '{"text": "{{ .Labels.alertname }}"}'
  - name: restart
    match: ['alertname="Wedged"']
    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]
`

// fixtureSecrets are the secret values of fixturePlaybooks.
var fixtureSecrets = []string{"envsecret", "headersecret", "querysecret"}

type fixture struct {
	log  *ha.Log
	set  *playbooks.Set
	opts Options
	srv  *httptest.Server
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log, err := ha.Open(t.TempDir(), ha.Options{Node: "n1"})
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	reg := actions.NewRegistry()
	lg := slog.New(slog.DiscardHandler)
	require.NoError(t, reg.Register(exec.Spec(lg)))
	require.NoError(t, reg.Register(webhook.Spec(http.DefaultClient, lg)))
	pbs, err := playbooks.Parse(reg, "playbooks/demo.yaml", []byte(fixturePlaybooks))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	f := &fixture{log: log, set: set, now: time.Now().UTC().Truncate(time.Second)}
	f.opts = Options{
		Webhook:   http.NotFoundHandler(),
		Auth:      receiver.Auth{Insecure: true},
		Runs:      log,
		Playbooks: func() *playbooks.Set { return set },
		Ready:     func() bool { return true },
		Node:      "n1",
		Gatherer:  prometheus.NewPedanticRegistry(),
	}
	return f
}

func (f *fixture) serve(t *testing.T) {
	t.Helper()
	f.srv = httptest.NewServer(Handler(f.opts))
	t.Cleanup(f.srv.Close)
}

// add stores a run of playbook for the alert with labels, claimed ago
// before the fixture's now, ending in st with steps.
func (f *fixture) add(t *testing.T, playbook string, labels map[string]string, ago time.Duration, st ha.State, steps ...ha.StepRecord) ha.Record {
	t.Helper()
	a := alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: f.now.Add(-ago - time.Minute)}
	a.Fingerprint = alert.Fingerprint(labels)
	rec := ha.Record{ID: ha.RunID(playbook, a.Episode()), Playbook: playbook, Episode: a.Episode(), Alert: a, ClaimedAt: f.now.Add(-ago)}
	if pb := f.set.Get(playbook); pb != nil {
		rec.Source, rec.Revision = pb.Source, pb.Revision
	}
	if st == ha.Skipped {
		rec.State, rec.SkipReason, rec.Reason = ha.Skipped, "cooldown", "ran for this key 2m ago; cooldown 1h"
	}
	got, won, err := f.log.Claim(context.Background(), rec)
	require.NoError(t, err)
	require.True(t, won)
	if st != ha.Skipped && st != ha.Claimed {
		got.State, got.Steps, got.StartedAt = st, steps, got.ClaimedAt.Add(time.Second)
		if st.Final() {
			got.FinishedAt = got.StartedAt.Add(1500 * time.Millisecond)
		}
		require.NoError(t, f.log.Update(got))
	}
	return got
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

type listAnswer struct {
	Runs []ha.Record `json:"runs"`
	Next string      `json:"next"`
}

func (f *fixture) list(t *testing.T, query string) listAnswer {
	t.Helper()
	code, body := f.get(t, "/api/v1/runs?"+query)
	require.Equal(t, 200, code, body)
	var out listAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out
}

func runIDs(recs []ha.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func TestRunsFilters(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	disk := func(i string) map[string]string { return map[string]string{"alertname": "DiskFull", "instance": i} }
	ok := f.add(t, "clean", disk("w1"), 3*time.Hour, ha.Succeeded)
	failed := f.add(t, "clean", disk("w2"), 90*time.Minute, ha.Failed)
	skipped := f.add(t, "clean", disk("w3"), 30*time.Minute, ha.Skipped)
	restart := f.add(t, "restart", map[string]string{"alertname": "Wedged"}, 10*time.Minute, ha.Running)

	tests := []struct {
		query string
		want  []ha.Record
	}{
		{"", []ha.Record{restart, skipped, failed, ok}},
		{"playbook=clean", []ha.Record{skipped, failed, ok}},
		{"playbook=nope", nil},
		{"outcome=failed", []ha.Record{failed}},
		{"outcome=failed,skipped", []ha.Record{skipped, failed}},
		{"outcome=succeeded&outcome=running", []ha.Record{restart, ok}},
		{"since=1h", []ha.Record{restart, skipped}},
		{"since=2h&outcome=failed", []ha.Record{failed}},
		{"since=" + url.QueryEscape(f.now.Add(-30*time.Minute).Format(time.RFC3339)), []ha.Record{restart, skipped}},
		{"playbook=clean&outcome=skipped&since=1d", []ha.Record{skipped}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := f.list(t, tt.query)
			require.Equal(t, runIDs(tt.want), runIDs(got.Runs))
			require.Empty(t, got.Next)
		})
	}
}

func TestRunsBadFilterNamesTheParameter(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	f.add(t, "clean", map[string]string{"alertname": "DiskFull"}, time.Minute, ha.Succeeded)
	tests := []struct {
		query, param, says string
	}{
		{"outcome=success", "outcome", `outcome: unknown state "success"; want one of claimed, running, verifying, succeeded, failed, skipped, unhealed, shadow`},
		{"outcome=failed,", "outcome", `unknown state ""`},
		{"since=yesterday", "since", `since: want an RFC 3339 time (2026-11-21T19:08:21Z) or a duration (1h, 30m, 7d), got "yesterday"`},
		{"since=2026-11-21", "since", "since: want an RFC 3339 time"},
		{"limit=0", "limit", `limit: want a positive integer, got "0"`},
		{"limit=ten", "limit", "limit: want a positive integer"},
		{"limit=1001", "limit", "limit: at most 1000, got 1001"},
		{"after=garbage", "after", "after: not a cursor that this API returned"},
		{"state=failed", "state", "state: unknown parameter; known: playbook, outcome, since, limit, after"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, body := f.get(t, "/api/v1/runs?"+tt.query)
			require.Equal(t, 400, code, body)
			var e struct{ Error, Parameter string }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Equal(t, tt.param, e.Parameter)
			require.Contains(t, e.Error, tt.says)
		})
	}
}

// TestRunsPages: following "next" reads every run once, in order; a run
// claimed between two pages does not shift the second page (nothing
// repeated, nothing skipped), and the last page has no "next".
func TestRunsPages(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	var want []ha.Record
	for i := range 7 {
		r := f.add(t, "clean", map[string]string{"alertname": "DiskFull", "instance": string(rune('a' + i))}, time.Duration(10-i)*time.Minute, ha.Succeeded)
		want = append([]ha.Record{r}, want...)
	}
	p1 := f.list(t, "limit=3")
	require.Equal(t, runIDs(want[:3]), runIDs(p1.Runs))
	require.NotEmpty(t, p1.Next)

	f.add(t, "clean", map[string]string{"alertname": "DiskFull", "instance": "new"}, 0, ha.Succeeded) // the newest

	p2 := f.list(t, "limit=3&after="+url.QueryEscape(p1.Next))
	require.Equal(t, runIDs(want[3:6]), runIDs(p2.Runs), "goes on after the first page's last run")
	p3 := f.list(t, "limit=3&after="+url.QueryEscape(p2.Next))
	require.Equal(t, runIDs(want[6:]), runIDs(p3.Runs))
	require.Empty(t, p3.Next, "the last page")

	filtered := f.list(t, "limit=1&outcome=succeeded&playbook=clean")
	require.Len(t, filtered.Runs, 1)
	require.NotEmpty(t, filtered.Next)
}

// TestRunDetail: every step with its state, attempts, summary, error,
// details and duration, and its parameters rendered for the run's alert
// from the loaded playbook, with every secret masked.
func TestRunDetail(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	started := f.now.Add(-time.Minute)
	rec := f.add(t, "clean", map[string]string{"alertname": "DiskFull", "instance": "w1"}, 2*time.Minute, ha.Failed,
		ha.StepRecord{Name: "cleanup", Action: "exec", State: ha.Succeeded, Attempts: 1, StartedAt: started, FinishedAt: started.Add(2 * time.Second),
			Summary: "exit 0 after 2s", Details: map[string]string{"output": "cleaned w1", "pid": "4242"}},
		ha.StepRecord{Name: "notify", Action: "webhook", State: ha.Failed, Attempts: 3, StartedAt: started.Add(2 * time.Second), FinishedAt: started.Add(5 * time.Second),
			Error: "POST https://chat.example/hook?token=<secret>&room=sre: status 503"})

	code, body := f.get(t, "/api/v1/runs/"+rec.ID)
	require.Equal(t, 200, code, body)
	for _, s := range fixtureSecrets {
		require.NotContains(t, body, s)
	}
	var d struct {
		ID, State  string
		Definition struct {
			Loaded  bool
			Changed bool
			Note    string
		}
		Steps []struct {
			Name, Action, State, Summary, Error string
			Attempts                            int
			DurationSeconds                     float64
			Details                             map[string]string
			Params                              []paramView
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &d))
	require.Equal(t, rec.ID, d.ID)
	require.True(t, d.Definition.Loaded)
	require.False(t, d.Definition.Changed)
	require.Len(t, d.Steps, 2)
	require.Equal(t, "exit 0 after 2s", d.Steps[0].Summary)
	require.Equal(t, 2.0, d.Steps[0].DurationSeconds)
	require.Equal(t, "4242", d.Steps[0].Details["pid"])
	require.Equal(t, 3, d.Steps[1].Attempts)
	require.Contains(t, d.Steps[1].Error, "status 503")
	params := func(ps []paramView) map[string]string {
		m := map[string]string{}
		for _, p := range ps {
			m[p.Name] = p.Value
		}
		return m
	}
	require.Equal(t, map[string]string{
		"command":       `["/bin/echo","cleaning","w1"]`,
		"env.API_TOKEN": "<secret>",
		"env.TARGET":    "w1",
		"timeout":       "1m",
	}, params(d.Steps[0].Params))
	require.Equal(t, map[string]string{
		"url":               "https://chat.example/hook?token=<secret>&room=sre",
		"method":            "POST",
		"headers.X-Api-Key": "<secret>",
		"headers.X-Room":    "sre",
		"body":              `{"text": "DiskFull"}`,
		"timeout":           "10s",
	}, params(d.Steps[1].Params))
	require.Equal(t, `["/bin/echo","cleaning","{{ .Labels.instance }}"]`, d.Steps[0].Params[0].Template, "the template's source is shown too")

	t.Run("a playbook no longer loaded", func(t *testing.T) {
		gone := f.add(t, "removed", map[string]string{"alertname": "X"}, time.Minute, ha.Succeeded,
			ha.StepRecord{Name: "s", Action: "exec", State: ha.Succeeded, Attempts: 1})
		code, body := f.get(t, "/api/v1/runs/"+gone.ID)
		require.Equal(t, 200, code)
		require.Contains(t, body, `playbook \"removed\" is not loaded now; the record does not keep step parameters`)
		require.NotContains(t, body, `"params"`)
	})
	t.Run("another revision loaded", func(t *testing.T) {
		old := rec
		old.ID, old.Revision = rec.ID+"/repeat-1", "0123456789ab"
		old.Steps = rec.Steps[:1]
		_, _, err := f.log.Claim(context.Background(), old)
		require.NoError(t, err)
		code, body := f.get(t, "/api/v1/runs/"+old.ID)
		require.Equal(t, 200, code)
		require.Contains(t, body, `"changed": true`)
		require.Contains(t, body, "which is not the one that ran (0123456789ab)")
	})
}

// TestCrossSiteWritesAreRefused: a browser page of another site cannot
// use the credentials a browser keeps (basic auth) to post, reload or
// reset; curl and Alertmanager, which send no Sec-Fetch-Site, are let
// through, and so are cross-site reads.
func TestCrossSiteWritesAreRefused(t *testing.T) {
	f := newFixture(t)
	resets := 0
	f.opts.Breaker = func() (ha.BreakerState, error) { return ha.BreakerState{}, nil }
	f.opts.ResetBreaker = func() error { resets++; return nil }
	f.serve(t)
	do := func(method, path, site string) int {
		req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(""))
		require.NoError(t, err)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 403, do("POST", "/api/v1/breaker/reset", "cross-site"))
	require.Equal(t, 403, do("POST", "/api/v1/alerts", "cross-site"))
	require.Zero(t, resets)
	require.Equal(t, 200, do("POST", "/api/v1/breaker/reset", ""))
	require.Equal(t, 200, do("POST", "/api/v1/breaker/reset", "same-origin"))
	require.Equal(t, 200, do("GET", "/", "cross-site"))
	require.Equal(t, 2, resets)
}
