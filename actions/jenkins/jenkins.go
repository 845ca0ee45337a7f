package jenkins

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
)

// ID is the action type id of Jenkins build steps.
const ID = "jenkins.build"

const summary = "Trigger a Jenkins job (folders as a/b) with parameters and wait for its result " +
	"(SUCCESS and UNSTABLE succeed; FAILURE, ABORTED and NOT_BUILT fail)."

const example = `- name: clean-disk
  action: jenkins.build
  with:
    server: default
    job: infra/clean-disk
    parameters:
      HOST: '{{ .Labels.instance }}'
    wait: true
    timeout: 20m
    poll_interval: 5s
`

// Defaults of the parameters and of Options.
const (
	DefaultServer          = "default"
	DefaultTimeout         = 20 * time.Minute
	DefaultPollInterval    = 5 * time.Second
	DefaultMinPollInterval = time.Second
)

// Errors callers can branch on with errors.Is. All are permanent.
var (
	// ErrUnauthorized: Jenkins refused the user and API token (401).
	ErrUnauthorized = errors.New("authentication failed")
	// ErrForbidden: the user lacks a permission (403).
	ErrForbidden = errors.New("permission denied")
	// ErrJobNotFound: no such job, or the user may not see it (404).
	ErrJobNotFound = errors.New("job not found")
	// ErrJobDisabled: the job is disabled or cannot be built (409).
	ErrJobDisabled = errors.New("job is disabled or cannot be built")
	// ErrParameters: the step's parameters do not match the job's
	// definitions, which Jenkins would silently drop.
	ErrParameters = errors.New("parameters do not match the job")
	// ErrCancelled: the queue item was cancelled before it started.
	ErrCancelled = errors.New("cancelled in the queue")
	// ErrQueueItemGone: the queue item expired and no build came from it.
	ErrQueueItemGone = errors.New("queue item gone")
	// ErrBuildFailed: the build ended FAILURE, ABORTED or NOT_BUILT.
	ErrBuildFailed = errors.New("build did not succeed")
	// ErrGaveUp: the wait ended (timeout or cancelled context) while the
	// build was queued or running; it may still run.
	ErrGaveUp = errors.New("gave up waiting")
)

// Params are the parameters of a jenkins.build step.
type Params struct {
	// Server names an entry of the daemon's Jenkins servers.
	Server string `yaml:"server" doc:"a server name from the daemon config's jenkins section"`
	// Job is the job's full name; folders are separated by "/" ("a/b" is
	// the job b in the folder a).
	Job actions.Template `yaml:"job" doc:"required; template; folders as a/b"`
	// Parameters are the build parameters, values templated. Each must be
	// defined on the job: Jenkins would silently drop an unknown one.
	Parameters map[string]actions.Template `yaml:"parameters" doc:"build parameters (templates); names the job does not define are refused"`
	// Wait makes the step wait for the build's result; false returns once
	// the build is queued.
	Wait bool `yaml:"wait" doc:"wait for the build's result; false: done once queued"`
	// Timeout bounds the wait for the queue and the build.
	Timeout model.Duration `yaml:"timeout" doc:"how long to wait for the queue and the build"`
	// PollInterval is the time between two polls of the queue item or
	// build.
	PollInterval model.Duration `yaml:"poll_interval" doc:"how often the queue item and build are polled (at least 1s)"`
}

// DefaultParams returns the parameters with their defaults: server
// "default", wait for the result up to 20m, polling every 5s.
func DefaultParams() *Params {
	return &Params{
		Server:       DefaultServer,
		Wait:         true,
		Timeout:      model.Duration(DefaultTimeout),
		PollInterval: model.Duration(DefaultPollInterval),
	}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *Params) Validate() error {
	var probs []string
	if p.Server == "" {
		probs = append(probs, "server: must not be empty")
	}
	switch src := p.Job.String(); {
	case src == "":
		probs = append(probs, "job: must be set")
	case !strings.Contains(src, "{{"):
		if _, err := parseJobPath(src); err != nil {
			probs = append(probs, err.Error())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Parameters)) {
		if strings.TrimSpace(name) == "" {
			probs = append(probs, "parameters: a parameter name must not be empty")
		}
	}
	if p.Timeout <= 0 {
		probs = append(probs, "timeout: must be greater than 0")
	}
	if p.PollInterval <= 0 {
		probs = append(probs, "poll_interval: must be greater than 0")
	} else if p.Timeout > 0 && p.PollInterval > p.Timeout {
		probs = append(probs, fmt.Sprintf("poll_interval: %s must not exceed timeout %s", p.PollInterval, p.Timeout))
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return nil
}

// Options are the dependencies of the action type.
type Options struct {
	// Servers are the Jenkins servers steps may name.
	Servers Servers
	// Logger receives the actions' logs; nil discards them.
	Logger *slog.Logger
	// MinPollInterval is the smallest poll_interval a step may ask for, so
	// that no playbook hammers Jenkins; 0 means DefaultMinPollInterval.
	// Tests lower it.
	MinPollInterval time.Duration
}

// Spec returns the jenkins.build action type for servers, logging to logger
// (nil discards). It is NewSpec with default options.
func Spec(servers Servers, logger *slog.Logger) actions.Spec {
	return NewSpec(Options{Servers: servers, Logger: logger})
}

// NewSpec returns the jenkins.build action type. Every action built from
// it shares one connection per server, so gojenkins is initialised once per
// server, on the first step that uses it. Servers are checked here and a
// problem is reported when a step naming that server is built.
func NewSpec(o Options) actions.Spec {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinPollInterval <= 0 {
		o.MinPollInterval = DefaultMinPollInterval
	}
	logger := o.Logger.With("component", "actions/jenkins")
	conns := make(map[string]*conn, len(o.Servers))
	for name, s := range o.Servers {
		conns[name] = newConn(name, s, logger)
	}
	queued := newRecent()
	return actions.Typed(ID, summary, example, DefaultParams, func(p *Params) (actions.Action, error) {
		c, ok := conns[p.Server]
		if !ok {
			if len(conns) == 0 {
				return nil, fmt.Errorf("server: %q is not configured: the daemon configuration lists no Jenkins servers", p.Server)
			}
			return nil, fmt.Errorf("server: %q is not configured (configured: %s)",
				p.Server, strings.Join(slices.Sorted(maps.Keys(conns)), ", "))
		}
		if c.err != nil {
			return nil, fmt.Errorf("server %s: %w", p.Server, c.err)
		}
		if least := o.MinPollInterval; time.Duration(p.PollInterval) < least {
			return nil, fmt.Errorf("poll_interval: %s is below the minimum %s", p.PollInterval, model.Duration(least))
		}
		return &Action{p: *p, conn: c, queued: queued, logger: slog.New(c.redactor.Handler(logger.Handler()))}, nil
	})
}

// Action is a configured jenkins.build step. It is safe for concurrent use.
type Action struct {
	p    Params
	conn *conn
	// queued remembers the queue items triggers got, to recognise Jenkins
	// merging a trigger into one of them.
	queued *recent
	logger *slog.Logger
}

// MaxDuration is how long the step may take: the wait for the build when
// wait is set, else the trigger alone (bounded by the server's timeout).
func (p *Params) MaxDuration() time.Duration {
	if p.Wait {
		return time.Duration(p.Timeout)
	}
	return time.Minute
}
