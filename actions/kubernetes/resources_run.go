package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/selfheal/selfheal/actions"
)

// memChange is what a set_resources run would do, computed from what was
// read.
type memChange struct {
	w                      *workload
	container              string
	curLimit, curRequest   *resource.Quantity // nil: unset
	newLimit               resource.Quantity
	newRequest             *resource.Quantity // nil: unchanged
	limitSame, requestSame bool
}

// unchanged reports whether the template already has the new values.
func (c *memChange) unchanged() bool { return c.limitSame && c.requestSame }

// read renders the target, reads the pod and the workload that owns it (or
// the workload named), finds the container, computes the new values and
// applies the guards. The details it returns are shared by plan and
// result; they are nil only when rendering failed.
func (a *SetResources) read(ctx context.Context, t actions.Target) (*memChange, map[string]string, error) {
	ns, err := renderChecked("namespace", a.p.Namespace, t, checkNamespace)
	if err != nil {
		return nil, nil, err
	}
	d := map[string]string{"namespace": ns}
	var w *workload
	if a.p.workloadTarget() {
		kind, name, err := renderWorkload(a.p.Kind, a.p.Name, t, KindDeployment, KindStatefulSet, KindDaemonSet)
		if err != nil {
			return nil, nil, err
		}
		d["owner"] = kind + "/" + name
		if w, err = getWorkload(ctx, a.client, kind, ns, name); err != nil {
			return nil, d, err
		}
	} else {
		name, err := renderChecked("pod", a.p.Pod, t, checkName)
		if err != nil {
			return nil, nil, err
		}
		d["pod"] = name
		pod, err := getPod(ctx, a.client, ns, name, "")
		if err != nil {
			return nil, d, err
		}
		d["pod_uid"], d["controller"] = string(pod.UID), controllerOf(pod)
		if w, err = ownerOf(ctx, a.client, pod); err != nil {
			if errors.Is(err, ErrBarePod) {
				err = fmt.Errorf("%w: a bare pod's resources can only be changed by recreating it", err)
			}
			return nil, d, err
		}
	}
	d["owner"], d["owner_uid"], d["call"] = w.ref(), string(w.UID), w.call("patch").String()
	c, err := a.change(w, t)
	if c != nil {
		d["container"] = c.container
		d["memory_limit"] = fmt.Sprintf("%s -> %s", show(c.curLimit), c.newLimit.String())
		if c.newRequest != nil {
			d["memory_request"] = fmt.Sprintf("%s -> %s", show(c.curRequest), c.newRequest.String())
		}
	}
	return c, d, err
}

// show is q, or "unset".
func show(q *resource.Quantity) string {
	if q == nil {
		return "unset"
	}
	return q.String()
}

// change computes the new values for w and checks every guard. It returns
// the change whenever the container was found, with the refusal if any.
func (a *SetResources) change(w *workload, t actions.Target) (*memChange, error) {
	if m := w.managedBy(); m != "" {
		return nil, fmt.Errorf("%w: %s is managed by %s, which would revert a change of its pod template; change the resources there instead",
			ErrManaged, w, m)
	}
	ctr, err := a.container(w, t)
	if err != nil {
		return nil, err
	}
	c := &memChange{w: w, container: ctr.Name}
	if q, ok := ctr.Resources.Limits[corev1.ResourceMemory]; ok {
		c.curLimit = &q
	}
	if q, ok := ctr.Resources.Requests[corev1.ResourceMemory]; ok {
		c.curRequest = &q
	}
	if c.newLimit, err = a.limit.resolve(c.curLimit); err != nil {
		return nil, fmt.Errorf("memory_limit %s: container %s has no memory limit: %w", a.p.MemoryLimit, ctr.Name, err)
	}
	c.limitSame = c.curLimit != nil && c.curLimit.Cmp(c.newLimit) == 0
	c.requestSame = true
	if a.p.MemoryRequest != "" {
		q, err := a.request.resolve(c.curRequest)
		if err != nil {
			return nil, fmt.Errorf("memory_request %s: container %s has no memory request: %w", a.p.MemoryRequest, ctr.Name, err)
		}
		c.newRequest = &q
		c.requestSame = c.curRequest != nil && c.curRequest.Cmp(q) == 0
	}
	return c, a.guard(w, c)
}

// container finds the step's container in w's pod template.
func (a *SetResources) container(w *workload, t actions.Target) (*corev1.Container, error) {
	cs := w.Template.Spec.Containers
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	if a.p.Container.IsZero() {
		if len(cs) != 1 {
			return nil, fmt.Errorf("%w: %s has %d containers (%v); name one with container", ErrNoContainer, w, len(cs), names)
		}
		return &cs[0], nil
	}
	name, err := a.p.Container.Render(t)
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	if i := slices.Index(names, name); i >= 0 {
		return &cs[i], nil
	}
	return nil, fmt.Errorf("%w: %s has no container %q (containers: %v)", ErrNoContainer, w, name, names)
}

// guard refuses what the step's guards forbid.
func (a *SetResources) guard(w *workload, c *memChange) error {
	if w.Paused {
		return fmt.Errorf("%w: %s is paused; the change would not roll out until it is resumed", ErrPaused, w)
	}
	if a.max != nil && c.newLimit.Cmp(*a.max) > 0 {
		return fmt.Errorf("%w: memory limit %s of container %s would be above max_memory_limit %s", ErrGuard, c.newLimit.String(), c.container, a.p.MaxMemoryLimit)
	}
	if c.newRequest != nil && c.newRequest.Cmp(c.newLimit) > 0 {
		return fmt.Errorf("%w: memory request %s of container %s would be above its limit %s", ErrGuard, c.newRequest.String(), c.container, c.newLimit.String())
	}
	if c.newRequest == nil && c.curRequest != nil && c.curRequest.Cmp(c.newLimit) > 0 {
		return fmt.Errorf("%w: memory limit %s of container %s would be below its request %s", ErrGuard, c.newLimit.String(), c.container, c.curRequest.String())
	}
	if !a.p.OnlyIncrease {
		return nil
	}
	switch {
	case c.curLimit == nil:
		return fmt.Errorf("%w: container %s has no memory limit, and setting one lowers it; set only_increase: false to allow it", ErrGuard, c.container)
	case c.newLimit.Cmp(*c.curLimit) < 0:
		return fmt.Errorf("%w: memory limit of container %s would go down from %s to %s; set only_increase: false to allow it",
			ErrGuard, c.container, c.curLimit.String(), c.newLimit.String())
	}
	// Without a request, the API server gives new pods request = limit.
	effective := c.curRequest
	if effective == nil {
		effective = c.curLimit
	}
	if c.newRequest != nil && c.newRequest.Cmp(*effective) < 0 {
		return fmt.Errorf("%w: memory request of container %s would go down from %s to %s; set only_increase: false to allow it",
			ErrGuard, c.container, effective.String(), c.newRequest.String())
	}
	return nil
}

// patch is the spec part of the strategic merge patch: the container,
// found by its name (the merge key), gets the new memory values; its other
// fields and the other containers are kept.
func (c *memChange) patch() map[string]any {
	res := map[string]any{"limits": map[string]string{"memory": c.newLimit.String()}}
	if c.newRequest != nil {
		res["requests"] = map[string]string{"memory": c.newRequest.String()}
	}
	return map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []map[string]any{{"name": c.container, "resources": res}}}}}
}

// rolloutNote says when the pods get the new values.
func (c *memChange) rolloutNote() string {
	if c.w.onDelete() {
		return "updateStrategy OnDelete: the pods keep the old values until each is deleted (add a kubernetes.restart step with mode delete)"
	}
	return fmt.Sprintf("the %s controller then replaces its pods by its %s strategy; the step does not wait for the rollout", c.w.Kind, c.w.Strategy)
}

// Plan says what Run would do now: the workload (found through which
// owners, with its UID), the container, its memory limit and request now
// and after, and the exact patch. It only reads.
func (a *SetResources) Plan(ctx context.Context, t actions.Target) (actions.Plan, error) {
	c, d, err := a.read(ctx, t)
	var details []string
	if c != nil {
		details = append(details, workloadLine(c.w))
	}
	if err != nil {
		if d != nil && refusal(err) {
			return refusePlan(err, planParams(d), details...), nil
		}
		return actions.Plan{}, fmt.Errorf("%s: %w", SetResourcesID, err)
	}
	if c.unchanged() {
		return actions.Plan{Summary: fmt.Sprintf("nothing: container %s of %s already has these values", c.container, c.w),
			Params: planParams(d), Details: append(details, "Run would send no write")}, nil
	}
	body, err := patchBody(c.w, c.patch(), true)
	if err != nil {
		return actions.Plan{}, err
	}
	details = append(details,
		fmt.Sprintf("%s (strategic merge patch, fieldManager %s): %s", d["call"], FieldManager, body),
		"the UID and resourceVersion in the patch make the API server refuse it if the workload was recreated (422) or changed (409, retryable) since it was read")
	if c.newRequest == nil && c.curRequest == nil {
		details = append(details, fmt.Sprintf("the container sets no memory request: new pods get request = limit (%s), which the scheduler must find room for", c.newLimit.String()))
	}
	details = append(details, c.rolloutNote())
	return actions.Plan{Summary: a.summary("set", c), Params: planParams(d), Details: details}, nil
}

// summary is "set memory of container c in StatefulSet ns/x: limit 2Gi ->
// 3Gi, request 1Gi -> 2Gi".
func (a *SetResources) summary(verb string, c *memChange) string {
	s := fmt.Sprintf("%s memory of container %s in %s: limit %s -> %s", verb, c.container, c.w, show(c.curLimit), c.newLimit.String())
	if c.newRequest != nil {
		s += fmt.Sprintf(", request %s -> %s", show(c.curRequest), c.newRequest.String())
	}
	return s
}

// Run patches the new memory values into the workload's pod template. A
// template that already has them is left alone (outcome unchanged).
func (a *SetResources) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	c, d, err := a.read(ctx, t)
	if err != nil {
		return actions.Result{Details: d}, fmt.Errorf("%s: %w", SetResourcesID, err)
	}
	if c.unchanged() {
		d["outcome"] = "unchanged"
		return actions.Result{Summary: fmt.Sprintf("container %s of %s already has these values", c.container, c.w), Details: d}, nil
	}
	if err := patchWorkload(ctx, a.client, c.w, c.patch(), true); err != nil {
		return actions.Result{Details: d}, fmt.Errorf("%s: %w", SetResourcesID, err)
	}
	d["outcome"] = "patched"
	d["rollout"] = c.rolloutNote()
	a.logger.Info("resources set", "playbook", t.Playbook, "step", t.Step, "run", t.Run, "owner", c.w.ref(),
		"namespace", c.w.Namespace, "container", c.container, "memory_limit", d["memory_limit"], "memory_request", d["memory_request"])
	return actions.Result{Summary: a.summary("set", c) + "; " + c.rolloutNote(), Details: d,
		Touched: []actions.ObjectRef{c.w.objectRef()}}, nil
}
