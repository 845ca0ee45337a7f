package jenkins

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/bndr/gojenkins"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

// initMu serialises gojenkins' Init, process-wide: it assigns gojenkins'
// package-level loggers, so two Inits at once (for two servers, or a retry
// overlapping an abandoned attempt) are a data race. It guards a third
// party's globals, which is why it is package-level.
var initMu sync.Mutex

// conn is the connection to one server, shared by every action of a Spec.
// It is safe for concurrent use.
type conn struct {
	name   string
	cfg    Server
	base   string // cfg.URL without a trailing slash
	client *http.Client
	// err is what is wrong with cfg; actions naming the server are refused.
	err error
	// redactor knows the API token and the basic auth built from it: what
	// an error body, a Location or a log line may echo.
	redactor *redact.Redactor
	logger   *slog.Logger

	// sem (one slot) guards jenkins and serialises Init attempts; waiting
	// for it honours the context, unlike a mutex.
	sem chan struct{}
	// jenkins is set once Init succeeded.
	jenkins *gojenkins.Jenkins
}

// newConn checks s and prepares its client; it sends nothing.
func newConn(name string, s Server, logger *slog.Logger) *conn {
	r := redact.New(redact.BasicAuth(s.User, s.APIToken)...)
	c := &conn{name: name, cfg: s, sem: make(chan struct{}, 1), redactor: r,
		logger: slog.New(r.Handler(logger.Handler())).With("server", name)}
	if err := s.Validate(); err != nil {
		c.err = err
		return c
	}
	c.base, _ = parseServerURL(s.URL)
	c.client, c.err = newHTTPClient(s)
	return c
}

// url is the absolute URL of path (which starts with "/") on the server.
func (c *conn) url(path string) string { return c.base + path }

// ready returns the server's gojenkins client, calling Init first if no
// Init succeeded yet. A failed Init is tried again by the next caller.
func (c *conn) ready(ctx context.Context) (*gojenkins.Jenkins, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-c.sem }()
	if c.jenkins != nil {
		return c.jenkins, nil
	}
	j := gojenkins.CreateJenkins(c.client, c.base, c.cfg.User, c.cfg.APIToken)
	_, err := call(ctx, func() (*gojenkins.Jenkins, error) {
		initMu.Lock()
		defer initMu.Unlock()
		return j.Init(context.Background())
	})
	if err != nil {
		return nil, c.initError(ctx, j, err)
	}
	c.logger.Info("connected to jenkins", "url", c.base, "version", j.Version)
	c.jenkins = j
	return j, nil
}

// initError explains a failed Init. gojenkins reports any status but 200 as
// "Connection Failed", so the root is asked once more for its status.
func (c *conn) initError(ctx context.Context, j *gojenkins.Jenkins, err error) error {
	root := c.url("/api/json")
	var ue *url.Error
	if ctx.Err() != nil || actions.IsRetryable(err) || errors.As(err, &ue) {
		return c.callError(ctx, http.MethodGet, root, err, nil)
	}
	resp, perr := call(ctx, func() (*http.Response, error) {
		return j.Requester.GetJSON(context.Background(), "/", &struct{}{}, nil)
	})
	switch {
	case perr != nil:
		return c.callError(ctx, http.MethodGet, root, perr, nil)
	case resp.StatusCode == http.StatusOK:
		return actions.Retryable(fmt.Errorf("GET %s: %w", root, err))
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("GET %s answered %s (Location: %s): set the server url to where Jenkins answers; redirects are not followed",
			root, statusLine(resp.StatusCode), shownLocation(resp.Header.Get("Location")))
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("GET %s answered %s: is %s the Jenkins URL, with its context path?", root, statusLine(resp.StatusCode), c.base)
	}
	return c.statusError(http.MethodGet, root, resp.StatusCode, nil)
}

// call runs f, a gojenkins call, on its own goroutine and returns its
// result, or the context's cause as soon as ctx ends: gojenkins v1.1.0
// never attaches ctx to a request, so an abandoned call goes on until the
// client's timeout. A panic in f (gojenkins dereferences the nil response
// of a failed crumb request) becomes a retryable error.
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: actions.Retryable(fmt.Errorf("gojenkins panicked (it does when Jenkins cannot be reached "+
					"for a CSRF crumb): %v", p))}
			}
			done <- r
		}()
		r.v, r.err = f()
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}

// callError classifies err, returned by a gojenkins call that sent method
// to u: the context's end is permanent; a panic, a transport error or a
// timeout is retryable, except a failed TLS verification; gojenkins'
// "<status>" errors are classified by status (notFound, if not nil, is the
// error for a 404).
func (c *conn) callError(ctx context.Context, method, u string, err error, notFound error) error {
	var ue *url.Error
	var cve *tls.CertificateVerificationError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", method, u, err)
	case actions.IsRetryable(err):
		return fmt.Errorf("%s %s: %w", method, u, err)
	case errors.As(err, &cve):
		return fmt.Errorf("%w (set the server's ca_file, or insecure_skip_verify)", err)
	case errors.As(err, &ue):
		return actions.Retryable(err) // its text names the method and URL
	}
	if code, cerr := strconv.Atoi(err.Error()); cerr == nil && code >= 100 && code <= 999 {
		return c.statusError(method, u, code, notFound)
	}
	// An X-Error header: Jenkins' own explanation.
	return fmt.Errorf("%s %s: jenkins says: %w", method, u, err)
}

// statusError is the error for an unexpected status: 401, 403, 404
// (notFound, or a generic one) and 409 are permanent; 408, 429 and 5xx are
// retryable; anything else is permanent.
func (c *conn) statusError(method, u string, code int, notFound error) error {
	req := fmt.Sprintf("%s %s answered %s", method, u, statusLine(code))
	switch {
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w for user %q: %s; check the user and API token", ErrUnauthorized, c.cfg.User, req)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w for user %q: %s; the user needs Overall/Read, Job/Read and Job/Build, "+
			"and must authenticate with an API token (a password would need a CSRF crumb)", ErrForbidden, c.cfg.User, req)
	case code == http.StatusNotFound && notFound != nil:
		return fmt.Errorf("%w: %s", notFound, req)
	case code == http.StatusConflict:
		return fmt.Errorf("%w: %s", ErrJobDisabled, req)
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return actions.Retryable(errors.New(req))
	}
	return errors.New(req)
}

// statusLine is "404 Not Found".
func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// getJSON GETs endpoint+"/api/json" (endpoint starts with "/") through
// gojenkins, with query, and decodes the body into a fresh T. It returns
// the status; a body that is not JSON leaves T zero, as gojenkins ignores
// decoding errors.
func getJSON[T any](ctx context.Context, j *gojenkins.Jenkins, endpoint string, query map[string]string) (T, int, error) {
	type got struct {
		v    T
		code int
	}
	g, err := call(ctx, func() (got, error) {
		var g got
		resp, err := j.Requester.GetJSON(context.Background(), endpoint, &g.v, query)
		if err != nil {
			return g, err
		}
		g.code = resp.StatusCode
		return g, nil
	})
	return g.v, g.code, err
}
