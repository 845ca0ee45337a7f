package promwal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/selfheal/selfheal/actions"
)

const (
	// jobWaitGrace is how long past the Job's activeDeadlineSeconds Run
	// waits for the Job controller to mark it Failed.
	jobWaitGrace = 30 * time.Second
	// restoreTimeout bounds scaling back, unpausing and deleting a Job
	// that did not finish, each with a context of its own so that a
	// cancelled run still restores.
	restoreTimeout = 2 * time.Minute
	// scaleDownTimeout bounds retries of the scale to 0.
	scaleDownTimeout = time.Minute
	// logTimeout bounds reading the Job's log; logLimit its size.
	logTimeout = 10 * time.Second
	logLimit   = 4 << 20
)

// kubeRun is one kubernetes-mode run: what it changed, so that it can
// undo it, and the steps it took.
type kubeRun struct {
	a     *Action
	st    *kubeState
	t     actions.Target
	log   *slog.Logger
	steps []string
	// paused and scaled say whether a pause or a scale to 0 was sent
	// (even if it failed: it may have been applied).
	paused, scaled bool
	// scaledBack says the scale back succeeded.
	scaledBack bool
	job        *batchv1.Job
	// jobStatus, manifest and logErr are what the Job left.
	jobStatus string
	manifest  *Manifest
	logErr    error
	ready     string
}

// runKube pauses the owning Prometheus if any, scales the StatefulSet to
// 0, waits for its pods to go, runs the quarantine Job and waits for it;
// then — always, with a context of its own — scales back to the recorded
// replicas and unpauses, and waits for the pods to be Ready. Only errors
// before the first change are retryable.
func (a *Action) runKube(ctx context.Context, t actions.Target) (actions.Result, error) {
	k, err := a.renderKube(t)
	if err != nil {
		return actions.Result{}, fmt.Errorf("%s: %w", ID, err)
	}
	st, err := a.inspectKube(ctx, k)
	if err != nil {
		return actions.Result{}, fmt.Errorf("%s: %w", ID, err)
	}
	if err := st.refusal(); err != nil {
		return actions.Result{}, fmt.Errorf("%s: %w", ID, err)
	}
	r := &kubeRun{a: a, st: st, t: t, log: a.d.Logger.With("playbook", t.Playbook, "step", t.Step, "run", t.Run, "statefulset", k.sts())}
	workErr := r.work(ctx)
	restoreErr := r.restore(ctx)
	var readyErr error
	if restoreErr == nil && r.scaled { // else the pods were not touched
		readyErr = r.waitReady(ctx)
	}
	res := r.result()
	switch {
	case workErr == nil && restoreErr == nil && readyErr == nil:
		return res, nil
	case workErr == nil && restoreErr == nil:
		return res, fmt.Errorf("%s: head quarantined by job %s, but %w; if it ran out of memory again, the cause is not the WAL: leave the quarantine in place and raise its memory", ID, r.jobName(), readyErr)
	}
	return res, fmt.Errorf("%s: %w", ID, errors.Join(workErr, restoreErr, readyErr))
}

// step records a step taken.
func (r *kubeRun) step(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.steps = append(r.steps, fmt.Sprintf("%d. %s %s", len(r.steps)+1, r.a.d.Now().UTC().Format("15:04:05.000Z"), msg))
	r.log.Info("wal cleanup step", "n", len(r.steps), "msg", msg)
}

func (r *kubeRun) jobName() string {
	if r.job == nil {
		return ""
	}
	return r.job.Namespace + "/" + r.job.Name
}

// work does what restore undoes: pause, scale to 0, wait, run the Job.
func (r *kubeRun) work(ctx context.Context) error {
	st := r.st
	if st.prom != nil {
		if st.promPaused {
			r.step("prometheus %s/%s is already paused (spec.paused: true): left as it is", st.prom.GetNamespace(), st.prom.GetName())
		} else {
			r.paused = true
			if err := r.setPaused(ctx, true); err != nil {
				// A refusal (4xx) changed nothing; a 5xx or a timeout may have.
				r.paused = !refused(err)
				return fmt.Errorf("pause prometheus %s/%s: %w", st.prom.GetNamespace(), st.prom.GetName(), err)
			}
			r.step("paused prometheus %s/%s (spec.paused: true, annotation %s)", st.prom.GetNamespace(), st.prom.GetName(), PausedByAnnotation)
		}
	}
	r.scaled = true
	sctx, cancel := context.WithTimeout(ctx, scaleDownTimeout)
	err := r.scaleTo(sctx, 0)
	cancel()
	if err != nil {
		// A refusal (4xx) changed nothing; a 5xx or a timeout may have.
		r.scaled = !refused(err)
		return fmt.Errorf("scale statefulset %s to 0: %w", st.target.sts(), err)
	}
	r.step("scaled statefulset %s from %d to 0 replicas", st.target.sts(), st.replicas)
	start := time.Now()
	if err := r.poll(ctx, time.Duration(r.a.p.PodGoneTimeout), "the statefulset's pods are still there", r.podsGone); err != nil {
		return fmt.Errorf("wait for the pods of statefulset %s to go: %w", st.target.sts(), err)
	}
	r.step("pods of statefulset %s gone after %s", st.target.sts(), since(start))
	// A name of our own rather than generateName: after an ambiguous
	// answer (a 5xx, a timeout) the Job can be found, and deleted.
	job := r.a.buildJob(st, r.t)
	job.Name = job.GenerateName + utilrand.String(5)
	created, err := r.a.d.Kube.BatchV1().Jobs(st.sts.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		err = fmt.Errorf("create job %s/%s: %w", job.Namespace, job.Name, err)
		if refused(err) {
			return err
		}
		r.job = job
		return errors.Join(err, r.deleteJob(ctx))
	}
	r.job = created
	r.step("created job %s (image %s) mounting persistentvolumeclaim %s at %s: %s", r.jobName(), r.a.d.Image, st.pvc.Name, JobMountPath, strings.Join(r.a.jobCommand(), " "))
	return r.runJob(ctx)
}

// podsGone reports whether the StatefulSet's pods are all gone.
func (r *kubeRun) podsGone(ctx context.Context) (bool, string, error) {
	pods, err := r.a.stsPods(ctx, r.st.sts)
	if err != nil {
		return false, "", err
	}
	return len(pods) == 0, podNames(pods), nil
}

func podNames(pods []corev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
		if p.DeletionTimestamp != nil {
			names[i] += " (terminating)"
		}
	}
	return "pods: " + strings.Join(names, ", ")
}

// restore scales back to the recorded replicas and unpauses, whatever
// happened before, each with a context of its own: unpausing also makes
// the operator restore the replicas, so it is tried even if the scale
// back failed.
func (r *kubeRun) restore(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if r.scaled {
		sctx, cancel := context.WithTimeout(ctx, restoreTimeout)
		err := r.scaleTo(sctx, r.st.replicas)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("scale statefulset %s back to %d: %w (it may be left at 0 replicas: scale it back by hand)", r.st.target.sts(), r.st.replicas, err))
		} else {
			r.scaledBack = true
			r.step("scaled statefulset %s back to %d replicas", r.st.target.sts(), r.st.replicas)
		}
	}
	if r.paused {
		p := r.st.prom
		pctx, cancel := context.WithTimeout(ctx, restoreTimeout)
		err := r.setPaused(pctx, false)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("unpause prometheus %s/%s: %w (it is left paused: set spec.paused to false by hand)", p.GetNamespace(), p.GetName(), err))
		} else {
			r.step("unpaused prometheus %s/%s", p.GetNamespace(), p.GetName())
		}
	}
	return errors.Join(errs...)
}

// scaleTo sets the StatefulSet's replicas through the scale subresource,
// retrying every error but a refusal (see refused) every PollInterval
// until ctx ends; then it returns the last error.
func (r *kubeRun) scaleTo(ctx context.Context, n int32) error {
	var last error
	_ = wait.PollUntilContextCancel(ctx, r.a.d.PollInterval, true, func(ctx context.Context) (bool, error) {
		last = r.scaleOnce(ctx, n)
		if last == nil || refused(last) {
			return true, nil
		}
		r.log.Warn("scale failed, retrying", "replicas", n, "err", last)
		return false, nil
	})
	return last
}

// scaleOnce reads the scale and, unless it already has n replicas, writes n.
func (r *kubeRun) scaleOnce(ctx context.Context, n int32) error {
	c := r.a.d.Kube.AppsV1().StatefulSets(r.st.sts.Namespace)
	sc, err := c.GetScale(ctx, r.st.sts.Name, metav1.GetOptions{})
	if err != nil || sc.Spec.Replicas == n {
		return err
	}
	sc.Spec.Replicas = n
	_, err = c.UpdateScale(ctx, r.st.sts.Name, sc, metav1.UpdateOptions{FieldManager: fieldManager})
	return err
}

// setPaused sets or clears spec.paused on the owning Prometheus with a
// merge patch, together with PausedByAnnotation. Clearing restores the
// field as it was: false, or absent. Pausing is tried once; clearing is
// retried, unless refused, until ctx ends.
func (r *kubeRun) setPaused(ctx context.Context, paused bool) error {
	p := r.st.prom
	var ann, val any // nil removes the annotation and the field
	if paused {
		ann = fmt.Sprintf("prometheus.wal_cleanup playbook %q step %q run %s: statefulset %s had %d replicas", r.t.Playbook, r.t.Step, r.t.Run, r.st.target.sts(), r.st.replicas)
		val = true
	} else if r.st.promPausedSet {
		val = false
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{PausedByAnnotation: ann}},
		"spec":     map[string]any{"paused": val},
	})
	if err != nil {
		return err
	}
	c := r.a.d.Dynamic.Resource(PrometheusResource).Namespace(p.GetNamespace())
	_ = wait.PollUntilContextCancel(ctx, r.a.d.PollInterval, true, func(ctx context.Context) (bool, error) {
		_, err = c.Patch(ctx, p.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		return err == nil || refused(err) || paused, nil
	})
	return err // the last answer, also when ctx ended
}

// waitReady waits until the StatefulSet controller has seen the scale back
// and as many of its pods as it has replicas are Ready and not terminating
// (for Prometheus, Ready means /-/ready answers: the WAL replay is over).
func (r *kubeRun) waitReady(ctx context.Context) error {
	if ctx.Err() != nil {
		r.step("not waiting for Ready: %v", ctx.Err())
		return nil
	}
	start := time.Now()
	var state string
	err := r.poll(ctx, time.Duration(r.a.p.ReadyTimeout), "not Ready", func(ctx context.Context) (bool, string, error) {
		sts, err := r.a.d.Kube.AppsV1().StatefulSets(r.st.sts.Namespace).Get(ctx, r.st.sts.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		pods, err := r.a.stsPods(ctx, sts)
		if err != nil {
			return false, "", err
		}
		want, ready := int32(1), int32(0)
		if sts.Spec.Replicas != nil {
			want = *sts.Spec.Replicas
		}
		for _, p := range pods {
			if p.DeletionTimestamp == nil && podReady(p) {
				ready++
			}
		}
		state = fmt.Sprintf("%d/%d pods Ready", ready, want)
		return sts.Status.ObservedGeneration >= sts.Generation && ready >= want,
			fmt.Sprintf("%s, observed generation %d of %d", state, sts.Status.ObservedGeneration, sts.Generation), nil
	})
	if err != nil {
		r.step("statefulset %s not Ready: %v", r.st.target.sts(), err)
		return fmt.Errorf("statefulset %s: %w", r.st.target.sts(), err)
	}
	r.ready = fmt.Sprintf("statefulset %s: %s after %s", r.st.target.sts(), state, since(start))
	r.step("%s", r.ready)
	return nil
}

// poll calls check every PollInterval until it reports done, check's
// request is refused (see refused), timeout passes or ctx ends. Other
// errors (5xx, network, client-side throttling) are retried. On timeout
// the error says what was last seen.
func (r *kubeRun) poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) (bool, string, error)) error {
	start := time.Now()
	// last is the last state seen; lastErr an error since then. A failed
	// read (the client's rate limiter refusing a wait past the deadline,
	// say) never hides what was seen.
	var last, lastErr string
	var refusal error
	err := wait.PollUntilContextTimeout(ctx, r.a.d.PollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		done, state, err := check(ctx)
		switch {
		case err == nil && done:
			return true, nil
		case err == nil:
			last, lastErr = state, ""
		case ctx.Err() != nil: // keep the last state seen
		case refused(err):
			refusal = err
			return false, err
		default:
			lastErr = err.Error()
		}
		return false, nil
	})
	switch {
	case refusal != nil:
		return refusal
	case err != nil:
		seen := last
		switch {
		case last == "":
			seen = lastErr
		case lastErr != "":
			seen += "; then: " + lastErr
		}
		return fmt.Errorf("%s after %s (timeout %s; last: %s): %w", what, since(start), timeout, seen, err)
	}
	return nil
}

// podReady reports whether p's Ready condition is true.
func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// result reports the run: the manifest's facts if the Job's log gave
// them, what was paused, scaled and created, and every step.
func (r *kubeRun) result() actions.Result {
	st := r.st
	var res actions.Result
	if r.manifest != nil {
		res = result(r.manifest)
		res.Details["paths"] = fmt.Sprintf("inside persistentvolumeclaim %s/%s mounted at %s; run the restore command in a pod mounting it there, before Prometheus starts again", st.sts.Namespace, st.pvc.Name, JobMountPath)
	} else {
		res.Details = map[string]string{}
	}
	d := res.Details
	d["statefulset"] = st.target.sts()
	d["replicas"] = strconv.Itoa(int(st.replicas))
	d["pvc"] = st.pvc.Name
	if st.prom != nil {
		d["prometheus"] = st.prom.GetNamespace() + "/" + st.prom.GetName()
	}
	if r.job != nil {
		d["job"] = r.jobName()
	}
	if r.jobStatus != "" {
		d["job_status"] = r.jobStatus
	}
	if r.logErr != nil {
		d["job_log"] = "unavailable: " + r.logErr.Error()
	}
	if r.ready != "" {
		d["ready"] = r.ready
	}
	d["steps"] = strings.Join(r.steps, "\n")
	back := fmt.Sprintf("statefulset %s back at %d replicas", st.target.sts(), st.replicas)
	switch {
	case r.scaled && !r.scaledBack:
		back = fmt.Sprintf("statefulset %s may be left at 0 replicas (it had %d)", st.target.sts(), st.replicas)
	case !r.scaled:
		back = fmt.Sprintf("statefulset %s not scaled", st.target.sts())
	}
	switch {
	case r.manifest != nil:
		res.Summary += "; " + back
	case r.jobStatus == string(batchv1.JobComplete):
		res.Summary = fmt.Sprintf("job %s quarantined the head of %s in persistentvolumeclaim %s into %s/ (manifest not read: %v); %s",
			r.jobName(), r.a.p.DataSubPath, st.pvc.Name, r.a.p.QuarantineSubPath, r.logErr, back)
	case r.job != nil:
		status := r.jobStatus
		if status == "" {
			status = "deleted unfinished"
		}
		res.Summary = fmt.Sprintf("job %s did not complete (%s); %s", r.jobName(), status, back)
	default:
		res.Summary = "nothing quarantined; " + back
	}
	res.Touched = r.touched()
	return res
}

// touched are the objects the run changed: the StatefulSet it scaled, the
// Prometheus it paused, the claim whose volume a Job of its mounted. The
// Job itself is the run's own, and the pods the scale removed are gone.
func (r *kubeRun) touched() []actions.ObjectRef {
	st := r.st
	var refs []actions.ObjectRef
	if r.scaled {
		refs = append(refs, actions.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet",
			Namespace: st.sts.Namespace, Name: st.sts.Name, UID: string(st.sts.UID)})
	}
	if r.paused && st.prom != nil {
		refs = append(refs, actions.ObjectRef{APIVersion: st.prom.GetAPIVersion(), Kind: st.prom.GetKind(),
			Namespace: st.prom.GetNamespace(), Name: st.prom.GetName(), UID: string(st.prom.GetUID())})
	}
	if r.job != nil {
		refs = append(refs, actions.ObjectRef{APIVersion: "v1", Kind: "PersistentVolumeClaim",
			Namespace: st.pvc.Namespace, Name: st.pvc.Name, UID: string(st.pvc.UID)})
	}
	return refs
}
