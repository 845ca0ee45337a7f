package promwal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
)

func TestParseManifest(t *testing.T) {
	m := &Manifest{Version: 1, Complete: true, DataDir: "/prometheus/prometheus-db", QuarantinePath: "/prometheus/selfheal-quarantine/prometheus-db-20250301T110000Z",
		FileCount: 2, TotalBytes: 300, RestoreCommand: "(cd -- /prometheus/prometheus-db && mv -- x .)"}
	out, err := MarshalJSON(m)
	require.NoError(t, err)
	log := append(out, []byte("moved 2 files (300 bytes) into /prometheus/selfheal-quarantine/prometheus-db-20250301T110000Z; manifest …\nrestore (only before Prometheus starts again): …\n")...)

	got, err := parseManifest(log)
	require.NoError(t, err)
	require.Equal(t, m.QuarantinePath, got.QuarantinePath)
	require.Equal(t, m.RestoreCommand, got.RestoreCommand)
	require.Equal(t, "/prometheus/selfheal-quarantine/prometheus-db-20250301T110000Z/manifest.json", got.Path)

	got, err = parseManifest(append([]byte("a warning first\n"), log...))
	require.NoError(t, err)
	require.Equal(t, 300, int(got.TotalBytes))

	for _, bad := range []string{"", "fake logs", "selfheal wal-quarantine: refuse to quarantine …\n", "{\n  \"version\": 1\n}\n", "{\n  \"version\": \n"} {
		_, err := parseManifest([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestKubeRunFirstWritesRefused(t *testing.T) {
	forbidden := func(resource string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "x", errors.New("RBAC: access denied"))
	}
	t.Run("pause refused: nothing to undo", func(t *testing.T) {
		kube, dyn := operatorCluster(nil)
		dyn.PrependReactor("patch", "prometheuses", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, forbidden("prometheuses")
		})
		res, err := newKubeAction(t, kube, dyn, nil).Run(context.Background(), k8sTarget())
		require.ErrorContains(t, err, "prometheus.wal_cleanup: pause prometheus monitoring/main: prometheuses \"x\" is forbidden")
		require.False(t, actions.IsRetryable(err))
		requireReadOnly(t, kube.Actions())
		require.Equal(t, []string{"get", "patch"}, verbs(dyn.Actions()), "no unpause of what was never paused")
		require.Equal(t, "nothing quarantined; statefulset monitoring/prometheus-main not scaled", res.Summary)
		require.Empty(t, res.Touched, "nothing changed")
	})
	t.Run("scale refused: unpaused again", func(t *testing.T) {
		kube, dyn := operatorCluster(nil)
		kube.PrependReactor("get", "statefulsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() != "scale" {
				return false, nil, nil
			}
			return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-main", Namespace: "monitoring"}, Spec: autoscalingv1.ScaleSpec{Replicas: 2}}, nil
		})
		kube.PrependReactor("update", "statefulsets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, forbidden("statefulsets/scale")
		})
		res, err := newKubeAction(t, kube, dyn, nil).Run(context.Background(), k8sTarget())
		require.ErrorContains(t, err, "prometheus.wal_cleanup: scale statefulset monitoring/prometheus-main to 0: statefulsets/scale \"x\" is forbidden")
		require.False(t, actions.IsRetryable(err))
		require.Equal(t, []string{"get", "patch", "patch"}, verbs(dyn.Actions()), "pause, then unpause")
		require.Equal(t, map[string]any{"metadata": map[string]any{"annotations": map[string]any{PausedByAnnotation: nil}}, "spec": map[string]any{"paused": nil}},
			patchBody(t, dyn.Actions()[2]), "spec.paused removed: it was absent")
		pause := patchBody(t, dyn.Actions()[1])
		require.Equal(t, map[string]any{"paused": true}, pause["spec"])
		require.Equal(t, `prometheus.wal_cleanup playbook "prometheus-oom" step "drop-head" run run-7: statefulset monitoring/prometheus-main had 2 replicas`,
			pause["metadata"].(map[string]any)["annotations"].(map[string]any)[PausedByAnnotation])
		var updates int
		for _, act := range kube.Actions() {
			if act.GetVerb() == "update" {
				updates++
			}
		}
		require.Equal(t, 1, updates, "a refused scale is not retried")
		steps := res.Details["steps"]
		require.Contains(t, steps, "1. 11:00:00.000Z paused prometheus monitoring/main (spec.paused: true, annotation selfheal.io/paused-by)\n")
		require.True(t, strings.HasSuffix(steps, "\n2. 11:00:00.000Z unpaused prometheus monitoring/main"), "the pods were not touched: no wait for Ready\n%s", steps)
		require.Equal(t, []actions.ObjectRef{promRef}, res.Touched, "paused and unpaused; the StatefulSet was not scaled")
	})
}

// promRef is the Prometheus of operatorCluster as a touched object.
var promRef = actions.ObjectRef{APIVersion: "monitoring.coreos.com/v1", Kind: "Prometheus", Namespace: "monitoring", Name: "main", UID: "prom-uid"}

func verbs(as []k8stesting.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.GetVerb()
	}
	return out
}

func patchBody(t *testing.T, a k8stesting.Action) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.(k8stesting.PatchAction).GetPatch(), &m))
	return m
}

func TestDescribeJobPod(t *testing.T) {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job-x"}, Status: corev1.PodStatus{
		Phase: corev1.PodFailed,
		ContainerStatuses: []corev1.ContainerStatus{{Name: jobContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", Message: "selfheal wal-quarantine: refuse to quarantine the head of /prometheus/prometheus-db: wal_size: wal/ holds 1024 bytes\n",
		}}}},
	}}
	require.Equal(t, "pod job-x: Failed, exit 1 (Error): selfheal wal-quarantine: refuse to quarantine the head of /prometheus/prometheus-db: wal_size: wal/ holds 1024 bytes", describeJobPod(p))
}

// fakeScale makes the fake serve statefulsets/scale for sts, standing in
// for the StatefulSet controller: a scale to 0 deletes its pods. It
// returns the replicas written, in order.
func fakeScale(t *testing.T, kube *fake.Clientset, sts *appsv1.StatefulSet) func() []int32 {
	var (
		replicas = *sts.Spec.Replicas
		written  []int32
	)
	scale := func() *autoscalingv1.Scale {
		return &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: sts.Name, Namespace: sts.Namespace}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	}
	kube.PrependReactor("get", "statefulsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return a.GetSubresource() == "scale", scale(), nil
	})
	kube.PrependReactor("update", "statefulsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		replicas = a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale).Spec.Replicas
		written = append(written, replicas)
		if replicas == 0 {
			for i := range 2 {
				require.NoError(t, kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), sts.Namespace, fmt.Sprintf("%s-%d", sts.Name, i)))
			}
		}
		return true, scale(), nil
	})
	return func() []int32 { return written }
}

func TestKubeRunLostJobCreateAnswer(t *testing.T) {
	var sts *appsv1.StatefulSet
	kube, dyn := operatorCluster(func(s *appsv1.StatefulSet, _ *unstructured.Unstructured) { sts = s })
	written := fakeScale(t, kube, sts)
	kube.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The API server stores the Job, but the answer is lost.
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job).DeepCopy()
		j.UID = "job-uid"
		require.NoError(t, kube.Tracker().Add(j))
		return true, nil, apierrors.NewServerTimeout(schema.GroupResource{Group: "batch", Resource: "jobs"}, "create", 1)
	})
	a := newKubeAction(t, kube, dyn, func(p *Params) { p.ReadyTimeout = model.Duration(100 * time.Millisecond) })

	res, err := a.Run(context.Background(), k8sTarget())
	require.ErrorContains(t, err, "create job monitoring/prometheus-main-wal-quarantine-")
	require.ErrorContains(t, err, "The create operation against jobs.batch could not be completed at this time")
	require.ErrorContains(t, err, "statefulset monitoring/prometheus-main: not Ready after ", "the fake has no controller to bring pods back")
	require.False(t, actions.IsRetryable(err), "after a change, failures are permanent")
	require.Equal(t, []int32{0, 2}, written(), "scaled to 0, then back")
	jobs, lerr := kube.BatchV1().Jobs("monitoring").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, lerr)
	require.Empty(t, jobs.Items, "the job whose creation was not confirmed is deleted before the scale back")
	require.Equal(t, []string{"get", "patch", "patch"}, verbs(dyn.Actions()))

	var writes []string
	for _, act := range kube.Actions() {
		if v := act.GetVerb(); v != "get" && v != "list" {
			writes = append(writes, strings.TrimSuffix(v+" "+act.GetResource().Resource+"/"+act.GetSubresource(), "/"))
		}
	}
	require.Equal(t, []string{"update statefulsets/scale", "create jobs", "delete jobs", "update statefulsets/scale"}, writes)
	got := steps(res)
	require.Equal(t, []string{
		"paused prometheus monitoring/main (spec.paused: true, annotation selfheal.io/paused-by)",
		"scaled statefulset monitoring/prometheus-main from 2 to 0 replicas",
		"pods of statefulset monitoring/prometheus-main gone after " + strings.TrimPrefix(got[2], "pods of statefulset monitoring/prometheus-main gone after "),
	}, got[:3])
	require.True(t, strings.HasPrefix(got[3], "deleted unfinished job monitoring/prometheus-main-wal-quarantine-"), got[3])
	require.Equal(t, []string{
		"scaled statefulset monitoring/prometheus-main back to 2 replicas",
		"unpaused prometheus monitoring/main",
	}, got[5:7])
	require.Regexp(t, `^job monitoring/prometheus-main-wal-quarantine-\w{5} did not complete \(deleted unfinished\); statefulset monitoring/prometheus-main back at 2 replicas$`, res.Summary)
	require.Equal(t, []actions.ObjectRef{
		{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "monitoring", Name: "prometheus-main", UID: "sts-uid"},
		promRef,
		{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: "monitoring", Name: "prometheus-main-db-prometheus-main-0", UID: "pvc-uid"},
	}, res.Touched, "reported with the error: the run's Events name them")
}

// steps are the steps a result lists, without numbers and times.
func steps(res actions.Result) []string {
	var out []string
	for _, l := range strings.Split(res.Details["steps"], "\n") {
		// "3. 12:00:00.000Z scaled …" -> "scaled …"
		_, rest, _ := strings.Cut(l, "Z ")
		out = append(out, rest)
	}
	return out
}
