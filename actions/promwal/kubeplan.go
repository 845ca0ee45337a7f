package promwal

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/selfheal/selfheal/actions"
)

// planKube reads the StatefulSet, its pods, its owner and the PVC (get and
// list only) and says what runKube would do, with the exact Job.
func (a *Action) planKube(ctx context.Context, t actions.Target) (actions.Plan, error) {
	k, err := a.renderKube(t)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("%s: %w", ID, err)
	}
	st, err := a.inspectKube(ctx, k)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("%s: %w", ID, err)
	}
	plan := actions.Plan{Params: a.kubeParams(st)}
	if rerr := st.refusal(); rerr != nil {
		plan.Summary = rerr.Error()
	} else {
		plan.Summary = a.kubeSummary(st)
	}
	plan.Details = append(a.kubeFacts(st), a.kubeSteps(st)...)
	if st.pvc != nil {
		plan.Details = append(plan.Details, "job: "+jobJSON(a.buildJob(st, t)))
	}
	plan.Details = append(plan.Details,
		"the job runs the checks of mode host on the volume (TSDB layout, wal size, quarantine outside the TSDB and on its filesystem, TSDB lock, open files) and refuses, moving nothing, if one fails; its log holds the manifest listing every file moved, the loss window and the restore command")
	return plan, nil
}

func (a *Action) kubeSummary(st *kubeState) string {
	var s []string
	if st.prom != nil && !st.promPaused {
		s = append(s, fmt.Sprintf("pause prometheus %s/%s", st.prom.GetNamespace(), st.prom.GetName()))
	}
	s = append(s,
		fmt.Sprintf("scale statefulset %s from %d to 0", st.target.sts(), st.replicas),
		fmt.Sprintf("run `selfheal wal-quarantine` in a job on persistentvolumeclaim %s (%s -> %s/)", st.pvc.Name, a.p.DataSubPath, a.p.QuarantineSubPath),
		fmt.Sprintf("scale back to %d", st.replicas))
	if st.prom != nil && !st.promPaused {
		s = append(s, "unpause")
	}
	return strings.Join(append(s, "wait for Ready"), ", ")
}

func (a *Action) kubeParams(st *kubeState) []actions.Param {
	pvc := "?"
	if st.pvc != nil {
		pvc = st.pvc.Name + " (" + st.pvcSource + ")"
	}
	return []actions.Param{
		{Name: "mode", Value: a.p.Mode},
		{Name: "namespace", Value: st.target.namespace},
		{Name: "statefulset", Value: st.target.statefulSet},
		{Name: "pvc", Value: pvc},
		{Name: "data_sub_path", Value: a.p.DataSubPath},
		{Name: "quarantine_sub_path", Value: a.p.QuarantineSubPath},
		{Name: "min_wal_bytes", Value: fmt.Sprintf("%d (%s)", int64(a.p.MinWALBytes), a.p.MinWALBytes)},
		{Name: "image", Value: a.d.Image},
		{Name: "pod_gone_timeout", Value: a.p.PodGoneTimeout.String()},
		{Name: "job_timeout", Value: a.p.JobTimeout.String()},
		{Name: "ready_timeout", Value: a.p.ReadyTimeout.String()},
	}
}

// kubeFacts describe what was read: the StatefulSet, its pods (with the
// OOM evidence of their last termination), its owner, the PVC and how the
// pods mount it.
func (a *Action) kubeFacts(st *kubeState) []string {
	sts := st.sts
	d := []string{fmt.Sprintf("statefulset %s: uid %s, replicas %d, ready %d, pod security context %s",
		st.target.sts(), sts.UID, st.replicas, sts.Status.ReadyReplicas, describePodSecurity(sts.Spec.Template.Spec.SecurityContext))}
	if len(st.pods) == 0 {
		d = append(d, "pods: none")
	}
	for _, p := range st.pods {
		d = append(d, describePod(p))
	}
	switch {
	case st.prom == nil:
		d = append(d, "owner: no prometheus-operator Prometheus owns the statefulset; nothing is paused")
	case st.promPaused:
		d = append(d, fmt.Sprintf("owner: prometheus %s/%s (uid %s) is already paused (spec.paused: true); it is left paused", st.prom.GetNamespace(), st.prom.GetName(), st.prom.GetUID()))
	default:
		d = append(d, fmt.Sprintf("owner: prometheus %s/%s (uid %s), spec.paused false: paused first so that the operator does not scale the statefulset back, unpaused at the end", st.prom.GetNamespace(), st.prom.GetName(), st.prom.GetUID()))
	}
	if pvc := st.pvc; pvc != nil && pvc.UID != "" {
		d = append(d, fmt.Sprintf("persistentvolumeclaim %s: %s, volume %s, capacity %s, access modes %v, storage class %s",
			pvc.Name, pvc.Status.Phase, pvc.Spec.VolumeName, pvc.Status.Capacity.Storage(), pvc.Spec.AccessModes, strDeref(pvc.Spec.StorageClassName)))
	}
	if m := st.mount; m != nil {
		line := fmt.Sprintf("mount: container %s mounts volume %s at %s", m.container.Name, m.mount.Name, m.mount.MountPath)
		if m.mount.SubPath != "" {
			line += " with subPath " + m.mount.SubPath
		}
		if m.mount.SubPath != a.p.DataSubPath {
			line += fmt.Sprintf(" (data_sub_path is %s: check that the TSDB is there)", a.p.DataSubPath)
		}
		d = append(d, line)
	}
	for _, r := range st.refusals {
		d = append(d, "refuse: "+r)
	}
	return d
}

// kubeSteps list what runKube does, in order.
func (a *Action) kubeSteps(st *kubeState) []string {
	var s []string
	add := func(format string, args ...any) {
		s = append(s, fmt.Sprintf("step %d: ", len(s)+1)+fmt.Sprintf(format, args...))
	}
	pause := st.prom != nil && !st.promPaused
	if pause {
		add("PATCH (merge) prometheus %s/%s: spec.paused true, annotation %s naming this run and the replicas", st.prom.GetNamespace(), st.prom.GetName(), PausedByAnnotation)
	}
	add("PUT statefulsets/%s/scale: replicas %d -> 0 (recorded: %d)", st.target.statefulSet, st.replicas, st.replicas)
	add("list the statefulset's pods every %s until none is left, for up to pod_gone_timeout %s", a.d.PollInterval, a.p.PodGoneTimeout)
	add("create the job below, named <generateName><5 random characters>; get it every %s until Complete or Failed, for up to job_timeout %s + %s; a job not finished by then is deleted and its pod waited for", a.d.PollInterval, a.p.JobTimeout, jobWaitGrace)
	add("read the log of the job's pod for the manifest (pods/log; optional)")
	add("always, also when an earlier step failed: PUT statefulsets/%s/scale: replicas -> %d", st.target.statefulSet, st.replicas)
	if pause {
		add("always: PATCH (merge) prometheus %s/%s: spec.paused as it was (%s), annotation %s removed", st.prom.GetNamespace(), st.prom.GetName(), pausedBefore(st), PausedByAnnotation)
	}
	add("get the statefulset every %s until it has observed the scale back and %d/%d pods are Ready, for up to ready_timeout %s", a.d.PollInterval, st.replicas, st.replicas, a.p.ReadyTimeout)
	return s
}

func pausedBefore(st *kubeState) string {
	if st.promPausedSet {
		return "false"
	}
	return "absent"
}

func describePodSecurity(sc *corev1.PodSecurityContext) string {
	if sc == nil {
		return "none (the job runs as its image's user)"
	}
	return fmt.Sprintf("runAsUser %s, runAsGroup %s, fsGroup %s, runAsNonRoot %s",
		intDeref(sc.RunAsUser), intDeref(sc.RunAsGroup), intDeref(sc.FSGroup), boolDeref(sc.RunAsNonRoot))
}

// describePod says how a pod is doing, with its containers' last
// terminations: an OOMKilled (exit 137) during WAL replay is the reason
// for this action.
func describePod(p corev1.Pod) string {
	s := fmt.Sprintf("pod %s: uid %s, %s", p.Name, p.UID, p.Status.Phase)
	if p.DeletionTimestamp != nil {
		s += ", terminating"
	}
	for _, c := range p.Status.ContainerStatuses {
		s += fmt.Sprintf("; container %s: ready %t, restarts %d", c.Name, c.Ready, c.RestartCount)
		if w := c.State.Waiting; w != nil {
			s += ", waiting " + w.Reason
		}
		if t := c.LastTerminationState.Terminated; t != nil {
			s += fmt.Sprintf(", last terminated %s (exit %d) at %s", t.Reason, t.ExitCode, t.FinishedAt.UTC().Format(time.RFC3339))
		}
	}
	return s
}

func intDeref[T int32 | int64](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func boolDeref(p *bool) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func strDeref(p *string) string {
	if p == nil {
		return "(default)"
	}
	return *p
}
