package kubernetes

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
)

// Restart modes.
const (
	ModeEvict   = "evict"
	ModeDelete  = "delete"
	ModeRollout = "rollout"
)

// Defaults of the restart parameters.
const (
	DefaultRestartTimeout   = 2 * time.Minute
	DefaultPDBRetryInterval = 5 * time.Second
	// maxPDBRetryInterval caps the doubling wait between evictions a
	// budget refused.
	maxPDBRetryInterval = 30 * time.Second
)

const restartSummary = "Restart the alert's pod: evict it (PodDisruptionBudgets respected, waited out until the timeout), " +
	"delete it (UID precondition), or rollout-restart its Deployment, StatefulSet or DaemonSet."

const restartExample = `- name: evict-leaking-pod
  action: kubernetes.restart
  with:
    mode: evict
    namespace: '{{ .Labels.namespace }}'
    pod: '{{ .Labels.pod }}'
    timeout: 2m              # how long a PodDisruptionBudget may block
    pdb_retry_interval: 5s
- name: restart-workload
  action: kubernetes.restart
  with:
    mode: rollout            # restartedAt patch on the pod's Deployment/StatefulSet/DaemonSet
- name: restart-named-deployment
  action: kubernetes.restart
  with:
    mode: rollout
    namespace: shop
    kind: Deployment
    name: '{{ .Labels.deployment }}'
`

// RestartParams are the parameters of a kubernetes.restart step.
type RestartParams struct {
	// Mode is evict, delete or rollout.
	Mode string `yaml:"mode" doc:"evict: Eviction API, PodDisruptionBudgets respected; delete: DELETE with a UID precondition; rollout: restartedAt patch of the owning Deployment, StatefulSet or DaemonSet"`
	// Namespace is the namespace of the pod or workload.
	Namespace actions.Template `yaml:"namespace" doc:"template"`
	// Pod names the pod. With kind and name (mode rollout), leave it at
	// its default: it is then not used.
	Pod actions.Template `yaml:"pod" doc:"template; not used when kind and name are set"`
	// UID, when set, is the UID the pod must have (kube-state-metrics'
	// uid label): a pod that replaced it under the same name is refused.
	UID actions.Template `yaml:"uid" doc:"optional template: the UID the pod must have (e.g. '{{ .Labels.uid }}'); another pod under the same name is refused"`
	// Kind and Name name a workload to restart directly (mode rollout).
	Kind actions.Template `yaml:"kind" doc:"template, mode rollout only: Deployment, StatefulSet or DaemonSet, with name, instead of a pod"`
	Name actions.Template `yaml:"name" doc:"template, mode rollout only: the workload's name, with kind"`
	// AllowBarePods lets evict and delete act on a pod without a
	// controller: it is then gone for good.
	AllowBarePods bool `yaml:"allow_bare_pods" doc:"evict or delete pods that have no controller (nothing recreates them)"`
	// GracePeriod overrides the pod's terminationGracePeriodSeconds (evict
	// and delete); whole seconds, rounded up, at least one.
	GracePeriod *model.Duration `yaml:"grace_period" doc:"optional, evict and delete: overrides the pod's terminationGracePeriodSeconds; whole seconds, at least 1s (never a force deletion)"`
	// Timeout bounds the step: for evict, how long a PodDisruptionBudget
	// that refuses the eviction is waited out.
	Timeout model.Duration `yaml:"timeout" doc:"bounds the step; evict keeps retrying an eviction a PodDisruptionBudget refuses until then, then fails (retryable)"`
	// PDBRetryInterval is the first wait after a refused eviction; it
	// doubles up to 30s, and is never shorter than the Retry-After the
	// API server asks for.
	PDBRetryInterval model.Duration `yaml:"pdb_retry_interval" doc:"first wait after an eviction a PodDisruptionBudget refused (429); doubles up to 30s; at least the server's Retry-After"`
}

// DefaultRestartParams returns the restart parameters with their defaults:
// evict the pod named by the alert's namespace and pod labels, refusing
// bare pods, for up to 2m, retrying a refused eviction after 5s first.
func DefaultRestartParams() *RestartParams {
	return &RestartParams{
		Mode:             ModeEvict,
		Namespace:        actions.MustTemplate(DefaultNamespace),
		Pod:              actions.MustTemplate(DefaultPod),
		Timeout:          model.Duration(DefaultRestartTimeout),
		PDBRetryInterval: model.Duration(DefaultPDBRetryInterval),
	}
}

// workloadTarget reports whether kind and name name the target instead of
// a pod.
func (p *RestartParams) workloadTarget() bool { return !p.Kind.IsZero() || !p.Name.IsZero() }

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *RestartParams) Validate() error {
	var probs problems
	switch p.Mode {
	case ModeEvict, ModeDelete, ModeRollout:
	default:
		probs.addf("mode: %q is not one of evict, delete, rollout", p.Mode)
	}
	validateStatic(&probs, "namespace", p.Namespace, true, checkNamespace)
	if p.workloadTarget() {
		validateTarget(&probs, p.Pod, p.Kind, p.Name, KindDeployment, KindStatefulSet, KindDaemonSet)
		if p.Mode != ModeRollout && p.Mode != "" {
			probs.addf("kind, name: only mode rollout restarts a workload; evict and delete need a pod")
		}
		if !p.UID.IsZero() {
			probs.addf("uid: names a pod's UID; not used with kind and name")
		}
	} else {
		validateStatic(&probs, "pod", p.Pod, true, checkName)
	}
	if p.GracePeriod != nil {
		switch {
		case p.Mode == ModeRollout:
			probs.addf("grace_period: only for modes evict and delete; a rollout uses the pods' own grace period")
		case *p.GracePeriod < 0:
			probs.addf("grace_period: must not be negative")
		}
	}
	if p.Timeout <= 0 {
		probs.addf("timeout: must be greater than 0")
	}
	if p.PDBRetryInterval <= 0 {
		probs.addf("pdb_retry_interval: must be greater than 0")
	} else if p.Timeout > 0 && p.PDBRetryInterval > p.Timeout {
		probs.addf("pdb_retry_interval: %s must not exceed timeout %s", p.PDBRetryInterval, p.Timeout)
	}
	return probs.err()
}

// validateTarget checks kind and name when they replace pod. A pod left at
// its default is not used; a pod set as well is ambiguous.
func validateTarget(probs *problems, pod, kind, name actions.Template, kinds ...string) {
	if pod.String() != DefaultPod && !pod.IsZero() {
		probs.addf("pod: set either pod, or kind and name")
	}
	validateStatic(probs, "kind", kind, true, func(s string) string {
		if normalizeKind(s, kinds...) == "" {
			return fmt.Sprintf("%q is not one of %v", s, kinds)
		}
		return ""
	})
	validateStatic(probs, "name", name, true, checkName)
}

// MaxDuration is the step's timeout: a step without its own timeout gets
// this plus a minute.
func (p *RestartParams) MaxDuration() time.Duration { return time.Duration(p.Timeout) }

// gracePeriodSeconds is the grace period to send, or nil. Zero is sent as
// one second, as kubectl does without --force: zero is a force deletion,
// which removes the pod from the API before its containers have stopped
// (a StatefulSet could then run two pods with one identity).
func (p *RestartParams) gracePeriodSeconds() *int64 {
	if p.GracePeriod == nil {
		return nil
	}
	d := time.Duration(*p.GracePeriod)
	s := max(1, int64((d+time.Second-1)/time.Second))
	return &s
}

// RestartSpec returns the kubernetes.restart action type bound to d.
func RestartSpec(d Deps) actions.Spec {
	d = d.withDefaults()
	return actions.Typed(RestartID, restartSummary, restartExample, DefaultRestartParams, func(p *RestartParams) (actions.Action, error) {
		if d.Client == nil {
			return nil, ErrNotConfigured
		}
		return &Restart{p: *p, client: d.Client, now: d.Now, logger: d.Logger}, nil
	})
}

// Restart is a configured kubernetes.restart step. It is safe for
// concurrent use.
type Restart struct {
	p      RestartParams
	client clientset.Interface
	now    func() time.Time
	logger *slog.Logger
}

// restartTarget is the rendered target of a run.
type restartTarget struct {
	namespace string
	pod       string    // "" with kind and name
	uid       types.UID // "" when the step names none
	kind      string
	name      string
}

func (t restartTarget) String() string {
	if t.pod == "" {
		return fmt.Sprintf("%s %s/%s", t.kind, t.namespace, t.name)
	}
	return fmt.Sprintf("pod %s/%s", t.namespace, t.pod)
}

// render renders the target's templates for t and checks the values.
func (a *Restart) render(t actions.Target) (restartTarget, error) {
	var r restartTarget
	var err error
	if r.namespace, err = renderChecked("namespace", a.p.Namespace, t, checkNamespace); err != nil {
		return r, err
	}
	if a.p.workloadTarget() {
		r.kind, r.name, err = renderWorkload(a.p.Kind, a.p.Name, t, KindDeployment, KindStatefulSet, KindDaemonSet)
		return r, err
	}
	if r.pod, err = renderChecked("pod", a.p.Pod, t, checkName); err != nil {
		return r, err
	}
	if !a.p.UID.IsZero() {
		uid, err := renderChecked("uid", a.p.UID, t, func(s string) string {
			if s == "" {
				return "renders empty"
			}
			return ""
		})
		if err != nil {
			return r, err
		}
		r.uid = types.UID(uid)
	}
	return r, nil
}

// renderWorkload renders kind and name and checks them.
func renderWorkload(kindT, nameT actions.Template, t actions.Target, kinds ...string) (kind, name string, err error) {
	k, err := renderChecked("kind", kindT, t, func(s string) string {
		if normalizeKind(s, kinds...) == "" {
			return fmt.Sprintf("%q is not one of %v", s, kinds)
		}
		return ""
	})
	if err != nil {
		return "", "", err
	}
	if name, err = renderChecked("name", nameT, t, checkName); err != nil {
		return "", "", err
	}
	return normalizeKind(k, kinds...), name, nil
}
