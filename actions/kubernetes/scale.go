package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/selfheal/selfheal/actions"
)

// MaxReplicas bounds the replicas a step may ask for, against typos.
const MaxReplicas = 10000

const scaleSummary = "Set the replicas of a Deployment or StatefulSet through its scale subresource (0 only with allow_zero)."

const scaleExample = `- name: add-workers
  action: kubernetes.scale
  with:
    namespace: '{{ .Labels.namespace }}'
    kind: Deployment
    name: '{{ .Labels.deployment }}'
    replicas: 5
`

// ScaleParams are the parameters of a kubernetes.scale step.
type ScaleParams struct {
	Namespace actions.Template `yaml:"namespace" doc:"template"`
	// Kind is Deployment or StatefulSet.
	Kind actions.Template `yaml:"kind" doc:"required; template: Deployment or StatefulSet"`
	Name actions.Template `yaml:"name" doc:"required; template: the workload's name"`
	// Replicas is the absolute number of replicas to set.
	Replicas *int32 `yaml:"replicas" doc:"required: the number of replicas to set (absolute)"`
	// AllowZero allows replicas: 0, which stops the workload.
	AllowZero bool `yaml:"allow_zero" doc:"allow replicas: 0 (stops every pod of the workload)"`
}

// DefaultScaleParams returns the scale parameters with their defaults: the
// namespace from the alert's namespace label, scaling to zero refused.
func DefaultScaleParams() *ScaleParams {
	return &ScaleParams{Namespace: actions.MustTemplate(DefaultNamespace)}
}

// Validate checks the parameters without rendering them. Every problem is
// reported, separated by "; ".
func (p *ScaleParams) Validate() error {
	var probs problems
	validateStatic(&probs, "namespace", p.Namespace, true, checkNamespace)
	validateTarget(&probs, actions.Template{}, p.Kind, p.Name, KindDeployment, KindStatefulSet)
	switch {
	case p.Replicas == nil:
		probs.addf("replicas: must be set")
	case *p.Replicas < 0 || *p.Replicas > MaxReplicas:
		probs.addf("replicas: %d is not between 0 and %d", *p.Replicas, MaxReplicas)
	case *p.Replicas == 0 && !p.AllowZero:
		probs.addf("replicas: 0 stops the workload; set allow_zero: true to allow it")
	}
	return probs.err()
}

// ScaleSpec returns the kubernetes.scale action type bound to d.
func ScaleSpec(d Deps) actions.Spec {
	d = d.withDefaults()
	return actions.Typed(ScaleID, scaleSummary, scaleExample, DefaultScaleParams, func(p *ScaleParams) (actions.Action, error) {
		if d.Client == nil {
			return nil, ErrNotConfigured
		}
		return &Scale{p: *p, client: d.Client, logger: d.Logger}, nil
	})
}

// Scale is a configured kubernetes.scale step. It is safe for concurrent
// use.
type Scale struct {
	p      ScaleParams
	client clientset.Interface
	logger *slog.Logger
}

// scaleState is what a plan and a run read: the workload and its scale.
type scaleState struct {
	w     *workload
	scale *autoscalingv1.Scale
}

// read renders the target, reads the workload (its identity and
// controller) and its scale subresource, and applies the guards.
func (a *Scale) read(ctx context.Context, t actions.Target) (scaleState, map[string]string, error) {
	var st scaleState
	ns, err := renderChecked("namespace", a.p.Namespace, t, checkNamespace)
	if err != nil {
		return st, nil, err
	}
	kind, name, err := renderWorkload(a.p.Kind, a.p.Name, t, KindDeployment, KindStatefulSet)
	if err != nil {
		return st, nil, err
	}
	target := *a.p.Replicas
	d := map[string]string{"namespace": ns, "owner": kind + "/" + name, "replicas": strconv.Itoa(int(target)),
		"call": appsCall("update", resources[kind], "scale", ns, name).String()}
	if st.w, err = getWorkload(ctx, a.client, kind, ns, name); err != nil {
		return st, d, err
	}
	d["owner_uid"] = string(st.w.UID)
	if m := st.w.managedBy(); m != "" {
		return st, d, fmt.Errorf("%w: %s is managed by %s, which sets its replicas and would revert the change; scale through it instead",
			ErrManaged, st.w, m)
	}
	if st.scale, err = a.getScale(ctx, st.w); err != nil {
		return st, d, err
	}
	d["current_replicas"] = strconv.Itoa(int(st.scale.Spec.Replicas))
	return st, d, nil
}

func (a *Scale) getScale(ctx context.Context, w *workload) (*autoscalingv1.Scale, error) {
	var s *autoscalingv1.Scale
	var err error
	if w.Kind == KindStatefulSet {
		s, err = a.client.AppsV1().StatefulSets(w.Namespace).GetScale(ctx, w.Name, metav1.GetOptions{})
	} else {
		s, err = a.client.AppsV1().Deployments(w.Namespace).GetScale(ctx, w.Name, metav1.GetOptions{})
	}
	return s, appsCall("get", resources[w.Kind], "scale", w.Namespace, w.Name).check(err)
}

func (a *Scale) updateScale(ctx context.Context, w *workload, s *autoscalingv1.Scale) error {
	opts := metav1.UpdateOptions{FieldManager: FieldManager}
	var err error
	if w.Kind == KindStatefulSet {
		_, err = a.client.AppsV1().StatefulSets(w.Namespace).UpdateScale(ctx, w.Name, s, opts)
	} else {
		_, err = a.client.AppsV1().Deployments(w.Namespace).UpdateScale(ctx, w.Name, s, opts)
	}
	return appsCall("update", resources[w.Kind], "scale", w.Namespace, w.Name).check(err)
}

// Plan says what Run would do now: the workload with its UID, its current
// replicas, the target and the request. It only reads.
func (a *Scale) Plan(ctx context.Context, t actions.Target) (actions.Plan, error) {
	st, d, err := a.read(ctx, t)
	if err != nil {
		if d != nil && refusal(err) {
			return refusePlan(err, planParams(d)), nil
		}
		return actions.Plan{}, fmt.Errorf("%s: %w", ScaleID, err)
	}
	target, cur := *a.p.Replicas, st.scale.Spec.Replicas
	details := []string{
		fmt.Sprintf("%s: UID %s, spec.replicas %d now, %d pods observed", st.w.call("get"), st.w.UID, cur, st.scale.Status.Replicas),
	}
	if cur == target {
		return actions.Plan{Summary: fmt.Sprintf("nothing: %s already has %d replicas", st.w, target), Params: planParams(d),
			Details: append(details, "Run would send no write")}, nil
	}
	details = append(details,
		fmt.Sprintf("%s with spec.replicas=%d and the resourceVersion read (a conflict is read again and retried)", d["call"], target),
		"a HorizontalPodAutoscaler targeting the workload would override the count")
	return actions.Plan{Summary: fmt.Sprintf("scale %s from %d to %d replicas", st.w, cur, target), Params: planParams(d), Details: details}, nil
}

// conflictRetry is how often Run reads and writes the scale when the
// write conflicts (someone else changed it in between): 3 tries, 10ms
// apart, as client-go's retry.DefaultRetry spaces them.
var conflictRetry = wait.Backoff{Steps: 3, Duration: 10 * time.Millisecond, Factor: 1, Jitter: 0.1}

// Run sets the replicas. A conflict (someone else scaled in between) is
// read again and retried a few times (conflictRetry), since the target is
// absolute; conflicting every time fails retryable.
func (a *Scale) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	var (
		res actions.Result
		err error
	)
	_ = retry.RetryOnConflict(conflictRetry, func() error {
		res, err = a.scaleOnce(ctx, t)
		return err
	})
	// err, not what RetryOnConflict returns: after a conflict, it would
	// answer that conflict for an error wrapping the run's cancellation.
	return res, err
}

// scaleOnce reads the workload and its scale and writes the target
// replicas once, unless they are already set.
func (a *Scale) scaleOnce(ctx context.Context, t actions.Target) (actions.Result, error) {
	target := *a.p.Replicas
	st, d, err := a.read(ctx, t)
	if err != nil {
		return actions.Result{Details: d}, fmt.Errorf("%s: %w", ScaleID, err)
	}
	from := st.scale.Spec.Replicas
	if from == target {
		d["outcome"] = "unchanged"
		return actions.Result{Summary: fmt.Sprintf("%s already has %d replicas", st.w, target), Details: d}, nil
	}
	s := st.scale.DeepCopy()
	s.Spec.Replicas = target
	if err := a.updateScale(ctx, st.w, s); err != nil {
		return actions.Result{Details: d}, fmt.Errorf("scale %s: %w", st.w, err)
	}
	d["outcome"] = "scaled"
	a.logger.Info("workload scaled", "playbook", t.Playbook, "step", t.Step, "run", t.Run,
		"owner", st.w.ref(), "namespace", st.w.Namespace, "from", from, "to", target)
	return actions.Result{Summary: fmt.Sprintf("scaled %s from %d to %d replicas", st.w, from, target), Details: d,
		Touched: []actions.ObjectRef{st.w.objectRef()}}, nil
}
