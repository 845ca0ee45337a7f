package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/selfheal/selfheal/actions"
)

// refusal reports whether err is a guard refusing the action (as opposed
// to a failure to find out): a plan shows those as what Run would do.
func refusal(err error) bool {
	for _, e := range []error{ErrBarePod, ErrReplaced, ErrPaused, ErrOnDelete, ErrUnsupportedOwner, ErrManaged, ErrGuard, ErrNoContainer} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refusePlan is the plan of a step whose guards refuse it: Run would fail
// with err, changing nothing.
func refusePlan(err error, params []actions.Param, details ...string) actions.Plan {
	return actions.Plan{
		Summary: "refuse: " + err.Error(),
		Params:  params,
		Details: append(details, "Run would fail permanently with this error and change nothing"),
	}
}

// planParams turns details into plan parameters, in a fixed key order.
func planParams(d map[string]string) []actions.Param {
	order := []string{"mode", "namespace", "pod", "pod_uid", "controller", "owner", "owner_uid", "kind", "name",
		"container", "call", "grace_period_seconds", "timeout"}
	var ps []actions.Param
	for _, k := range order {
		if v, ok := d[k]; ok && v != "" {
			ps = append(ps, actions.Param{Name: k, Value: v})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if !slices.Contains(order, k) && d[k] != "" {
			ps = append(ps, actions.Param{Name: k, Value: d[k]})
		}
	}
	return ps
}

// Plan says what Run would do now: which pod (with its UID, phase and
// controller) or which workload (found through which owners, with its UID),
// the PodDisruptionBudgets that cover the pod and the disruptions they allow
// now (evict), and the exact request Run would send. It only reads (get,
// list). A guard that would refuse makes a plan whose summary starts with
// "refuse:"; a failure to read is an error.
func (a *Restart) Plan(ctx context.Context, t actions.Target) (actions.Plan, error) {
	r, err := a.render(t)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("%s: %w", RestartID, err)
	}
	if a.p.Mode == ModeRollout {
		return a.planRollout(ctx, r)
	}
	return a.planPod(ctx, r)
}

func (a *Restart) planPod(ctx context.Context, r restartTarget) (actions.Plan, error) {
	d := map[string]string{"mode": a.p.Mode, "namespace": r.namespace, "pod": r.pod, "timeout": a.p.Timeout.String()}
	pod, err := a.preparePod(ctx, r)
	if pod == nil {
		if refusal(err) {
			return refusePlan(err, planParams(d)), nil
		}
		return actions.Plan{}, fmt.Errorf("restart %s: %w", r, err)
	}
	maps.Copy(d, podDetails(pod))
	c := a.podCallFor(pod)
	d["call"] = c.String()
	if g := a.p.gracePeriodSeconds(); g != nil {
		d["grace_period_seconds"] = fmt.Sprint(*g)
	}
	details := []string{podLine(pod)}
	if err != nil {
		return refusePlan(err, planParams(d), details...), nil
	}
	opts := fmt.Sprintf("deleteOptions.preconditions.uid=%s", pod.UID)
	if g := a.p.gracePeriodSeconds(); g != nil {
		opts += fmt.Sprintf(", gracePeriodSeconds=%d", *g)
	}
	if a.p.Mode == ModeDelete {
		details = append(details,
			fmt.Sprintf("%s with %s: PodDisruptionBudgets are not consulted", c, opts),
			"404 counts as done (already gone); 409 means the name now belongs to another pod: refused, nothing is deleted")
		return actions.Plan{Summary: fmt.Sprintf("delete pod %s/%s (UID %s)", pod.Namespace, pod.Name, pod.UID),
			Params: planParams(d), Details: append(details, a.afterLine(pod))}, nil
	}
	details = append(details, a.pdbLines(ctx, pod)...)
	details = append(details,
		fmt.Sprintf("%s (policy/v1 Eviction) with %s", c, opts),
		fmt.Sprintf("200 evicts; 404 counts as done; 409 means the name now belongs to another pod: refused; "+
			"429 (a budget refuses) is retried after %s, doubling up to %s and at least the server's Retry-After, "+
			"until %s have passed, then the step fails (retryable)", a.p.PDBRetryInterval, maxPDBRetryInterval, a.p.Timeout),
		a.afterLine(pod))
	return actions.Plan{Summary: fmt.Sprintf("evict pod %s/%s (UID %s)", pod.Namespace, pod.Name, pod.UID),
		Params: planParams(d), Details: details}, nil
}

// afterLine says what happens to the pod once the request is accepted.
func (a *Restart) afterLine(pod *corev1.Pod) string {
	grace := "its terminationGracePeriodSeconds"
	if g := a.p.gracePeriodSeconds(); g != nil {
		grace = fmt.Sprintf("%ds", *g)
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = fmt.Sprintf("%ds (its terminationGracePeriodSeconds)", *pod.Spec.TerminationGracePeriodSeconds)
	}
	s := fmt.Sprintf("then the pod terminates within %s", grace)
	if c := controllerOf(pod); c != "" {
		return s + " and " + c + " creates a replacement; the step does not wait for it"
	}
	return s + "; it has no controller, so nothing replaces it"
}

// podLine describes the pod as read.
func podLine(pod *corev1.Pod) string {
	ctl := "no controller (a bare pod)"
	if c := controllerOf(pod); c != "" {
		ctl = "controlled by " + c
	}
	s := fmt.Sprintf("%s: UID %s, phase %s, ready %t, node %q, %s",
		podCall("get", "", pod.Namespace, pod.Name), pod.UID, pod.Status.Phase, podReady(pod), pod.Spec.NodeName, ctl)
	if pod.DeletionTimestamp != nil {
		s += ", already terminating since " + pod.DeletionTimestamp.UTC().Format(time.RFC3339)
	}
	return s
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// pdbLines lists the budgets covering pod and predicts, as the API
// server's eviction handler decides, whether an eviction is allowed now.
func (a *Restart) pdbLines(ctx context.Context, pod *corev1.Pod) []string {
	c := call{verb: "list", group: "policy", version: "v1", resource: "poddisruptionbudgets", namespace: pod.Namespace}
	list, err := a.client.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{fmt.Sprintf("PodDisruptionBudgets: not known (%v); the API server applies them at run time", c.check(err))}
	}
	var pdbs []policyv1.PodDisruptionBudget
	for _, p := range list.Items {
		if sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err == nil && p.Spec.Selector != nil &&
			sel.Matches(labels.Set(pod.Labels)) {
			pdbs = append(pdbs, p)
		}
	}
	lines := []string{fmt.Sprintf("%s: %d of %d budgets in the namespace cover the pod", c, len(pdbs), len(list.Items))}
	for _, p := range pdbs {
		lines = append(lines, pdbLine(&p))
	}
	return append(lines, "now: "+predictEviction(pod, pdbs))
}

// pdbLine describes one budget.
func pdbLine(p *policyv1.PodDisruptionBudget) string {
	var spec []string
	if p.Spec.MinAvailable != nil {
		spec = append(spec, "minAvailable "+p.Spec.MinAvailable.String())
	}
	if p.Spec.MaxUnavailable != nil {
		spec = append(spec, "maxUnavailable "+p.Spec.MaxUnavailable.String())
	}
	if p.Spec.UnhealthyPodEvictionPolicy != nil {
		spec = append(spec, "unhealthyPodEvictionPolicy "+string(*p.Spec.UnhealthyPodEvictionPolicy))
	}
	s := p.Status
	return fmt.Sprintf("PodDisruptionBudget %s (%s): allows %d disruptions now (healthy %d, desired %d, expected %d pods)",
		p.Name, strings.Join(spec, ", "), s.DisruptionsAllowed, s.CurrentHealthy, s.DesiredHealthy, s.ExpectedPods)
}

// predictEviction follows the API server's eviction handler
// (pkg/registry/core/pod/storage/eviction.go) on the state read now.
func predictEviction(pod *corev1.Pod, pdbs []policyv1.PodDisruptionBudget) string {
	switch {
	case pod.DeletionTimestamp != nil:
		return "the pod is already terminating: the eviction is allowed without checking budgets"
	case pod.Status.Phase == corev1.PodPending || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return fmt.Sprintf("the pod is %s: the eviction is allowed without checking budgets", pod.Status.Phase)
	case len(pdbs) == 0:
		return "no budget covers the pod: the eviction would be allowed"
	case len(pdbs) > 1:
		return "more than one budget covers the pod: the API server refuses such evictions (500); Run would fail"
	}
	p := pdbs[0]
	s := p.Status
	ready := podReady(pod)
	switch {
	case !ready && s.DesiredHealthy > 0 && s.CurrentHealthy >= s.DesiredHealthy:
		return "the pod is not ready and the budget is met: the eviction would be allowed without using the budget"
	case !ready && p.Spec.UnhealthyPodEvictionPolicy != nil && *p.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow:
		return "the pod is not ready and the budget's unhealthyPodEvictionPolicy is AlwaysAllow: the eviction would be allowed"
	case s.ObservedGeneration < p.Generation:
		return "the budget's latest change is not processed yet: the eviction would be refused for now (429, Retry-After 10s) and retried"
	case s.DisruptionsAllowed > 0:
		return fmt.Sprintf("the budget allows %d disruptions: the eviction would be allowed", s.DisruptionsAllowed)
	case !ready:
		return "the pod is not ready and the budget is not met (unhealthyPodEvictionPolicy IfHealthyBudget): the eviction would be refused (429) and retried until the timeout"
	}
	return "the budget allows no disruption: the eviction would be refused (429) and retried until the timeout"
}

func (a *Restart) planRollout(ctx context.Context, r restartTarget) (actions.Plan, error) {
	d := map[string]string{"mode": ModeRollout, "namespace": r.namespace, "pod": r.pod, "kind": r.kind, "name": r.name}
	w, pod, err := a.rolloutTarget(ctx, r)
	if pod != nil {
		d["pod"], d["pod_uid"], d["controller"] = pod.Name, string(pod.UID), controllerOf(pod)
	}
	if err != nil {
		if refusal(err) {
			return refusePlan(err, planParams(d)), nil
		}
		return actions.Plan{}, fmt.Errorf("restart %s: %w", r, err)
	}
	delete(d, "kind")
	delete(d, "name")
	maps.Copy(d, rolloutDetails(w, pod))
	details := []string{workloadLine(w)}
	if err := checkRollout(w); err != nil {
		return refusePlan(err, planParams(d), details...), nil
	}
	body, err := patchBody(w, restartPatch("<RFC3339 time of the run>"), false)
	if err != nil {
		return actions.Plan{}, err
	}
	details = append(details,
		fmt.Sprintf("%s (strategic merge patch, fieldManager %s): %s", w.call("patch"), FieldManager, body),
		"the UID in the patch makes the API server refuse it (422) if the workload was recreated since it was read",
		fmt.Sprintf("then the %s controller replaces its pods by its %s strategy; the step does not wait for the rollout", w.Kind, w.Strategy))
	if m := w.managedBy(); m != "" {
		details = append(details, "note: "+m+" manages the workload and may revert the annotation")
	}
	return actions.Plan{Summary: fmt.Sprintf("rollout restart of %s", w), Params: planParams(d), Details: details}, nil
}

// workloadLine describes the workload as read.
func workloadLine(w *workload) string {
	s := fmt.Sprintf("%s: UID %s, found as %s, strategy %s", w.call("get"), w.UID, w.Via, w.Strategy)
	if w.Replicas >= 0 {
		s += fmt.Sprintf(", %d replicas", w.Replicas)
	}
	if w.Paused {
		s += ", paused"
	}
	return s
}
