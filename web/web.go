// Package web owns selfheal's HTTP surface: the routes, the JSON API over
// the execution log and playbooks, the status page, health and readiness,
// and metrics. The webhook handler itself belongs to the receiver package.
package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

// Runs is the read side of the execution log (an *ha.Log).
type Runs interface {
	Query(q ha.Query) (ha.Page, error)
	Get(id string) (ha.Record, bool, error)
}

// Options are the parts the HTTP surface shows.
type Options struct {
	Webhook http.Handler
	// Auth guards the read API, the pages and /-/reload, which show
	// annotations and command output and change what runs: the receiver's
	// credentials, so that whoever may post alerts may also read what they
	// did. Metrics and health stay open, as in Prometheus;
	// --web.config.file guards all.
	Auth      receiver.Auth
	Runs      Runs
	Playbooks func() *playbooks.Set
	// Sources lists every playbook source with its active revision and
	// last error.
	Sources func() []playbooks.SourceStatus
	// Reload reloads the playbook files (POST /-/reload).
	Reload func() error
	// Breaker returns the global circuit breaker's state, ResetBreaker
	// closes it (POST /api/v1/breaker/reset); nil when not configured.
	Breaker      func() (ha.BreakerState, error)
	ResetBreaker func() error
	// Kubernetes is the ConfigMap watcher's status; nil when not watching.
	Kubernetes func() any
	// Cluster is the cluster's status: members, settled, log size.
	Cluster  func() any
	Ready    func() bool
	Node     string
	Version  string
	Gatherer prometheus.Gatherer
}

// MaxRunsLimit bounds ?limit of GET /api/v1/runs: a record holds step
// output, so an unbounded list could hold the whole log in memory.
const MaxRunsLimit = 1000

// Handler returns the router for every path of DESIGN §6.
//
// GET /api/v1/runs lists runs newest first, filtered by ?playbook=,
// ?outcome= (states, comma-separated) and ?since= (RFC 3339 or a duration),
// a page of ?limit= at a time; the answer's "next" is the ?after= of the
// next page. GET / and GET /runs/{id} are the status and run pages.
//
// Every route refuses a cross-origin browser request that changes state
// (http.CrossOriginProtection): with basic auth a browser keeps the
// credentials, and a page of another site could otherwise post alerts,
// reload or reset the breaker with them. Alertmanager and curl send no
// Origin or Sec-Fetch-Site header and are not affected.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	protected := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, o.Auth.Protect(h)) }
	mux.Handle("/api/v1/alerts", o.Webhook)
	protected("GET /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		page, err := queryRuns(o.Runs, r)
		if err != nil {
			writeQueryError(w, err)
			return
		}
		if page.Runs == nil {
			page.Runs = []ha.Record{}
		}
		out := map[string]any{"runs": page.Runs}
		if page.Next != "" {
			out["next"] = page.Next
		}
		writeJSON(w, http.StatusOK, out)
	})
	protected("GET /api/v1/runs/{id...}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok, err := o.Runs.Get(r.PathValue("id"))
		switch {
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		case !ok:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such run"})
		default:
			writeJSON(w, http.StatusOK, detail(rec, o.Playbooks()))
		}
	})
	protected("GET /{$}", o.statusPageHandler)
	protected("GET /runs/{id...}", o.runPageHandler)
	protected("GET /api/v1/playbooks", func(w http.ResponseWriter, _ *http.Request) {
		sources := []playbooks.SourceStatus{}
		if o.Sources != nil {
			sources = append(sources, o.Sources()...)
		}
		writeJSON(w, http.StatusOK, map[string]any{"playbooks": describe(o.Playbooks()), "sources": sources})
	})
	protected("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		st := map[string]any{
			"node": o.Node, "version": o.Version, "ready": o.Ready(),
			"playbooks": o.Playbooks().Len(), "time": time.Now().UTC(),
		}
		if o.Sources != nil {
			failing := []string{}
			for _, s := range o.Sources() {
				if s.LastError != "" {
					failing = append(failing, s.Source)
				}
			}
			st["failingSources"] = failing
		}
		if o.Kubernetes != nil {
			st["kubernetes"] = o.Kubernetes()
		}
		if o.Cluster != nil {
			st["cluster"] = o.Cluster()
		}
		if o.Breaker != nil {
			b, err := o.Breaker()
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
				return
			}
			st["breaker"] = b
		}
		writeJSON(w, http.StatusOK, st)
	})
	protected("POST /api/v1/breaker/reset", func(w http.ResponseWriter, _ *http.Request) {
		if o.ResetBreaker == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no circuit breaker is configured (limits.breaker)"})
			return
		}
		if err := o.ResetBreaker(); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		b, err := o.Breaker()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"breaker": b})
	})
	protected("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Only POST or PUT requests allowed.", http.StatusMethodNotAllowed)
			return
		}
		if o.Reload == nil {
			http.Error(w, "Reload is not available.", http.StatusNotImplemented)
			return
		}
		if err := o.Reload(); err != nil {
			http.Error(w, "failed to reload playbook files; the last good version of each stays active:\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("Reloaded.\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !o.Ready() {
			http.Error(w, "Not ready.", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("Ready.\n"))
	})
	return http.NewCrossOriginProtection().Handler(mux)
}

type playbookView struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Match       []string `json:"match"`
	On          string   `json:"on"`
	DryRun      bool     `json:"dryRun,omitempty"`
	Steps       []string `json:"steps"`
	Source      string   `json:"source"`
	Revision    string   `json:"revision"`
}

func describe(s *playbooks.Set) []playbookView {
	out := []playbookView{}
	for _, p := range s.All() {
		v := playbookView{Name: p.Name, Description: p.Description, On: string(p.On), DryRun: p.DryRun, Source: p.Source, Revision: p.Revision}
		for _, m := range p.Matchers {
			v.Match = append(v.Match, m.String())
		}
		for _, st := range p.Steps {
			v.Steps = append(v.Steps, st.Name+" ("+st.ActionID+")")
		}
		out = append(out, v)
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
