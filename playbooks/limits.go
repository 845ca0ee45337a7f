package playbooks

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
)

// Limits bound how often a playbook runs, per key (DESIGN §4). They are
// counted from the execution log, so they survive restarts.
type Limits struct {
	// Key is what the limits count per, rendered for each alert, like
	// '{{ .Labels.instance }}'. The zero Template means the playbook as a
	// whole: every run counts under one key, the playbook's name.
	Key actions.Template
	// MaxRuns runs per Per at most, for one key; 0 means no such limit.
	MaxRuns int
	Per     time.Duration
	// Cooldown is the least time between two runs for one key, from claim
	// to claim; 0 means none.
	Cooldown time.Duration
	// Concurrency is how many runs for one key may be claimed or running
	// at once; 0 means no limit.
	Concurrency int
}

// rawLimits is a playbook's `limits`.
type rawLimits struct {
	Key         *yaml.Node `yaml:"key"`
	MaxRuns     *yaml.Node `yaml:"max_runs"`
	Per         *yaml.Node `yaml:"per"`
	Cooldown    *yaml.Node `yaml:"cooldown"`
	Concurrency *yaml.Node `yaml:"concurrency"`
}

// limits decodes a playbook's `limits`; nil when there are none.
func (p *parser) limits(n *yaml.Node, path string) *Limits {
	if !present(n) || !p.mapping(n, path) || len(n.Content) == 0 {
		return nil // limits: {} is no limits, as leaving it out
	}
	var raw rawLimits
	if !p.decode(n, path, &raw) {
		return nil
	}
	l := &Limits{}
	if present(raw.Key) {
		var src string
		if p.decode(raw.Key, path+".key", &src) {
			t, err := actions.ParseTemplate(src)
			switch {
			case err != nil:
				p.errorf(raw.Key, path+".key", "%v", err)
			case src == "":
				p.errorf(raw.Key, path+".key", "must not be empty; leave it out to count per playbook")
			default:
				l.Key = t
			}
		}
	}
	if present(raw.MaxRuns) {
		l.MaxRuns = p.count(raw.MaxRuns, path+".max_runs")
	}
	if present(raw.Per) {
		l.Per = p.positive(raw.Per, path+".per")
	}
	if present(raw.Cooldown) {
		l.Cooldown = p.positive(raw.Cooldown, path+".cooldown")
	}
	if present(raw.Concurrency) {
		l.Concurrency = p.count(raw.Concurrency, path+".concurrency")
	}
	switch {
	case present(raw.MaxRuns) && !present(raw.Per):
		p.errorf(raw.MaxRuns, path+".max_runs", "needs per: the window it counts runs in, like per: 1h")
	case present(raw.Per) && !present(raw.MaxRuns):
		p.errorf(raw.Per, path+".per", "needs max_runs: how many runs per %s", raw.Per.Value)
	case !present(raw.MaxRuns) && !present(raw.Cooldown) && !present(raw.Concurrency):
		p.errorf(n, path, "set max_runs with per, cooldown or concurrency: a key alone limits nothing")
	}
	return l
}

// count decodes a whole number of at least 1.
func (p *parser) count(n *yaml.Node, path string) int {
	var v int
	switch {
	case n.ShortTag() != "!!int":
		p.errorf(n, path, "must be a whole number, got %q", n.Value)
	case !p.decode(n, path, &v):
	case v < 1:
		p.errorf(n, path, "must be at least 1, got %d", v)
	default:
		return v
	}
	return 0
}

// positive decodes a duration greater than 0.
func (p *parser) positive(n *yaml.Node, path string) time.Duration {
	var d model.Duration
	if !p.decode(n, path, &d) {
		return 0
	}
	if d <= 0 {
		p.errorf(n, path, "must be greater than 0")
		return 0
	}
	return time.Duration(d)
}

// String describes the limits for plans and dry-run, like
// "at most 3 runs per 1h, 15m apart, 1 at a time, per {{ .Labels.instance }}".
func (l *Limits) String() string {
	s := ""
	add := func(part string) {
		if s != "" {
			s += ", "
		}
		s += part
	}
	if l.MaxRuns > 0 {
		add(fmt.Sprintf("at most %d per %s", l.MaxRuns, model.Duration(l.Per)))
	}
	if l.Cooldown > 0 {
		add(fmt.Sprintf("%s apart", model.Duration(l.Cooldown)))
	}
	if l.Concurrency > 0 {
		add(fmt.Sprintf("%d at a time", l.Concurrency))
	}
	if l.Key.IsZero() {
		return s + ", for the whole playbook"
	}
	return s + ", per " + l.Key.String()
}

// delay decodes a playbook's `delay`: a duration of 0 or more, for a
// playbook that acts on firing alerts.
func (p *parser) delay(n *yaml.Node, path string, on alert.Status) time.Duration {
	if !present(n) {
		return 0
	}
	var d model.Duration
	switch {
	case !p.decode(n, path, &d):
	case d < 0:
		p.errorf(n, path, "must be 0 or more")
	case d > 0 && on != alert.Firing:
		p.errorf(n, path, "applies to playbooks that act on firing alerts; a resolved alert has nothing left to wait for")
	default:
		return time.Duration(d)
	}
	return 0
}

// MinRepeatAfter is the shortest repeat_after: each repeat runs the whole
// playbook again.
const MinRepeatAfter = time.Minute

// repeatAfter decodes a playbook's `repeat_after`: 0, or at least
// MinRepeatAfter, for a playbook that acts on firing alerts.
func (p *parser) repeatAfter(n *yaml.Node, path string, on alert.Status) time.Duration {
	if !present(n) {
		return 0
	}
	var d model.Duration
	switch {
	case !p.decode(n, path, &d):
	case d == 0:
	case time.Duration(d) < MinRepeatAfter:
		p.errorf(n, path, "must be 0 (once per episode) or at least %s, got %s", model.Duration(MinRepeatAfter), d)
	case on != alert.Firing:
		p.errorf(n, path, "applies to playbooks that act on firing alerts; a resolved alert does not go on resolving")
	default:
		return time.Duration(d)
	}
	return 0
}
