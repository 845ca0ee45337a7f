// Package web owns selfheal's HTTP surface: the routes, the JSON API over
// the execution log and playbooks, health and readiness, and metrics. The
// webhook handler itself belongs to the receiver package.
package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// Runs is the read side of the execution log (an *ha.Log).
type Runs interface {
	List(limit int) ([]ha.Record, error)
	Get(id string) (ha.Record, bool, error)
}

// Options are the parts the HTTP surface shows.
type Options struct {
	Webhook   http.Handler
	Runs      Runs
	Playbooks func() *playbooks.Set
	Ready     func() bool
	Node      string
	Version   string
	Gatherer  prometheus.Gatherer
}

// Handler returns the router for every path of DESIGN §6 served so far.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/alerts", o.Webhook)
	mux.HandleFunc("GET /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit: want a positive integer"})
				return
			}
			limit = n
		}
		recs, err := o.Runs.List(limit)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if recs == nil {
			recs = []ha.Record{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"runs": recs})
	})
	mux.HandleFunc("GET /api/v1/runs/{id...}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok, err := o.Runs.Get(r.PathValue("id"))
		switch {
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		case !ok:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such run"})
		default:
			writeJSON(w, http.StatusOK, rec)
		}
	})
	mux.HandleFunc("GET /api/v1/playbooks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"playbooks": describe(o.Playbooks())})
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"node": o.Node, "version": o.Version, "ready": o.Ready(),
			"playbooks": o.Playbooks().Len(), "time": time.Now().UTC(),
		})
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
	return mux
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
