package jenkins

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bndr/gojenkins"

	"github.com/selfheal/selfheal/actions"
)

// rendered is a step rendered for one target: what Run triggers and Plan
// shows. Both build it with render.
type rendered struct {
	job    jobPath
	params map[string]string
	names  []string // the parameter names, sorted
}

// render renders the job and parameters for t. It has no side effect.
func (a *Action) render(t actions.Target) (rendered, error) {
	src, err := a.p.Job.Render(t)
	if err != nil {
		return rendered{}, fmt.Errorf("job: %w", err)
	}
	job, err := parseJobPath(src)
	if err != nil {
		return rendered{}, err
	}
	params, err := actions.RenderMap(a.p.Parameters, t)
	if err != nil {
		return rendered{}, fmt.Errorf("parameters.%w", err)
	}
	return rendered{job: job, params: params, names: slices.Sorted(maps.Keys(params))}, nil
}

// form is the body of the trigger request.
func (b rendered) form() string {
	v := url.Values{}
	for k, val := range b.params {
		v.Set(k, val)
	}
	return v.Encode()
}

// queued is what a trigger got: the queue item, and whether Jenkins merged
// the request into an item that was already queued.
type queued struct {
	id      int64
	already bool
}

// trigger reads the job's definition, then posts to /build or
// /buildWithParameters as gojenkins' InvokeSimple would, without its
// refusal to trigger while any build of the job is queued: Jenkins queues a
// build with other parameters, and merges one with the same parameters into
// the queued item, answering with that item's id. The merge is recognised
// by the id: one that was in the queue just before the trigger, or one a
// trigger of this daemon got already (a trigger racing ours).
func (a *Action) trigger(ctx context.Context, j *gojenkins.Jenkins, b rendered) (queued, error) {
	c := a.conn
	segs := b.job.escaped()
	job, err := call(ctx, func() (*gojenkins.Job, error) {
		return j.GetJob(context.Background(), segs[len(segs)-1], segs[:len(segs)-1]...)
	})
	if err != nil {
		return queued{}, c.callError(ctx, http.MethodGet, c.url(b.job.base()+"/api/json"), err, ErrJobNotFound)
	}
	endpoint, err := checkParameters(b, job.Raw)
	if err != nil {
		return queued{}, err
	}
	before, err := a.queueIDs(ctx, j)
	if err != nil {
		return queued{}, err
	}
	id, err := a.post(ctx, j, b, endpoint)
	if err != nil {
		return queued{}, err
	}
	seen := a.queued.add(c.name, id, time.Now())
	return queued{id: id, already: before[id] || seen}, nil
}

// queueTree is the tree query listing the queue's item ids.
const queueTree = "items[id]"

// queueIDs returns the ids of the items in Jenkins' queue.
func (a *Action) queueIDs(ctx context.Context, j *gojenkins.Jenkins) (map[int64]bool, error) {
	c := a.conn
	v, code, err := getJSON[struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}](ctx, j, "/queue", map[string]string{"tree": queueTree})
	u := c.url("/queue/api/json?tree=" + queueTree)
	switch {
	case err != nil:
		return nil, c.callError(ctx, http.MethodGet, u, err, nil)
	case code != http.StatusOK:
		return nil, c.statusError(http.MethodGet, u, code, nil)
	}
	ids := make(map[int64]bool, len(v.Items))
	for _, it := range v.Items {
		ids[it.ID] = true
	}
	return ids, nil
}

// checkParameters returns the trigger endpoint for the job's definition
// (/buildWithParameters when it defines parameters, as gojenkins chooses)
// and refuses parameters Jenkins would silently drop: any, for a job that
// defines none, and those the job does not define.
func checkParameters(b rendered, job *gojenkins.JobResponse) (string, error) {
	if len(job.Jobs) > 0 && !job.Buildable {
		return "", fmt.Errorf("%w: %s is a folder, not a job", ErrJobNotFound, b.job)
	}
	defined := map[string]bool{}
	var names []string
	for _, p := range job.Property {
		for _, d := range p.ParameterDefinitions {
			if !defined[d.Name] {
				defined[d.Name] = true
				names = append(names, d.Name)
			}
		}
	}
	if len(defined) == 0 {
		if len(b.params) > 0 {
			return "", fmt.Errorf("%w: job %s defines no parameters; Jenkins would drop %s",
				ErrParameters, b.job, strings.Join(b.names, ", "))
		}
		return "/build", nil
	}
	var unknown []string
	for _, n := range b.names {
		if !defined[n] {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(names)
		return "", fmt.Errorf("%w: job %s does not define %s (it defines %s); Jenkins would drop them",
			ErrParameters, b.job, strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return "/buildWithParameters", nil
}

// post sends the trigger through gojenkins (which asks for a crumb first)
// and returns the queue item id Jenkins answered with.
func (a *Action) post(ctx context.Context, j *gojenkins.Jenkins, b rendered, endpoint string) (int64, error) {
	c := a.conn
	target := c.url(b.job.base() + endpoint)
	body := b.form()
	resp, err := call(ctx, func() (*http.Response, error) {
		return j.Requester.Post(context.Background(), b.job.base()+endpoint, strings.NewReader(body), nil, nil)
	})
	if err != nil {
		err = c.callError(ctx, http.MethodPost, target, err, ErrJobNotFound)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%w (the build may have been triggered)", err)
		}
		return 0, err
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusOK || code == http.StatusCreated:
		loc := resp.Header.Get("Location")
		id, err := queueIDFromLocation(loc)
		if err != nil {
			return 0, fmt.Errorf("POST %s answered %s: %w", target, statusLine(code), err)
		}
		return id, nil
	case code >= 300 && code < 400:
		// Jenkins redirects to the job when it scheduled nothing (a queue
		// decision handler refused the build).
		return 0, fmt.Errorf("jenkins did not queue the build: POST %s answered %s (Location: %s)",
			target, statusLine(code), shownLocation(resp.Header.Get("Location")))
	}
	return 0, c.statusError(http.MethodPost, target, code, ErrJobNotFound)
}

// queueIDFromLocation reads the queue item id from a trigger's Location,
// ".../queue/item/<id>/". Only the id is used: its host is not trusted.
func queueIDFromLocation(loc string) (int64, error) {
	if loc == "" {
		return 0, fmt.Errorf("no Location header: expected one naming a queue item")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return 0, fmt.Errorf("location header %q: %w", loc, err)
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	n := len(segs)
	if n < 3 || segs[n-3] != "queue" || segs[n-2] != "item" {
		return 0, fmt.Errorf("location header %q does not name a queue item", loc)
	}
	id, err := strconv.ParseInt(segs[n-1], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("location header %q does not name a queue item", loc)
	}
	return id, nil
}

// recentTTL is how long a queue item a trigger got is remembered. Jenkins
// never reuses an id, so this only bounds the memory.
const recentTTL = time.Hour

// recent remembers the queue items triggers got, per server. It is safe
// for concurrent use.
type recent struct {
	mu   sync.Mutex
	seen map[string]time.Time // "server#id" → when
}

func newRecent() *recent { return &recent{seen: map[string]time.Time{}} }

// add remembers the item and reports whether it was remembered already.
func (r *recent) add(server string, id int64, now time.Time) bool {
	key := server + "#" + strconv.FormatInt(id, 10)
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, at := range r.seen {
		if now.Sub(at) > recentTTL {
			delete(r.seen, k)
		}
	}
	_, ok := r.seen[key]
	r.seen[key] = now
	return ok
}

// shownLocation is what an error shows of a redirect's Location: the
// scheme and host of an absolute one, enough to see where Jenkins (or a
// login proxy in front of it) sends the client; the path of a relative one.
// The rest is left out, as a login redirect may carry the request's
// credentials or form (secret parameters) in its path or query.
func shownLocation(loc string) string {
	if loc == "" {
		return "none"
	}
	u, err := url.Parse(loc)
	switch {
	case err != nil:
		return "not a URL"
	case u.Host != "":
		shown := u.Scheme + "://" + u.Host
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			shown += "/…"
		}
		return strconv.Quote(shown)
	case u.RawQuery != "":
		return strconv.Quote(u.Path + "?…")
	}
	return strconv.Quote(u.Path)
}
