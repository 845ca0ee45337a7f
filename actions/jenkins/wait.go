package jenkins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bndr/gojenkins"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/selfheal/selfheal/actions"
)

// errWaitTimeout is the cause of the wait's context when the step's
// timeout passes.
var errWaitTimeout = errors.New("jenkins wait timeout")

// buildTree is the tree query of a build poll: what is read, no more
// (gojenkins asks for depth=1, which can be large).
const buildTree = "number,building,result,duration,timestamp,queueId"

// buildsTree is the tree query mapping queue ids to builds once a queue
// item has expired.
const buildsTree = "builds[number,queueId]"

// queueItem is a queue item's JSON, with what gojenkins' own struct lacks:
// cancelled (only on a left item) and _class.
type queueItem struct {
	Class      string `json:"_class"`
	ID         int64  `json:"id"`
	Why        string `json:"why"`
	Cancelled  bool   `json:"cancelled"`
	Executable *struct {
		Number int64 `json:"number"`
	} `json:"executable"`
}

// buildJSON is a build's JSON; result is null (so "") while building.
type buildJSON struct {
	Number   int64   `json:"number"`
	Building bool    `json:"building"`
	Result   string  `json:"result"`
	Duration float64 `json:"duration"` // milliseconds
	QueueID  int64   `json:"queueId"`
}

// jobBuilds is the job JSON under buildsTree.
type jobBuilds struct {
	Builds []struct {
		Number  int64 `json:"number"`
		QueueID int64 `json:"queueId"`
	} `json:"builds"`
}

// finished is a build that ended.
type finished struct {
	number   int64
	url      string
	result   string
	duration time.Duration
}

// details are the Result details of a (possibly unfinished) build.
func (f finished) details() map[string]string {
	d := map[string]string{}
	if f.number > 0 {
		d["number"] = strconv.FormatInt(f.number, 10)
		d["build_url"] = f.url
	}
	if f.result != "" {
		d["result"] = f.result
		d["duration"] = f.duration.String()
	}
	return d
}

// waiter polls one queue item, then its build.
type waiter struct {
	a        *Action
	j        *gojenkins.Jenkins
	b        rendered
	id       int64
	queueURL string
	start    time.Time
	log      *slog.Logger
	// last is the last failed poll, why the last reason Jenkins gave for
	// the item to wait: both end up in a give-up message.
	last error
	why  string
}

// wait polls the queue item id until it leaves the queue, then the build
// until it ends, within the step's timeout. The returned build has its
// number and URL as soon as they are known, even with an error.
func (a *Action) wait(ctx context.Context, j *gojenkins.Jenkins, b rendered, id int64, log *slog.Logger) (finished, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, time.Duration(a.p.Timeout), errWaitTimeout)
	defer cancel()
	w := &waiter{a: a, j: j, b: b, id: id, queueURL: a.conn.url(fmt.Sprintf("/queue/item/%d/", id)), start: time.Now(), log: log}
	n, err := w.queue(ctx)
	if err != nil {
		return finished{}, err
	}
	f := finished{number: n, url: a.conn.url(fmt.Sprintf("%s/%d/", b.job.base(), n))}
	log.Info("jenkins build started", "number", n, "build_url", f.url)
	w.last = nil
	return w.build(ctx, f)
}

// queue polls the queue item until it has an executable, and returns its
// build number. A cancelled item fails. A 404 means the item left the
// queue more than five minutes ago: the job's builds are then searched for
// the one that came from it.
func (w *waiter) queue(ctx context.Context) (int64, error) {
	endpoint := fmt.Sprintf("/queue/item/%d", w.id)
	var n int64
	expired := false
	err := wait.PollUntilContextCancel(ctx, time.Duration(w.a.p.PollInterval), true, func(ctx context.Context) (bool, error) {
		var done bool
		var err error
		if !expired {
			n, done, expired, err = w.pollQueue(ctx, endpoint)
			if !expired || ctx.Err() != nil {
				return stop(ctx, done, err)
			}
			// It has just expired: search the builds at once.
		}
		n, done, err = w.fromBuilds(ctx)
		return stop(ctx, done, err)
	})
	if wait.Interrupted(err) && ctx.Err() != nil {
		return 0, w.gaveUp(ctx, fmt.Sprintf("the build is still queued at %s and may still run%s", w.queueURL, w.whySuffix()))
	}
	return n, err
}

// stop is what a poll condition returns: done, or a permanent error that
// ends the polling. Once ctx has ended neither counts: the caller gives up.
func stop(ctx context.Context, done bool, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	return done, err
}

// pollQueue polls the queue item once. A failure worth another poll is
// remembered in w.last, not returned.
func (w *waiter) pollQueue(ctx context.Context, endpoint string) (n int64, done, expired bool, err error) {
	item, code, err := getJSON[queueItem](ctx, w.j, endpoint, nil)
	u := w.a.conn.url(endpoint + "/api/json")
	switch {
	case err != nil:
		return 0, false, false, w.failed(ctx, w.a.conn.callError(ctx, http.MethodGet, u, err, nil))
	case code == http.StatusOK && item.Cancelled:
		return 0, false, false, fmt.Errorf("queue item %d (%s) was %w", w.id, w.queueURL, ErrCancelled)
	case code == http.StatusOK && item.Executable != nil && item.Executable.Number > 0:
		return item.Executable.Number, true, false, nil
	case code == http.StatusOK:
		w.why, w.last = item.Why, nil
		w.log.Debug("jenkins build still queued", "why", item.Why)
		return 0, false, false, nil
	case code == http.StatusNotFound:
		w.log.Info("jenkins queue item expired, searching the job's builds")
		return 0, false, true, nil
	}
	return 0, false, false, w.failed(ctx, w.a.conn.statusError(http.MethodGet, u, code, nil))
}

// fromBuilds looks for the build that came from the expired queue item.
func (w *waiter) fromBuilds(ctx context.Context) (n int64, done bool, err error) {
	c := w.a.conn
	endpoint := w.b.job.base()
	u := c.url(endpoint + "/api/json?tree=" + buildsTree)
	v, code, err := getJSON[jobBuilds](ctx, w.j, endpoint, map[string]string{"tree": buildsTree})
	switch {
	case err != nil:
		return 0, false, w.failed(ctx, c.callError(ctx, http.MethodGet, u, err, ErrJobNotFound))
	case code != http.StatusOK:
		return 0, false, w.failed(ctx, c.statusError(http.MethodGet, u, code, ErrJobNotFound))
	}
	for _, b := range v.Builds {
		if b.QueueID == w.id {
			return b.Number, true, nil
		}
	}
	return 0, false, fmt.Errorf("%w: queue item %d (%s) has expired and none of the %d builds Jenkins lists for job %s came from it: "+
		"it was cancelled, or its build is older than those listed", ErrQueueItemGone, w.id, w.queueURL, len(v.Builds), w.b.job)
}

// build polls the build until it is no longer building.
func (w *waiter) build(ctx context.Context, f finished) (finished, error) {
	c := w.a.conn
	endpoint := fmt.Sprintf("%s/%d", w.b.job.base(), f.number)
	u := c.url(endpoint + "/api/json?tree=" + buildTree)
	err := wait.PollUntilContextCancel(ctx, time.Duration(w.a.p.PollInterval), true, func(ctx context.Context) (bool, error) {
		b, code, err := getJSON[buildJSON](ctx, w.j, endpoint, map[string]string{"tree": buildTree})
		switch {
		case ctx.Err() != nil:
		case err != nil:
			return false, w.failed(ctx, c.callError(ctx, http.MethodGet, u, err, nil))
		case code == http.StatusOK && !b.Building && b.Result != "":
			f.result = b.Result
			f.duration = time.Duration(b.Duration * float64(time.Millisecond))
			return true, nil
		case code == http.StatusOK:
			w.last = nil
		case code == http.StatusNotFound:
			// Not visible yet, right after it left the queue: poll again.
			w.last = fmt.Errorf("GET %s answered %s", u, statusLine(code))
		default:
			return false, w.failed(ctx, c.statusError(http.MethodGet, u, code, nil))
		}
		return false, nil
	})
	if wait.Interrupted(err) && ctx.Err() != nil {
		return f, w.gaveUp(ctx, "build may still be running at "+f.url)
	}
	return f, err
}

// failed handles a failed poll: a retryable failure is remembered and nil
// returned, so polling goes on; a permanent one is returned.
func (w *waiter) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil // the caller gives up
	}
	if actions.IsRetryable(err) {
		w.last = err
		w.log.Debug("jenkins poll failed, polling again", "err", err)
		return nil
	}
	return err
}

// gaveUp is the error when the wait's context ended: never retryable, as
// the build may still be queued or running (state says where).
func (w *waiter) gaveUp(ctx context.Context, state string) error {
	last := ""
	if w.last != nil {
		last = "; the last poll failed: " + w.last.Error()
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, errWaitTimeout) {
		return fmt.Errorf("%w after %s; %s%s", ErrGaveUp, w.a.p.Timeout, state, last)
	}
	return fmt.Errorf("%w after %s (%w); %s%s", ErrGaveUp, time.Since(w.start).Round(time.Millisecond), cause, state, last)
}

// whySuffix is " (<why>)" when Jenkins said why the item waits.
func (w *waiter) whySuffix() string {
	if w.why == "" {
		return ""
	}
	return " (" + w.why + ")"
}
