// Package webhook owns the "webhook" action: one HTTP request per attempt,
// with a templated URL, headers and body and an optional bearer token read
// from a file that is never shown. A transport error, a timeout, 408, 429
// and 5xx fail the attempt with an actions.Retryable error; the step's
// retries (the engine's one retry layer, with its backoff) send it again.
package webhook

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
)

// ID is the action type id of webhook steps.
const ID = "webhook"

const summary = "Send an HTTP request with a templated URL, headers and body; 5xx and transport errors are retryable (the step's retries)."

const example = `- name: notify
  action: webhook
  with:
    url: https://chat.example/hook
    method: POST
    headers:
      X-Playbook: '{{ .Playbook }}'
    body: '{"text": "{{ .Labels.instance }} not healed"}'
    bearer_token_file: /etc/selfheal/chat-token
    timeout: 10s
  retries: 2
`

// Params are the parameters of a webhook step.
type Params struct {
	// URL must render to an absolute http or https URL.
	URL actions.Template `yaml:"url" doc:"required; template rendering to an http or https URL"`
	// Method is one of GET, POST, PUT, PATCH, DELETE.
	Method string `yaml:"method" doc:"GET, POST, PUT, PATCH or DELETE"`
	// Headers are added to the request, values templated. A header whose
	// name looks secret (authorization, token, secret, key, password,
	// cookie) is shown as "<secret>".
	Headers map[string]actions.Template `yaml:"headers" doc:"templates; credential-like header values are shown as <secret>"`
	// Body is sent as is; empty sends no body. A non-empty body gets
	// "Content-Type: application/json" unless Headers set one.
	Body actions.Template `yaml:"body" doc:"template; JSON content type unless a header sets one"`
	// Timeout bounds the request, response body included.
	Timeout model.Duration `yaml:"timeout" doc:"per attempt; transport errors, timeouts, 408, 429 and 5xx are retryable (the step's retries send it again); redirects are not followed"`
	// BearerTokenFile, an absolute path, holds a token sent as
	// "Authorization: Bearer <token>". It is read on every run, so a
	// rotated token is picked up, and never shown.
	BearerTokenFile string `yaml:"bearer_token_file" doc:"absolute path of a token sent as Authorization: Bearer; read at every run, never shown"`
	// Removed holds the parameters that no longer exist, so that a step
	// still setting one fails to load, at its position, saying what
	// replaced it. It is not documented and never set by a valid step.
	Removed Removed `yaml:",inline"`
}

// Removed are the former webhook parameters.
type Removed struct {
	// MaxAttempts was a retry loop inside the action, on top of the step's
	// retries: a step with max_attempts 3 and retries 2 sent up to 9
	// requests. The step's retries are now the only retry layer.
	MaxAttempts *yaml.Node `yaml:"max_attempts,omitempty"`
}

// DefaultParams returns the parameters with their defaults: POST, no body,
// a 10s timeout.
func DefaultParams() *Params {
	return &Params{
		Method:  http.MethodPost,
		Timeout: model.Duration(10 * time.Second),
	}
}

// methods are the methods a webhook step may use.
func methods() []string {
	return []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; "; a removed parameter that is set, and a URL a
// label could point elsewhere while the request carries credentials, come
// after, each as an *actions.ParamError.
func (p *Params) Validate() error {
	var probs []string
	switch src := p.URL.String(); {
	case src == "":
		probs = append(probs, "url: must be set")
	case !strings.Contains(src, "{{"):
		if _, err := checkURL(src); err != nil {
			probs = append(probs, err.Error())
		}
	}
	if !slices.Contains(methods(), p.Method) {
		probs = append(probs, fmt.Sprintf("method: %q must be one of %s", p.Method, strings.Join(methods(), ", ")))
	}
	for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
		if err := checkHeaderName(name, p.BearerTokenFile != ""); err != nil {
			probs = append(probs, err.Error())
		}
	}
	if p.Timeout <= 0 {
		probs = append(probs, "timeout: must be greater than 0")
	}
	if p.BearerTokenFile != "" && !filepath.IsAbs(p.BearerTokenFile) {
		probs = append(probs, fmt.Sprintf("bearer_token_file: %q must be an absolute path", p.BearerTokenFile))
	}
	var first error
	if len(probs) > 0 {
		first = fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return errors.Join(first, p.Removed.err(), p.steerError())
}

// err refuses a removed parameter that is set, naming the step setting
// that replaces it.
func (r Removed) err() error {
	if r.MaxAttempts == nil {
		return nil
	}
	const why = "removed: a step is retried by the step's retries (the engine's one retry layer)"
	var n int
	if r.MaxAttempts.Kind != yaml.ScalarNode || r.MaxAttempts.ShortTag() != "!!int" || r.MaxAttempts.Decode(&n) != nil {
		return actions.ParamErrorf("max_attempts", "%s; set retries on the step instead (max_attempts: 3 was retries: 2)", why)
	}
	if n <= 1 {
		return actions.ParamErrorf("max_attempts", "%s; delete it: a step without retries sends the request once", why)
	}
	return actions.ParamErrorf("max_attempts", "%s; set retries: %d on the step instead", why, n-1)
}

// checkHeaderName checks a header name given in headers.
func checkHeaderName(name string, hasToken bool) error {
	if !isToken(name) {
		return fmt.Errorf("headers: %q is not a valid header name", name)
	}
	switch c := http.CanonicalHeaderKey(name); {
	case c == "Host" || c == "Content-Length" || c == "Transfer-Encoding":
		return fmt.Errorf("headers: %s is set by the client, not by a step", c)
	case c == "Authorization" && hasToken:
		return fmt.Errorf("headers: Authorization conflicts with bearer_token_file")
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, what a header name is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// Spec returns the webhook action type. Its actions send with client (nil:
// a plain &http.Client{}; the per-attempt timeout comes from the context)
// and log to logger (nil discards).
func Spec(client *http.Client, logger *slog.Logger) actions.Spec {
	return actions.Typed(ID, summary, example, DefaultParams, func(p *Params) (actions.Action, error) {
		return New(p, client, logger)
	})
}

// Action is a configured webhook step. It is safe for concurrent use.
type Action struct {
	p      Params
	client *http.Client
	logger *slog.Logger
}

// New builds a webhook action from p, which it validates. It sends with a
// copy of client that never follows redirects (nil: &http.Client{}); a
// Timeout set on client still applies on top of the per-attempt one. The
// action logs to logger; nil discards.
func New(p *Params, client *http.Client, logger *slog.Logger) (*Action, error) {
	if p == nil {
		return nil, fmt.Errorf("webhook: nil params")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	// A redirect could send the token to another host, and turns a POST
	// into a GET: a 3xx is returned as is and fails the step.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Action{
		p:      *p,
		client: c,
		logger: logger.With("component", "actions/webhook"),
	}, nil
}

// MaxDuration bounds one attempt: the request's timeout.
func (p *Params) MaxDuration() time.Duration { return time.Duration(p.Timeout) }
