// Package silence owns the "alertmanager.silence" action: it silences the
// alert's labels in Alertmanager (API v2) while a remediation runs, and can
// expire that silence when the run finishes (it is an actions.Finisher).
package silence

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

// ID is the action type id of silence steps.
const ID = "alertmanager.silence"

const summary = "Silence the alert's labels in Alertmanager (API v2) for a duration; optionally expire it when the run finishes."

const example = `- name: silence
  action: alertmanager.silence
  with:
    duration: 30m
    comment: 'selfheal is restarting {{ .Labels.instance }} ({{ .Run }})'
    created_by: selfheal
    matchers: [alertname, instance]
    expire_on_finish: true
`

// maxDuration is the longest silence a step may create: a silence that
// outlives its remediation by days hides the next real problem.
const maxDuration = 7 * 24 * time.Hour

// Params are the parameters of a silence step.
type Params struct {
	// Duration is how long the silence lasts from when the step runs
	// (0 < duration <= 7d).
	Duration model.Duration `yaml:"duration" doc:"how long the silence lasts (at most 7d)"`
	// Comment is stored with the silence, templated.
	Comment actions.Template `yaml:"comment" doc:"template; the silence's comment"`
	// CreatedBy is stored with the silence as its author.
	CreatedBy string `yaml:"created_by" doc:"the silence's author"`
	// Matchers are the names of the alert labels to silence on, each as
	// an equality matcher with the alert's value; the alert must have
	// every one. Empty means all the alert's labels: exactly this alert.
	Matchers []string `yaml:"matchers" doc:"label names to match on, with the alert's values (default: every label of the alert)"`
	// ExpireOnFinish expires the silence when the run finishes, through
	// Finish, instead of letting it run to its end.
	ExpireOnFinish bool `yaml:"expire_on_finish" doc:"expire the silence when the run ends, whatever its outcome"`
}

// DefaultParams returns the parameters with their defaults: one hour, a
// comment naming the alert and the run, created by "selfheal", on all the
// alert's labels, not expired on finish.
func DefaultParams() *Params {
	return &Params{
		Duration:  model.Duration(time.Hour),
		Comment:   actions.MustTemplate("selfheal: remediation of {{ .Labels.alertname }} ({{ .Run }})"),
		CreatedBy: "selfheal",
	}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *Params) Validate() error {
	var probs []string
	switch {
	case p.Duration <= 0:
		probs = append(probs, "duration: must be greater than 0")
	case time.Duration(p.Duration) > maxDuration:
		probs = append(probs, fmt.Sprintf("duration: %s is longer than the maximum of 7d", p.Duration))
	}
	if strings.TrimSpace(p.Comment.String()) == "" {
		probs = append(probs, "comment: must be set")
	}
	if strings.TrimSpace(p.CreatedBy) == "" {
		probs = append(probs, "created_by: must be set")
	}
	seen := map[string]bool{}
	for i, name := range p.Matchers {
		switch {
		case name == "":
			probs = append(probs, fmt.Sprintf("matchers[%d]: must not be empty", i))
		case seen[name]:
			probs = append(probs, fmt.Sprintf("matchers[%d]: %q is listed twice", i, name))
		}
		seen[name] = true
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return nil
}

// Options are the dependencies of silence actions.
type Options struct {
	// URL is Alertmanager's base URL from the daemon's config, like
	// "http://am:9093" or "https://am.example/alertmanager" (a route
	// prefix). A user and password in it are sent as basic auth and never
	// shown. Empty makes every silence step fail to build.
	URL string
	// HTTPClient sends the API requests (TLS, proxies); nil means
	// &http.Client{}. Each request is bounded by requestTimeout too.
	HTTPClient *http.Client
	// Logger receives the actions' logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock that dates silences; nil means time.Now.
	Now func() time.Time
}

// Spec returns the silence action type bound to o. A step fails to build
// when o.URL is not an absolute http(s) URL.
func Spec(o Options) actions.Spec {
	return actions.Typed(ID, summary, example, DefaultParams, func(p *Params) (actions.Action, error) {
		return New(p, o)
	})
}

// Action is a configured silence step. It is safe for concurrent use: one
// Action serves every run of its step.
type Action struct {
	p      Params
	am     *client
	logger *slog.Logger
	now    func() time.Time
}

// New builds a silence action from p, which it validates, talking to the
// Alertmanager at o.URL.
func New(p *Params, o Options) (*Action, error) {
	if p == nil {
		return nil, fmt.Errorf("%s: nil params", ID)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	u, err := checkURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	am := newClient(u, o.HTTPClient)
	return &Action{
		p:      *p,
		am:     am,
		logger: slog.New(am.redactor.Handler(o.Logger.Handler())).With("component", "actions/silence"),
		now:    o.Now,
	}, nil
}

// checkURL parses the Alertmanager base URL.
func checkURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("no Alertmanager URL is configured for %s", ID)
	}
	u, err := url.Parse(s)
	if err != nil {
		// Its text quotes the URL, password and all.
		return nil, redact.New().Error(fmt.Errorf("alertmanager url: %w", err))
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("alertmanager url: %q is not an absolute http or https URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("alertmanager url: %q must not have a query or fragment", u.Redacted())
	}
	return u, nil
}
