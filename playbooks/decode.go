package playbooks

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/strictyaml"
)

// MaxRetries bounds Step.Retries.
const MaxRetries = 10

// nameRE is what playbook and step names look like: they end up in metric
// labels, run records and URLs.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// rawPlaybook is one entry of `playbooks`. Every field stays a node so its
// position is known when its value is wrong, and one bad field does not
// hide the errors of the others.
type rawPlaybook struct {
	Name        *yaml.Node `yaml:"name"`
	Description *yaml.Node `yaml:"description"`
	Match       *yaml.Node `yaml:"match"`
	On          *yaml.Node `yaml:"on"`
	DryRun      *yaml.Node `yaml:"dry_run"`
	Steps       *yaml.Node `yaml:"steps"`

	Delay       *yaml.Node `yaml:"delay"`
	RepeatAfter *yaml.Node `yaml:"repeat_after"`
	Windows     *yaml.Node `yaml:"windows"`
	Blackouts   *yaml.Node `yaml:"blackouts"`
	Limits      *yaml.Node `yaml:"limits"`
	Verify      *yaml.Node `yaml:"verify"`
	OnFailure   *yaml.Node `yaml:"on_failure"`
}

// rawStep is one entry of a playbook's `steps`.
type rawStep struct {
	Name    *yaml.Node `yaml:"name"`
	Action  *yaml.Node `yaml:"action"`
	With    *yaml.Node `yaml:"with"`
	Timeout *yaml.Node `yaml:"timeout"`
	Retries *yaml.Node `yaml:"retries"`
	// ContinueOnError lets the run go on past a failure of this step.
	ContinueOnError *yaml.Node `yaml:"continue_on_error"`
	// SafeToRetry marks the step idempotent, for take-over in a cluster.
	SafeToRetry *yaml.Node `yaml:"safe_to_retry"`
}

// rawVerify is a playbook's `verify`.
type rawVerify struct {
	ResolvedWithin *yaml.Node `yaml:"resolved_within"`
}

// playbooks builds the entries of a file's `playbooks` list.
func (p *parser) playbooks(nodes []*yaml.Node) []*Playbook {
	seen := map[string]*yaml.Node{}
	out := make([]*Playbook, 0, len(nodes))
	for i, n := range nodes {
		if pb := p.playbook(n, fmt.Sprintf("playbooks[%d]", i), seen); pb != nil {
			out = append(out, pb)
		}
	}
	return out
}

func (p *parser) playbook(n *yaml.Node, path string, seen map[string]*yaml.Node) *Playbook {
	if !p.mapping(n, path) {
		return nil
	}
	var raw rawPlaybook
	p.decode(n, path, &raw)
	pb := &Playbook{On: alert.Firing, Source: p.file, Revision: p.revision}
	var at *yaml.Node
	pb.Name, at = p.name(n, raw.Name, path, "playbook", seen)
	if at != nil {
		pb.Pos = Position{Line: at.Line, Column: at.Column}
	}
	if present(raw.Description) {
		p.decode(raw.Description, path+".description", &pb.Description)
	}
	pb.Matchers = p.matchers(n, raw.Match, path)
	if present(raw.On) {
		var on string
		if p.decode(raw.On, path+".on", &on) {
			if pb.On = alert.Status(on); !pb.On.Valid() {
				p.errorf(raw.On, path+".on", "must be %q or %q, got %q", alert.Firing, alert.Resolved, on)
			}
		}
	}
	if present(raw.DryRun) {
		p.decode(raw.DryRun, path+".dry_run", &pb.DryRun)
	}
	pb.Delay = p.delay(raw.Delay, path+".delay", pb.On)
	pb.RepeatAfter = p.repeatAfter(raw.RepeatAfter, path+".repeat_after", pb.On)
	pb.Windows = p.windows(raw.Windows, path+".windows")
	pb.Blackouts = p.windows(raw.Blackouts, path+".blackouts")
	pb.Limits = p.limits(raw.Limits, path+".limits")
	pb.Verify = p.verify(raw.Verify, path+".verify", pb.On)
	pb.Steps = p.steps(n, raw.Steps, path)
	if present(raw.OnFailure) && !(raw.OnFailure.Kind == yaml.SequenceNode && len(raw.OnFailure.Content) == 0) {
		pb.OnFailure = p.stepList(raw.OnFailure, path+".on_failure")
	}
	return pb
}

// mapping reports whether n is a mapping, recording an error if not.
func (p *parser) mapping(n *yaml.Node, path string) bool {
	switch {
	case n.Kind == yaml.MappingNode:
		return true
	case strictyaml.IsNull(n):
		p.errorf(n, path, "expected a mapping, got nothing")
	case n.Kind == yaml.SequenceNode:
		p.errorf(n, path, "expected a mapping, got a list")
	default:
		p.errorf(n, path, "expected a mapping, got %q", n.Value)
	}
	return false
}

// required reports whether field, whose value is n in mapping m, is given.
func (p *parser) required(m, n *yaml.Node, path, field string) bool {
	switch {
	case n == nil:
		p.errorf(m, path, "missing required field %q", field)
	case strictyaml.IsNull(n):
		p.errorf(n, path+"."+field, "must not be empty")
	default:
		return true
	}
	return false
}

// name decodes the required name n of mapping m and checks it is valid and
// not in seen, where it then goes. It returns the name and its node, or ""
// and nil when the name is unusable.
func (p *parser) name(m, n *yaml.Node, path, kind string, seen map[string]*yaml.Node) (string, *yaml.Node) {
	if !p.required(m, n, path, "name") {
		return "", nil
	}
	path += ".name"
	var name string
	if !p.decode(n, path, &name) {
		return "", nil
	}
	if !nameRE.MatchString(name) {
		p.errorf(n, path, "invalid name %q: use lowercase letters, digits and '-', starting and ending with a letter or digit", name)
		return "", nil
	}
	if first, ok := seen[name]; ok {
		p.errorf(n, path, "%s %q is already defined at %s:%d:%d", kind, name, p.file, first.Line, first.Column)
		return "", nil
	}
	seen[name] = n
	return name, n
}

// matchers decodes `match`: a list of Alertmanager matchers, one per entry.
func (p *parser) matchers(m, n *yaml.Node, path string) labels.Matchers {
	if !p.required(m, n, path, "match") {
		return nil
	}
	path += ".match"
	var items []*yaml.Node
	if !p.decode(n, path, &items) {
		return nil
	}
	if len(items) == 0 {
		p.errorf(n, path, "at least one matcher is required")
		return nil
	}
	ms := make(labels.Matchers, 0, len(items))
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		var s string
		if !p.decode(item, ipath, &s) {
			continue
		}
		m, err := parse.Matcher(s)
		if err != nil {
			p.errorf(item, ipath, "invalid matcher %q: %v", s, err)
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// verify decodes a playbook's `verify`: only a playbook acting on firing
// alerts can wait for them to resolve.
func (p *parser) verify(n *yaml.Node, path string, on alert.Status) *Verify {
	if !present(n) || !p.mapping(n, path) {
		return nil
	}
	var raw rawVerify
	if !p.decode(n, path, &raw) {
		return nil
	}
	if !p.required(n, raw.ResolvedWithin, path, "resolved_within") {
		return nil
	}
	var d model.Duration
	if !p.decode(raw.ResolvedWithin, path+".resolved_within", &d) {
		return nil
	}
	switch {
	case d <= 0:
		p.errorf(raw.ResolvedWithin, path+".resolved_within", "must be greater than 0")
	case on == alert.Resolved:
		p.errorf(n, path, "a playbook that acts on resolved alerts cannot wait for them to resolve")
	default:
		return &Verify{ResolvedWithin: time.Duration(d)}
	}
	return nil
}

// steps decodes `steps` of the playbook m.
func (p *parser) steps(m, n *yaml.Node, path string) []Step {
	if !p.required(m, n, path, "steps") {
		return nil
	}
	return p.stepList(n, path+".steps")
}

// stepList decodes a list of steps (`steps`, `on_failure`) at path.
func (p *parser) stepList(n *yaml.Node, path string) []Step {
	var items []*yaml.Node
	if !p.decode(n, path, &items) {
		return nil
	}
	if len(items) == 0 {
		p.errorf(n, path, "at least one step is required")
		return nil
	}
	seen := map[string]*yaml.Node{}
	steps := make([]Step, 0, len(items))
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if p.mapping(item, ipath) {
			steps = append(steps, p.step(item, ipath, seen))
		}
	}
	return steps
}

func (p *parser) step(n *yaml.Node, path string, seen map[string]*yaml.Node) Step {
	var raw rawStep
	p.decode(n, path, &raw)
	s := Step{Timeout: DefaultStepTimeout}
	s.Name, _ = p.name(n, raw.Name, path, "step", seen)
	if present(raw.Timeout) {
		var d model.Duration
		if p.decode(raw.Timeout, path+".timeout", &d) {
			if d <= 0 {
				p.errorf(raw.Timeout, path+".timeout", "must be greater than 0")
			} else {
				s.Timeout = time.Duration(d)
			}
		}
	}
	if present(raw.Retries) {
		s.Retries = p.retries(raw.Retries, path+".retries")
	}
	if present(raw.ContinueOnError) {
		p.decode(raw.ContinueOnError, path+".continue_on_error", &s.ContinueOnError)
	}
	if present(raw.SafeToRetry) {
		p.decode(raw.SafeToRetry, path+".safe_to_retry", &s.SafeToRetry)
	}
	s.ActionID, s.Action, s.Params = p.action(n, raw, path)
	if b, ok := s.Params.(actions.Bounded); ok {
		need := b.MaxDuration()
		switch {
		case !present(raw.Timeout):
			s.Timeout = max(DefaultStepTimeout, need+time.Minute)
		case s.Timeout < need:
			p.errorf(raw.Timeout, path+".timeout", "%s is shorter than the %s the %s action may take; the step would be cut off", model.Duration(s.Timeout), model.Duration(need), s.ActionID)
		}
	}
	return s
}

// retries decodes a step's retries. yaml.v3 would truncate 1.5 to 1, so
// anything but an integer is refused first.
func (p *parser) retries(n *yaml.Node, path string) int {
	var r int
	switch {
	case n.ShortTag() != "!!int":
		p.errorf(n, path, "must be a whole number, got %q", n.Value)
	case !p.decode(n, path, &r):
	case r < 0 || r > MaxRetries:
		p.errorf(n, path, "must be between 0 and %d, got %d", MaxRetries, r)
	default:
		return r
	}
	return 0
}

// action builds the step's action from its `with` through the registry.
func (p *parser) action(m *yaml.Node, raw rawStep, path string) (string, actions.Action, actions.Params) {
	if !p.required(m, raw.Action, path, "action") {
		return "", nil, nil
	}
	var id string
	if !p.decode(raw.Action, path+".action", &id) {
		return "", nil, nil
	}
	with := raw.With
	if !present(with) {
		// An empty `with` at the step's position, so that parameters the
		// action requires are reported there.
		with = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: m.Line, Column: m.Column}
	}
	a, params, err := p.reg.Build(p.file, path+".with", id, with)
	if errors.Is(err, actions.ErrUnknown) {
		p.errorf(raw.Action, path+".action", "%v", err)
		return id, nil, nil
	}
	p.add(err)
	return id, a, params
}
