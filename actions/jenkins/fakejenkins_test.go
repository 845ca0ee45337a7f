package jenkins

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The fake's credentials and crumb.
const (
	fakeUser   = "bot"
	fakeToken  = "tok-3f9c1a7e5b2d88"
	fakeCrumb  = "crumb-0af1"
	fakeCookie = "JSESSIONID.fake=node0abc"
	// fakeWhy is what a waiting queue item says.
	fakeWhy = "In the quiet period. Expires in 4.9 sec"
)

// fake is a Jenkins speaking the REST API as research/actions.md §1.8
// describes it: one plain handler parsing its own paths (http.ServeMux
// would clean "//" with a redirect and hide what clients really send). It
// records every request. Configure it with the func given to newFake, or
// with set once it serves.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu sync.Mutex
	// rootStatus answers GET /api/json (gojenkins' Init); 0 is 200.
	rootStatus int
	// crumb serves a crumb at gojenkins' doubled crumb path and refuses
	// a POST without it and its session cookie (403), as Jenkins does.
	crumb bool
	// crumbHangup drops the connection of a crumb request: Jenkins going
	// down at that moment.
	crumbHangup bool
	// postStatus, when set, answers every trigger.
	postStatus int
	// locationBase replaces the server's own URL in a trigger's Location
	// ("-" sends no Location; "/" a relative one).
	locationBase string
	// queuePolls is how many polls an item stays waiting; buildPolls how
	// many a build stays building.
	queuePolls, buildPolls int
	// failQueuePolls answers that many queue polls with 503 first.
	failQueuePolls int
	// expire answers 404 for an item once it left the queue, as Jenkins
	// does five minutes later.
	expire bool
	// cancel cancels items instead of starting them.
	cancel bool
	// jobs by full name ("a/b").
	jobs map[string]*fakeJob

	nextQueue int64
	items     map[int64]*fakeItem
	reqs      []fakeReq
}

// fakeJob is a job (or a folder) of the fake.
type fakeJob struct {
	params     []string // parameter definitions
	folder     bool     // a folder: jobs inside, nothing to build
	disabled   bool     // 409 on trigger
	noBuild    bool     // the user may read it, not build it: 403 on trigger
	hideQueue  bool     // its queued items are not shown (as if queued a moment later)
	result     string   // how its builds end; "" is SUCCESS
	durationMS int64
	builds     []*fakeBuild
}

type fakeItem struct {
	id        int64
	job       string
	params    url.Values
	polls     int
	left      bool
	cancelled bool
	build     *fakeBuild
}

type fakeBuild struct {
	number, queueID int64
	polls           int
}

// fakeReq is a request the fake received.
type fakeReq struct {
	Method string
	Path   string // escaped, as sent
	Query  string
	Form   url.Values
	User   string
	Header http.Header
}

// newFake starts a fake Jenkins configured by configure (which may be nil)
// before it serves.
func newFake(t *testing.T, configure func(f *fake)) *fake {
	t.Helper()
	f := &fake{t: t, items: map[int64]*fakeItem{}, jobs: map[string]*fakeJob{}}
	if configure != nil {
		configure(f)
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// set changes the fake's configuration while it serves.
func (f *fake) set(change func(f *fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// servers are the Servers reaching the fake with token.
func (f *fake) servers(token string) Servers {
	return Servers{"default": {URL: f.srv.URL, User: fakeUser, APIToken: token}}
}

// requests returns the requests received, in order.
func (f *fake) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// count counts the requests with method and escaped path.
func (f *fake) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// posts returns the POSTs received.
func (f *fake) posts() []fakeReq {
	var out []fakeReq
	for _, r := range f.requests() {
		if r.Method == http.MethodPost {
			out = append(out, r)
		}
	}
	return out
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	var form url.Values
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form = r.PostForm
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, fakeReq{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Form: form, User: user, Header: r.Header.Clone()})
	if user != fakeUser || pass != fakeToken {
		w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
		http.Error(w, "Invalid password/token for user: "+user, http.StatusUnauthorized)
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	switch {
	case r.Method == http.MethodGet && is(segs, "api", "json"):
		f.root(w)
	case r.Method == http.MethodGet && is(segs, "crumbIssuer", "api", "json", "api", "json"):
		f.crumbIssuer(w)
	case r.Method == http.MethodGet && is(segs, "queue", "api", "json"):
		f.queue(w)
	case r.Method == http.MethodGet && len(segs) == 5 && segs[0] == "queue" && segs[1] == "item" && is(segs[3:], "api", "json"):
		f.queueItem(w, segs[2])
	case len(segs) >= 2 && segs[0] == "job":
		f.job(w, r, segs, form)
	default:
		notFound(w)
	}
}

func is(segs []string, want ...string) bool { return slices.Equal(segs, want) }

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, "<html><body><h2>HTTP ERROR 404 Not Found</h2></body></html>")
}

func (f *fake) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.t.Errorf("fake jenkins: encode: %v", err)
	}
}

func (f *fake) root(w http.ResponseWriter) {
	w.Header().Set("X-Jenkins", "2.462.3")
	if f.rootStatus != 0 && f.rootStatus != http.StatusOK {
		http.Error(w, http.StatusText(f.rootStatus), f.rootStatus)
		return
	}
	f.writeJSON(w, map[string]any{"_class": "hudson.model.Hudson", "mode": "NORMAL", "useCrumbs": true, "useSecurity": true, "jobs": []any{}})
}

func (f *fake) crumbIssuer(w http.ResponseWriter) {
	if f.crumbHangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Errorf("fake jenkins: hijack: %v", err)
			return
		}
		_ = conn.Close()
		return
	}
	if !f.crumb {
		notFound(w) // the doubled path gojenkins asks for does not exist
		return
	}
	w.Header().Set("Set-Cookie", fakeCookie+"; Path=/; HttpOnly")
	f.writeJSON(w, map[string]any{"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": fakeCrumb, "crumbRequestField": "Jenkins-Crumb"})
}

// job serves /job/<a>/job/<b>/<rest>.
func (f *fake) job(w http.ResponseWriter, r *http.Request, segs []string, form url.Values) {
	var names []string
	i := 0
	for ; i+1 < len(segs) && segs[i] == "job"; i += 2 {
		name, err := url.PathUnescape(segs[i+1])
		if err != nil {
			notFound(w)
			return
		}
		names = append(names, name)
	}
	rest := segs[i:]
	if len(rest) > 0 && rest[0] == "" {
		rest = rest[1:] // gojenkins' "//<number>"
	}
	full := strings.Join(names, "/")
	job, ok := f.jobs[full]
	if !ok {
		notFound(w)
		return
	}
	switch {
	case r.Method == http.MethodGet && is(rest, "api", "json"):
		if strings.Contains(r.URL.Query().Get("tree"), "builds[") {
			f.jobBuilds(w, job)
			return
		}
		f.jobJSON(w, full, job)
	case r.Method == http.MethodPost && (is(rest, "build") || is(rest, "buildWithParameters")):
		f.trigger(w, r, full, job, rest[0], form)
	case r.Method == http.MethodGet && len(rest) == 3 && is(rest[1:], "api", "json"):
		n, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil {
			notFound(w)
			return
		}
		f.buildJSON(w, full, job, n)
	default:
		notFound(w)
	}
}

// jobURL is the absolute URL Jenkins gives a job: trailing slash.
func (f *fake) jobURL(full string) string {
	return f.srv.URL + jobPath(strings.Split(full, "/")).base() + "/"
}

func (f *fake) jobJSON(w http.ResponseWriter, full string, job *fakeJob) {
	names := strings.Split(full, "/")
	if job.folder {
		var inside []map[string]any
		for _, name := range slices.Sorted(maps.Keys(f.jobs)) {
			if strings.HasPrefix(name, full+"/") && !strings.Contains(strings.TrimPrefix(name, full+"/"), "/") {
				inside = append(inside, map[string]any{"_class": "hudson.model.FreeStyleProject",
					"name": strings.TrimPrefix(name, full+"/"), "url": f.jobURL(name), "color": "blue"})
			}
		}
		f.writeJSON(w, map[string]any{"_class": "com.cloudbees.hudson.plugins.folder.Folder",
			"name": names[len(names)-1], "fullName": full, "url": f.jobURL(full), "jobs": inside})
		return
	}
	color := "blue"
	if job.disabled {
		color = "disabled"
	}
	var queueItem any
	inQueue := false
	for _, id := range slices.Sorted(maps.Keys(f.items)) {
		if it := f.items[id]; it.job == full && !it.left && !job.hideQueue {
			inQueue = true
			queueItem = map[string]any{"_class": "hudson.model.Queue$WaitingItem", "id": it.id,
				"url": fmt.Sprintf("queue/item/%d/", it.id), "why": fakeWhy, "blocked": false, "buildable": false}
			break
		}
	}
	var property []any
	if len(job.params) > 0 {
		var defs []any
		for _, p := range job.params {
			defs = append(defs, map[string]any{"_class": "hudson.model.StringParameterDefinition", "name": p,
				"type": "StringParameterDefinition", "description": "",
				"defaultParameterValue": map[string]any{"_class": "hudson.model.StringParameterValue", "name": p, "value": ""}})
		}
		property = append(property, map[string]any{"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": defs})
	}
	var builds []any
	for _, b := range slices.Backward(job.builds) {
		builds = append(builds, map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": b.number,
			"url": fmt.Sprintf("%s%d/", f.jobURL(full), b.number)})
	}
	f.writeJSON(w, map[string]any{
		"_class": "hudson.model.FreeStyleProject", "name": names[len(names)-1], "fullName": full,
		"displayName": names[len(names)-1], "url": f.jobURL(full), "buildable": !job.disabled, "color": color,
		"inQueue": inQueue, "queueItem": queueItem, "nextBuildNumber": len(job.builds) + 1,
		"property": property, "builds": builds,
	})
}

// jobBuilds answers tree=builds[number,queueId].
func (f *fake) jobBuilds(w http.ResponseWriter, job *fakeJob) {
	builds := []any{}
	for _, b := range slices.Backward(job.builds) {
		builds = append(builds, map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": b.number, "queueId": b.queueID})
	}
	f.writeJSON(w, map[string]any{"_class": "hudson.model.FreeStyleProject", "builds": builds})
}

func (f *fake) trigger(w http.ResponseWriter, r *http.Request, full string, job *fakeJob, endpoint string, form url.Values) {
	switch {
	case f.crumb && (r.Header.Get("Jenkins-Crumb") != fakeCrumb || !strings.Contains(r.Header.Get("Cookie"), fakeCookie)):
		http.Error(w, "No valid crumb was included in the request", http.StatusForbidden)
		return
	case job.folder:
		notFound(w)
		return
	case job.noBuild:
		http.Error(w, fakeUser+" is missing the Job/Build permission", http.StatusForbidden)
		return
	case job.disabled:
		http.Error(w, "Conflict", http.StatusConflict)
		return
	case f.postStatus != 0:
		if f.postStatus >= 300 && f.postStatus < 400 {
			w.Header().Set("Location", ".")
		}
		http.Error(w, http.StatusText(f.postStatus), f.postStatus)
		return
	case endpoint == "buildWithParameters" && len(job.params) == 0:
		http.Error(w, "java.lang.IllegalStateException: This build is not parameterized!", http.StatusInternalServerError)
		return
	}
	// Jenkins reads the parameters the job defines, and drops the rest.
	params := url.Values{}
	for _, p := range job.params {
		if v, ok := form[p]; ok {
			params[p] = v
		}
	}
	item := f.queued(full, params)
	if item == nil {
		item = f.newItem(full, params)
	}
	switch f.locationBase {
	case "":
		w.Header().Set("Location", fmt.Sprintf("%s/queue/item/%d/", f.srv.URL, item.id))
	case "-":
	case "/":
		w.Header().Set("Location", fmt.Sprintf("/queue/item/%d/", item.id))
	default:
		w.Header().Set("Location", fmt.Sprintf("%s/queue/item/%d/", f.locationBase, item.id))
	}
	w.WriteHeader(http.StatusCreated)
}

// queued returns the waiting item of job with params: Jenkins merges an
// identical request into it.
func (f *fake) queued(job string, params url.Values) *fakeItem {
	for _, it := range f.items {
		if it.job == job && !it.left && maps.EqualFunc(it.params, params, slices.Equal) {
			return it
		}
	}
	return nil
}

func (f *fake) newItem(job string, params url.Values) *fakeItem {
	f.nextQueue++
	it := &fakeItem{id: f.nextQueue, job: job, params: params}
	f.items[it.id] = it
	return it
}

// queue answers /queue/api/json: the items waiting.
func (f *fake) queue(w http.ResponseWriter) {
	items := []any{}
	for _, id := range slices.Sorted(maps.Keys(f.items)) {
		if it := f.items[id]; !it.left && !f.jobs[it.job].hideQueue {
			items = append(items, map[string]any{"_class": "hudson.model.Queue$WaitingItem", "id": it.id,
				"task": map[string]any{"name": it.job, "url": f.jobURL(it.job)}})
		}
	}
	f.writeJSON(w, map[string]any{"_class": "hudson.model.Queue", "items": items})
}

func (f *fake) queueItem(w http.ResponseWriter, idText string) {
	id, err := strconv.ParseInt(idText, 10, 64)
	it := f.items[id]
	if err != nil || it == nil {
		notFound(w)
		return
	}
	if f.failQueuePolls > 0 {
		f.failQueuePolls--
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	task := map[string]any{"_class": "hudson.model.FreeStyleProject", "name": it.job, "url": f.jobURL(it.job), "color": "blue"}
	if !it.left {
		if it.polls < f.queuePolls {
			it.polls++
			f.writeJSON(w, map[string]any{"_class": "hudson.model.Queue$WaitingItem", "id": it.id, "blocked": false,
				"buildable": false, "stuck": false, "why": fakeWhy, "task": task, "url": fmt.Sprintf("queue/item/%d/", it.id),
				"inQueueSince": 1700000000000})
			return
		}
		it.left = true
		if f.cancel {
			it.cancelled = true
		} else {
			job := f.jobs[it.job]
			it.build = &fakeBuild{number: int64(len(job.builds) + 1), queueID: it.id}
			job.builds = append(job.builds, it.build)
		}
	}
	if f.expire {
		notFound(w)
		return
	}
	var executable any
	if it.build != nil {
		executable = map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": it.build.number,
			"url": fmt.Sprintf("%s%d/", f.jobURL(it.job), it.build.number)}
	}
	f.writeJSON(w, map[string]any{"_class": "hudson.model.Queue$LeftItem", "id": it.id, "blocked": false,
		"buildable": false, "stuck": false, "why": nil, "task": task, "url": fmt.Sprintf("queue/item/%d/", it.id),
		"cancelled": it.cancelled, "executable": executable})
}

func (f *fake) buildJSON(w http.ResponseWriter, full string, job *fakeJob, n int64) {
	if n < 1 || n > int64(len(job.builds)) {
		notFound(w)
		return
	}
	b := job.builds[n-1]
	v := map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": b.number, "queueId": b.queueID,
		"url": fmt.Sprintf("%s%d/", f.jobURL(full), b.number), "timestamp": 1700000000000}
	if b.polls < f.buildPolls {
		b.polls++
		v["building"], v["result"], v["duration"] = true, nil, 0
	} else {
		result := job.result
		if result == "" {
			result = "SUCCESS"
		}
		v["building"], v["result"], v["duration"] = false, result, job.durationMS
	}
	f.writeJSON(w, v)
}
