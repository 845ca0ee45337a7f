package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// The status page and the run page: server-rendered from templates
// embedded in the binary, no script. Both refresh themselves every
// refreshSeconds.
var (
	//go:embed templates
	templateFS embed.FS
	pages      = map[string]*template.Template{
		"status": parsePage("templates/status.html"),
		"run":    parsePage("templates/run.html"),
	}
	styleCSS = func() template.CSS {
		b, err := templateFS.ReadFile("templates/style.css")
		if err != nil {
			panic(err)
		}
		return template.CSS(b)
	}()
)

const (
	refreshSeconds = 10
	// pageRuns is how many runs the status page lists without ?limit.
	pageRuns = 50
)

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dur":    duration,
	"runURL": runURL,
	"secs":   func(s float64) string { return duration(time.Duration(s * float64(time.Second))) },
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
}

func parsePage(file string) *template.Template {
	return template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", file))
}

func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// runURL is the run page of id: each segment of the id (playbook,
// fingerprint, start) path-escaped.
func runURL(id string) string {
	segs := strings.Split(id, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/runs/" + strings.Join(segs, "/")
}

// frame is what the layout shows around every page.
type frame struct {
	Title   string
	Node    string
	Version string
	Ready   bool
	Now     time.Time
	Refresh int
	CSS     template.CSS
	Error   string
}

type statusPage struct {
	frame
	Breaker    *ha.BreakerState
	BreakerErr string
	Runs       []ha.Record
	// Next is the link to the page of older runs; "" on the last.
	Next      string
	Filter    filterForm
	Playbooks []playbookView
	Sources   []playbooks.SourceStatus
	Cluster   *clusterView
}

type filterForm struct {
	Playbook, Outcome, Since string
	Playbooks                []string
	States                   []ha.State
	Active                   bool
}

type runPage struct {
	frame
	Run runDetail
}

// clusterView is the part of Options.Cluster's answer the page shows.
type clusterView struct {
	Mode        string `json:"mode"`
	Name        string `json:"name"`
	Settled     bool   `json:"settled"`
	LogRuns     int    `json:"logRuns"`
	LogEpisodes int    `json:"logEpisodes"`
	LogError    string `json:"logError"`
	Members     []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
		State   string `json:"state"`
		Self    bool   `json:"self"`
	} `json:"members"`
}

func (o Options) frame(title string) frame {
	ready := false
	if o.Ready != nil {
		ready = o.Ready()
	}
	return frame{Title: title, Node: o.Node, Version: o.Version, Ready: ready, Now: time.Now(), Refresh: refreshSeconds, CSS: styleCSS}
}

// statusPageHandler serves GET /: recent runs (with the filters of the
// API), the breaker, playbooks and their sources, the cluster.
func (o Options) statusPageHandler(w http.ResponseWriter, r *http.Request) {
	p := statusPage{frame: o.frame("status")}
	v := r.URL.Query()
	p.Filter = filterForm{Playbook: v.Get("playbook"), Outcome: v.Get("outcome"), Since: v.Get("since"), States: ha.States}
	p.Filter.Active = p.Filter.Playbook != "" || p.Filter.Outcome != "" || p.Filter.Since != ""
	if !v.Has("limit") {
		v.Set("limit", strconv.Itoa(pageRuns))
	}
	code := http.StatusOK
	q, err := runsQuery(v, p.Now)
	var page ha.Page
	if err == nil {
		page, err = o.Runs.Query(q)
		if errors.Is(err, ha.ErrBadCursor) {
			err = &paramError{"after", err.Error()}
		}
	}
	if err != nil {
		code = http.StatusInternalServerError
		if pe := (*paramError)(nil); errors.As(err, &pe) {
			code = http.StatusBadRequest
		}
		p.Error = err.Error()
	}
	p.Runs = page.Runs
	if page.Next != "" {
		v.Set("after", page.Next)
		p.Next = "/?" + v.Encode()
	}
	set := o.Playbooks()
	p.Playbooks = describe(set)
	for _, pb := range set.All() {
		p.Filter.Playbooks = append(p.Filter.Playbooks, pb.Name)
	}
	slices.Sort(p.Filter.Playbooks)
	if o.Sources != nil {
		p.Sources = o.Sources()
	}
	if o.Breaker != nil {
		b, err := o.Breaker()
		if err != nil {
			p.BreakerErr = err.Error()
		}
		p.Breaker = &b
	}
	if o.Cluster != nil {
		p.Cluster = asCluster(o.Cluster())
	}
	render(w, code, "status", p)
}

// runPageHandler serves GET /runs/{id}: one run, every step.
func (o Options) runPageHandler(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, ok, err := o.Runs.Get(id)
	p := runPage{frame: o.frame("run " + id)}
	switch {
	case err != nil:
		p.Error = err.Error()
		render(w, http.StatusInternalServerError, "run", p)
	case !ok:
		p.Error = "no such run: " + id
		render(w, http.StatusNotFound, "run", p)
	default:
		p.Title = rec.Playbook + " · " + string(rec.State)
		p.Run = detail(rec, o.Playbooks())
		render(w, http.StatusOK, "run", p)
	}
}

// asCluster reads the cluster status through its JSON form: the page
// shows what the API shows.
func asCluster(st any) *clusterView {
	b, err := json.Marshal(st)
	if err != nil {
		return nil
	}
	var c clusterView
	if json.Unmarshal(b, &c) != nil {
		return nil
	}
	return &c
}

// render executes the page into a buffer first: a template error is a 500,
// not half a page.
func render(w http.ResponseWriter, code int, page string, data any) {
	var b bytes.Buffer
	if err := pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		http.Error(w, "render "+page+" page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}
