package promwal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/selfheal/selfheal/actions"
)

const (
	// JobMountPath is where the Job mounts the Prometheus volume; the data
	// and quarantine sub-paths are below it.
	JobMountPath = "/prometheus"
	// jobContainer names the Job's only container.
	jobContainer = "wal-quarantine"
	// jobBinary is the selfheal binary, looked up on the image's PATH.
	jobBinary = "selfheal"
	// jobTTL keeps a finished Job, its pod and its log for people to read.
	jobTTL = 24 * time.Hour
	// fieldManager names selfheal's writes in managedFields.
	fieldManager = "selfheal"
	// PausedByAnnotation is set on a Prometheus while selfheal keeps it
	// paused; it says which run did it and the replicas to restore.
	PausedByAnnotation = "selfheal.io/paused-by"
	// annotation prefix for the Job's provenance.
	annotationPrefix = "selfheal.io/"
	// jobLabelComponent marks the Job and its pod.
	jobLabelComponent = "wal-quarantine"
)

// jobLabels are the labels of the Job and of its pod.
func jobLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "selfheal",
		"app.kubernetes.io/component":  jobLabelComponent,
		"app.kubernetes.io/managed-by": "selfheal",
	}
}

// jobCommand is what the Job's container runs.
func (a *Action) jobCommand() []string {
	return []string{
		jobBinary, "wal-quarantine",
		"--data-dir=" + path.Join(JobMountPath, a.p.DataSubPath),
		"--quarantine-dir=" + path.Join(JobMountPath, a.p.QuarantineSubPath),
		"--min-wal-bytes=" + strconv.FormatInt(int64(a.p.MinWALBytes), 10),
	}
}

// buildJob is the Job that quarantines the head on st's PVC: one pod,
// never retried, bounded by job_timeout, mounting the claim at
// /prometheus, on the nodes and with the pod security context of the
// StatefulSet's pods so that it can attach the volume and write where
// Prometheus writes; the user and group of the container that mounts the
// claim are kept too. It has no service account token and a read-only
// root filesystem.
func (a *Action) buildJob(st *kubeState, t actions.Target) *batchv1.Job {
	tpl := st.sts.Spec.Template.Spec
	sc := &corev1.SecurityContext{
		ReadOnlyRootFilesystem:   new(true),
		AllowPrivilegeEscalation: new(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if st.mount != nil && st.mount.container.SecurityContext != nil {
		c := st.mount.container.SecurityContext
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot = c.RunAsUser, c.RunAsGroup, c.RunAsNonRoot
	}
	base := st.sts.Name
	if len(base) > 42 {
		base = strings.TrimRight(base[:42], "-.")
	}
	ann := map[string]string{
		annotationPrefix + "statefulset": st.target.sts(),
		annotationPrefix + "replicas":    strconv.Itoa(int(st.replicas)),
		annotationPrefix + "playbook":    t.Playbook,
		annotationPrefix + "step":        t.Step,
		annotationPrefix + "run":         t.Run,
	}
	if t.Episode != "" {
		ann[annotationPrefix+"episode"] = t.Episode
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: base + "-wal-quarantine-",
			Namespace:    st.sts.Namespace,
			Labels:       jobLabels(),
			Annotations:  ann,
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            new(int32(0)),
			ActiveDeadlineSeconds:   new(int64(time.Duration(a.p.JobTimeout) / time.Second)),
			TTLSecondsAfterFinished: new(int32(jobTTL / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jobLabels()},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: new(false),
					EnableServiceLinks:           new(false),
					SecurityContext:              tpl.SecurityContext.DeepCopy(),
					NodeSelector:                 tpl.NodeSelector,
					Affinity:                     tpl.Affinity.DeepCopy(),
					Tolerations:                  tpl.Tolerations,
					Containers: []corev1.Container{{
						Name:    jobContainer,
						Image:   a.d.Image,
						Command: a.jobCommand(),
						VolumeMounts: []corev1.VolumeMount{{
							Name: "prometheus-data", MountPath: JobMountPath,
						}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("10m"),
								corev1.ResourceMemory: resource.MustParse("32Mi"),
							},
							Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						SecurityContext:          sc,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
					Volumes: []corev1.Volume{{
						Name: "prometheus-data",
						VolumeSource: corev1.VolumeSource{
							PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: st.pvc.Name},
						},
					}},
				},
			},
		},
	}
}

// jobJSON renders a Job on one line for plans.
func jobJSON(j *batchv1.Job) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strings.TrimSpace(b.String())
}

// parseManifest finds the manifest `selfheal wal-quarantine` printed in a
// Job's log: an indented JSON object starting on a line of its own, before
// the lines written to stderr.
func parseManifest(log []byte) (*Manifest, error) {
	i := bytes.Index(log, []byte("{\n"))
	if i < 0 || (i > 0 && log[i-1] != '\n') {
		return nil, fmt.Errorf("no manifest in the log (%d bytes)", len(log))
	}
	var m Manifest
	if err := json.NewDecoder(bytes.NewReader(log[i:])).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest in the log: %w", err)
	}
	if m.QuarantinePath == "" {
		return nil, fmt.Errorf("manifest in the log has no quarantine_path")
	}
	m.Path = path.Join(m.QuarantinePath, ManifestName)
	return &m, nil
}

// runJob waits for the Job to finish and reads what it left. A Job that
// does not finish in time is deleted, and its pod waited for, before the
// StatefulSet comes back.
func (r *kubeRun) runJob(ctx context.Context) error {
	start := time.Now()
	var final *batchv1.Job
	err := r.poll(ctx, time.Duration(r.a.p.JobTimeout)+jobWaitGrace, "the job has not finished", func(ctx context.Context) (bool, string, error) {
		j, err := r.a.d.Kube.BatchV1().Jobs(r.job.Namespace).Get(ctx, r.job.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if c := jobFinished(j); c != nil {
			final = j
			return true, "", nil
		}
		return false, fmt.Sprintf("active %d, failed %d", j.Status.Active, j.Status.Failed), nil
	})
	if err != nil {
		return errors.Join(fmt.Errorf("wait for job %s: %w", r.jobName(), err), r.deleteJob(ctx))
	}
	c := jobFinished(final)
	r.jobStatus = string(c.Type)
	if c.Reason != "" {
		r.jobStatus += ": " + c.Reason + ": " + c.Message
	}
	r.step("job %s finished after %s: %s", r.jobName(), since(start), r.jobStatus)
	pods, perr := r.jobPods(ctx)
	if c.Type == batchv1.JobComplete {
		r.readManifest(ctx, pods, perr)
		return nil
	}
	msg := fmt.Sprintf("job %s failed: %s: %s", r.jobName(), c.Reason, c.Message)
	for _, p := range pods {
		msg += "; " + describeJobPod(p)
	}
	// The Job controller stops the pods of a failed Job (after its
	// deadline, say); Prometheus must not start before they have.
	return errors.Join(errors.New(msg), r.waitJobPods(ctx, "stopped", func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	}))
}

// waitJobPods waits, with a context of its own bounded by
// pod_gone_timeout, until every pod of the Job is gone or done says it is
// done (nil: only gone counts).
func (r *kubeRun) waitJobPods(ctx context.Context, what string, done func(corev1.Pod) bool) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(r.a.p.PodGoneTimeout))
	defer cancel()
	err := r.poll(wctx, time.Duration(r.a.p.PodGoneTimeout), "the job's pods are still there", func(ctx context.Context) (bool, string, error) {
		pods, err := r.jobPods(ctx)
		if err != nil {
			return false, "", err
		}
		pods = slices.DeleteFunc(pods, func(p corev1.Pod) bool { return done != nil && done(p) })
		return len(pods) == 0, podNames(pods), nil
	})
	if err != nil {
		return fmt.Errorf("wait for the pods of job %s to be %s: %w", r.jobName(), what, err)
	}
	return nil
}

// jobFinished returns the Job's Complete or Failed condition, or nil.
func jobFinished(j *batchv1.Job) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// jobPods lists the Job's pods.
func (r *kubeRun) jobPods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := r.a.d.Kube.CoreV1().Pods(r.job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(r.job.UID)})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// describeJobPod tells how a Job's pod ended, with its termination message
// (the end of its log when it failed).
func describeJobPod(p corev1.Pod) string {
	s := fmt.Sprintf("pod %s: %s", p.Name, p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			s += fmt.Sprintf(", exit %d (%s)", t.ExitCode, t.Reason)
			if m := strings.TrimSpace(t.Message); m != "" {
				s += ": " + m
			}
		} else if w := cs.State.Waiting; w != nil {
			s += fmt.Sprintf(", waiting (%s) %s", w.Reason, w.Message)
		}
	}
	return s
}

// readManifest reads the manifest from the Job's pod's log. Failing to is
// recorded, not an error: the move happened.
func (r *kubeRun) readManifest(ctx context.Context, pods []corev1.Pod, err error) {
	defer func() {
		if r.logErr != nil {
			r.step("manifest not read from the job's log: %v", r.logErr)
		}
	}()
	if err != nil {
		r.logErr = fmt.Errorf("list the job's pods: %w", err)
		return
	}
	var pod string
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded {
			pod = p.Name
		}
	}
	if pod == "" {
		r.logErr = fmt.Errorf("no succeeded pod of job %s", r.jobName())
		return
	}
	lctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	raw, err := r.a.d.Kube.CoreV1().Pods(r.job.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: jobContainer, LimitBytes: new(int64(logLimit))}).DoRaw(lctx)
	if err != nil {
		r.logErr = fmt.Errorf("log of pod %s: %w", pod, err)
		return
	}
	if r.manifest, r.logErr = parseManifest(raw); r.logErr == nil {
		r.step("read the manifest from the log of pod %s: %d files, %d bytes moved into %s", pod, r.manifest.FileCount, r.manifest.TotalBytes, r.manifest.QuarantinePath)
	}
}

// deleteJob deletes a Job that did not finish and waits for its pod to go,
// so that it cannot touch the volume once Prometheus is back.
func (r *kubeRun) deleteJob(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	jobs := r.a.d.Kube.BatchV1().Jobs(r.job.Namespace)
	if r.job.UID == "" { // the create's answer was lost
		j, err := jobs.Get(dctx, r.job.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			r.step("job %s was not created", r.jobName())
			return nil
		case err != nil:
			return fmt.Errorf("find job %s: %w (if it exists, delete it before Prometheus starts)", r.jobName(), err)
		}
		r.job = j
	}
	err := jobs.Delete(dctx, r.job.Name, metav1.DeleteOptions{
		PropagationPolicy: new(metav1.DeletePropagationBackground),
		Preconditions:     &metav1.Preconditions{UID: &r.job.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete unfinished job %s: %w", r.jobName(), err)
	}
	r.step("deleted unfinished job %s", r.jobName())
	if err := r.waitJobPods(ctx, "gone", nil); err != nil {
		return err
	}
	r.step("pods of job %s gone", r.jobName())
	return nil
}
