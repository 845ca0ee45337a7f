// Package exec owns the "exec" action: it runs a command from an argument
// list — never through a shell — with the alert in its environment, in a
// process group of its own that is killed as a whole on timeout or
// cancellation.
package exec

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
)

// ID is the action type id of exec steps.
const ID = "exec"

const summary = "Run a command from an argument list (no shell), with the alert in its environment and a timeout."

const example = `- name: cleanup
  action: exec
  with:
    command: [/usr/local/bin/cleanup, --host, '{{ .Labels.instance }}']
    env:
      REASON: '{{ .Annotations.summary }}'
    dir: /var/lib/selfheal
    timeout: 5m
    retryable_exit_codes: [75]   # EX_TEMPFAIL: the step may be retried
`

// Params are the parameters of an exec step.
type Params struct {
	// Command is the argument vector, each element a template. Command[0]
	// must render to an absolute path or to a bare name found on the
	// command's PATH when the step runs.
	Command []actions.Template `yaml:"command" doc:"required; argv, each element a template; command[0] is an absolute path or a name on PATH; never a shell"`
	// Env adds variables to the command's environment, after (and so
	// overriding) the inherited and SELFHEAL_* ones.
	Env map[string]actions.Template `yaml:"env" doc:"extra environment variables (templates); the child gets only PATH, HOME, LANG, TZ from the daemon plus SELFHEAL_* alert variables"`
	// Dir is the working directory, an absolute path. Empty means the
	// daemon's working directory.
	Dir string `yaml:"dir" doc:"working directory, an absolute path (default: the daemon's)"`
	// Timeout bounds the command; when it passes the process group is
	// killed and the step fails permanently.
	Timeout model.Duration `yaml:"timeout" doc:"the whole process group is killed when it passes"`
	// RetryableExitCodes are the exit codes that mean "try again", such as
	// 75 (EX_TEMPFAIL). Any other non-zero exit fails permanently.
	RetryableExitCodes []int `yaml:"retryable_exit_codes" doc:"exit codes that mean try again (e.g. 75); other non-zero exits fail"`
}

// DefaultParams returns the parameters with their defaults: a timeout of
// one minute, no retryable exit codes.
func DefaultParams() *Params {
	return &Params{Timeout: model.Duration(time.Minute)}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; "; what a label could steer (steer.go) comes
// after, as one *actions.ParamError per parameter.
func (p *Params) Validate() error {
	var probs []string
	if len(p.Command) == 0 {
		probs = append(probs, "command: must not be empty")
	} else if c0 := p.Command[0].String(); c0 == "" {
		probs = append(probs, "command[0]: must not be empty")
	} else if !strings.Contains(c0, "{{") && !filepath.IsAbs(c0) && strings.ContainsRune(c0, '/') {
		probs = append(probs, fmt.Sprintf("command[0]: %q must be an absolute path or a bare name looked up on PATH", c0))
	}
	for _, name := range sortedKeys(p.Env) {
		if !validEnvName(name) {
			probs = append(probs, fmt.Sprintf("env: invalid variable name %q", name))
		}
	}
	if p.Dir != "" && !filepath.IsAbs(p.Dir) {
		probs = append(probs, fmt.Sprintf("dir: %q must be an absolute path", p.Dir))
	}
	if p.Timeout <= 0 {
		probs = append(probs, "timeout: must be greater than 0")
	}
	for i, c := range p.RetryableExitCodes {
		if c < 1 || c > 255 {
			probs = append(probs, fmt.Sprintf("retryable_exit_codes[%d]: %d is not a failing exit code (1..255)", i, c))
		}
	}
	errs := p.steerErrors()
	if len(probs) > 0 {
		errs = append([]error{fmt.Errorf("%s", strings.Join(probs, "; "))}, errs...)
	}
	return errors.Join(errs...)
}

// Spec returns the exec action type. The actions it builds log to logger
// (nil discards).
func Spec(logger *slog.Logger) actions.Spec {
	return actions.Typed(ID, summary, example, DefaultParams, func(p *Params) (actions.Action, error) {
		return New(p, logger)
	})
}

// Action is a configured exec step. It is safe for concurrent use: each Run
// starts its own process.
type Action struct {
	p      Params
	logger *slog.Logger
}

// New builds an exec action from p, which it validates. The action logs to
// logger; nil discards.
func New(p *Params, logger *slog.Logger) (*Action, error) {
	if p == nil {
		return nil, fmt.Errorf("exec: nil params")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Action{p: *p, logger: logger.With("component", "actions/exec")}, nil
}

// timeout returns the configured timeout as a time.Duration.
func (a *Action) timeout() time.Duration { return time.Duration(a.p.Timeout) }

// retryable reports whether exit code means "try again".
func (a *Action) retryable(code int) bool {
	return slices.Contains(a.p.RetryableExitCodes, code)
}

// MaxDuration is the command's own timeout.
func (p *Params) MaxDuration() time.Duration { return time.Duration(p.Timeout) }
