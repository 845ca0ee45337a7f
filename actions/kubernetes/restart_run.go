package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/selfheal/selfheal/actions"
)

// Run restarts the target by the step's mode, within the step's timeout.
// evict succeeds once the API server accepts the eviction (the pod then
// terminates with its grace period; the step does not wait for the
// replacement) and retries while a PodDisruptionBudget refuses it, failing
// with a retryable ErrPDBBlocked when the timeout passes; delete succeeds
// once the API server accepts the delete; a pod already gone counts as
// done for both. rollout succeeds once the workload's pod template is
// patched; the controller then replaces the pods.
func (a *Restart) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	r, err := a.render(t)
	if err != nil {
		return actions.Result{}, fmt.Errorf("%s: %w", RestartID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(a.p.Timeout))
	defer cancel()
	log := a.logger.With("playbook", t.Playbook, "step", t.Step, "run", t.Run, "mode", a.p.Mode, "target", r.String())
	var res actions.Result
	if a.p.Mode == ModeRollout {
		res, err = a.runRollout(ctx, r, log)
	} else {
		res, err = a.runPod(ctx, r, log)
	}
	if err != nil {
		return res, fmt.Errorf("restart %s: %w", r, err)
	}
	return res, nil
}

// preparePod reads the pod and applies the bare-pod guard.
func (a *Restart) preparePod(ctx context.Context, r restartTarget) (*corev1.Pod, error) {
	pod, err := getPod(ctx, a.client, r.namespace, r.pod, r.uid)
	if err != nil {
		return nil, err
	}
	if controllerOf(pod) == "" && !a.p.AllowBarePods {
		return pod, fmt.Errorf("%w: nothing would recreate pod %s/%s once it is gone; set allow_bare_pods: true to %s it anyway",
			ErrBarePod, pod.Namespace, pod.Name, a.p.Mode)
	}
	return pod, nil
}

// podCallFor is the request evict or delete sends for pod.
func (a *Restart) podCallFor(pod *corev1.Pod) call {
	if a.p.Mode == ModeDelete {
		return podCall("delete", "", pod.Namespace, pod.Name)
	}
	return podCall("create", "eviction", pod.Namespace, pod.Name)
}

// deleteOptions carry the UID precondition (and grace period) of evict and
// delete, so a pod that replaced this one under its name is never touched.
func (a *Restart) deleteOptions(pod *corev1.Pod) *metav1.DeleteOptions {
	uid := pod.UID
	o := &metav1.DeleteOptions{GracePeriodSeconds: a.p.gracePeriodSeconds()}
	if uid != "" {
		o.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	return o
}

// podDetails are the facts a plan and a result share about a pod.
func podDetails(pod *corev1.Pod) map[string]string {
	return map[string]string{
		"namespace":  pod.Namespace,
		"pod":        pod.Name,
		"pod_uid":    string(pod.UID),
		"controller": controllerOf(pod),
	}
}

// podRef names pod as an object the run changed.
func podRef(pod *corev1.Pod) actions.ObjectRef {
	return actions.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)}
}

// runPod evicts or deletes the pod.
func (a *Restart) runPod(ctx context.Context, r restartTarget, log *slog.Logger) (actions.Result, error) {
	pod, err := a.preparePod(ctx, r)
	if err != nil {
		return actions.Result{}, err
	}
	c := a.podCallFor(pod)
	d := podDetails(pod)
	d["mode"], d["call"] = a.p.Mode, c.String()
	if g := a.p.gracePeriodSeconds(); g != nil {
		d["grace_period_seconds"] = strconv.FormatInt(*g, 10)
	}
	start := time.Now()
	var gone bool
	if a.p.Mode == ModeDelete {
		gone, err = a.deletePod(ctx, c, pod)
	} else {
		var attempts int
		attempts, gone, err = a.evict(ctx, c, pod, log)
		d["attempts"] = strconv.Itoa(attempts)
	}
	if err != nil {
		return actions.Result{Details: d}, err
	}
	verb := map[string]string{ModeEvict: "evicted", ModeDelete: "deleted"}[a.p.Mode]
	d["outcome"] = verb
	sum := fmt.Sprintf("%s pod %s/%s (UID %s) after %s", verb, pod.Namespace, pod.Name, pod.UID, time.Since(start).Round(time.Millisecond))
	if gone {
		d["outcome"] = "already_gone"
		sum = fmt.Sprintf("pod %s/%s (UID %s) was already gone", pod.Namespace, pod.Name, pod.UID)
	}
	log.Info("pod restarted", "outcome", d["outcome"], "pod_uid", pod.UID, "controller", d["controller"])
	res := actions.Result{Summary: sum, Details: d}
	if !gone {
		res.Touched = []actions.ObjectRef{podRef(pod)}
	}
	return res, nil
}

// deletePod deletes pod with its UID as precondition. gone reports a pod
// that no longer existed.
func (a *Restart) deletePod(ctx context.Context, c call, pod *corev1.Pod) (gone bool, err error) {
	err = a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, *a.deleteOptions(pod))
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsNotFound(err):
		return true, nil
	case apierrors.IsConflict(err):
		return false, replacedPod(pod, err)
	}
	return false, c.check(err)
}

// replacedPod is the refusal when the UID precondition fails.
func replacedPod(pod *corev1.Pod, err error) error {
	return fmt.Errorf("%w: pod %s/%s is no longer the pod with UID %s that was read (deleted and recreated under the same name); "+
		"refusing to touch the new pod: %w", ErrReplaced, pod.Namespace, pod.Name, pod.UID, err)
}

// evict posts the eviction until the API server accepts it, waiting out a
// PodDisruptionBudget that refuses it (429) with a doubling backoff that
// honours Retry-After, until ctx ends.
func (a *Restart) evict(ctx context.Context, c call, pod *corev1.Pod, log *slog.Logger) (attempts int, gone bool, err error) {
	ev := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: a.deleteOptions(pod),
	}
	start := time.Now()
	wait := time.Duration(a.p.PDBRetryInterval)
	var refused error
	// Hand-written, not wait.Backoff: each wait is at least the answer's Retry-After, and a wait past the deadline is not begun.
	for attempts = 1; ; attempts++ {
		err := a.postEviction(ctx, ev)
		switch {
		case err == nil:
			return attempts, false, nil
		case apierrors.IsNotFound(err):
			return attempts, true, nil
		case apierrors.IsConflict(err):
			return attempts, false, replacedPod(pod, err)
		case apierrors.IsTooManyRequests(err):
			refused = err
		case refused != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return attempts, false, blocked(attempts, start, refused)
		case apierrors.IsInternalError(err) && strings.Contains(err.Error(), "more than one PodDisruptionBudget"):
			return attempts, false, fmt.Errorf("%s: %w", c, err) // permanent until someone fixes the budgets
		default:
			return attempts, false, c.check(err)
		}
		d := wait
		if s, ok := apierrors.SuggestsClientDelay(err); ok && time.Duration(s)*time.Second > d {
			d = time.Duration(s) * time.Second
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return attempts, false, blocked(attempts, start, refused)
		}
		log.Debug("eviction refused, retrying", "attempt", attempts, "wait", d, "err", err)
		tm := time.NewTimer(d)
		select {
		case <-ctx.Done():
			tm.Stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return attempts, false, fmt.Errorf("%s: %w (last answer: %v)", c, ctx.Err(), refused)
			}
			return attempts, false, blocked(attempts, start, refused)
		case <-tm.C:
		}
		wait = min(2*wait, max(maxPDBRetryInterval, time.Duration(a.p.PDBRetryInterval)))
	}
}

// blocked is the retryable failure of an eviction refused until the end.
func blocked(attempts int, start time.Time, last error) error {
	why := ""
	if c := causes(last); c != "" {
		why = " (" + c + ")"
	}
	return actions.Retryable(fmt.Errorf("%w: refused %d times over %s; last answer: %w%s",
		ErrPDBBlocked, attempts, time.Since(start).Round(time.Millisecond), last, why))
}

// postEviction sends one eviction. client-go retries a 429 that carries
// Retry-After up to ten times by itself (a budget the disruption controller
// has not processed yet answers Retry-After: 10, so an eviction could block
// for 100 s); the request is built here with MaxRetries(0) so that every
// refusal comes back to evict, which has its own deadline and backoff. The
// fake clientset has no REST client: it gets EvictV1, which it never
// retries.
func (a *Restart) postEviction(ctx context.Context, ev *policyv1.Eviction) error {
	if rc, ok := a.client.CoreV1().RESTClient().(*rest.RESTClient); ok && rc != nil {
		return rc.Post().Namespace(ev.Namespace).Resource("pods").Name(ev.Name).SubResource("eviction").
			MaxRetries(0).Body(ev).Do(ctx).Error()
	}
	return a.client.CoreV1().Pods(ev.Namespace).EvictV1(ctx, ev)
}

// rolloutTarget reads the workload to restart: the one named, or the one
// that owns the pod.
func (a *Restart) rolloutTarget(ctx context.Context, r restartTarget) (*workload, *corev1.Pod, error) {
	if r.pod == "" {
		w, err := getWorkload(ctx, a.client, r.kind, r.namespace, r.name)
		return w, nil, err
	}
	pod, err := getPod(ctx, a.client, r.namespace, r.pod, r.uid)
	if err != nil {
		return nil, nil, err
	}
	w, err := ownerOf(ctx, a.client, pod)
	if errors.Is(err, ErrBarePod) {
		err = fmt.Errorf("%w: there is no workload to roll out; use mode evict or delete with allow_bare_pods", err)
	}
	return w, pod, err
}

// checkRollout refuses a restart that would restart nothing.
func checkRollout(w *workload) error {
	if w.Paused {
		return fmt.Errorf("%w: %s is paused; a restart would not roll out until it is resumed (kubectl rollout resume)", ErrPaused, w)
	}
	if w.onDelete() {
		return fmt.Errorf("%w: %s has updateStrategy OnDelete, so the restartedAt patch would restart no pod until each is deleted; "+
			"restart its pods with mode evict or delete instead", ErrOnDelete, w)
	}
	return nil
}

// rolloutDetails are the facts a plan and a result share about a rollout.
func rolloutDetails(w *workload, pod *corev1.Pod) map[string]string {
	d := map[string]string{
		"mode":      ModeRollout,
		"namespace": w.Namespace,
		"owner":     w.ref(),
		"owner_uid": string(w.UID),
		"call":      w.call("patch").String(),
	}
	if pod != nil {
		d["pod"], d["pod_uid"], d["controller"] = pod.Name, string(pod.UID), controllerOf(pod)
	}
	return d
}

// restartPatch is the spec part of kubectl rollout restart's patch.
func restartPatch(at string) map[string]any {
	return map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{RestartedAtAnnotation: at}}}}
}

// runRollout patches the restartedAt annotation into the workload's pod
// template, as kubectl rollout restart does.
func (a *Restart) runRollout(ctx context.Context, r restartTarget, log *slog.Logger) (actions.Result, error) {
	w, pod, err := a.rolloutTarget(ctx, r)
	if err != nil {
		return actions.Result{}, err
	}
	if err := checkRollout(w); err != nil {
		return actions.Result{}, err
	}
	at := a.now().UTC().Format(time.RFC3339)
	if err := patchWorkload(ctx, a.client, w, restartPatch(at), false); err != nil {
		return actions.Result{}, err
	}
	d := rolloutDetails(w, pod)
	d["restarted_at"] = at
	sum := fmt.Sprintf("rollout restart of %s (%s=%s); its controller replaces the pods", w, RestartedAtAnnotation, at)
	if m := w.managedBy(); m != "" {
		d["managed_by"] = m
		sum += "; note: " + m + " manages it and may revert the change"
	}
	log.Info("workload restarted", "owner", w.ref(), "owner_uid", w.UID, "restarted_at", at)
	return actions.Result{Summary: sum, Details: d, Touched: []actions.ObjectRef{w.objectRef()}}, nil
}
