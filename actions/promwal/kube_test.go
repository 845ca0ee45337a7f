package promwal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
)

const testImage = "registry.example/selfheal:v0.1.0"

// kubeDeps are deps for kubernetes mode on kube and an empty fake dynamic
// client.
func kubeDeps(kube kubernetes.Interface) Deps {
	return Deps{
		Kube:         kube,
		Dynamic:      newDynamic(),
		Image:        testImage,
		PollInterval: 20 * time.Millisecond,
		Now:          func() time.Time { return testNow },
	}
}

func newDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{PrometheusResource: "PrometheusList"}, objs...)
}

// kubeParams are kubernetes-mode params for statefulset monitoring/<sts>,
// changed by set.
func kubeParams(sts string, set func(p *Params)) *Params {
	p := DefaultParams()
	p.Mode = ModeKubernetes
	p.Namespace = actions.MustTemplate("{{ .Labels.namespace }}")
	p.StatefulSet = actions.MustTemplate(sts)
	if set != nil {
		set(p)
	}
	return p
}

// k8sTarget is the alert the kubernetes-mode tests act for.
func k8sTarget() actions.Target {
	t := target()
	t.Labels = map[string]string{"alertname": "PrometheusOOMLoop", "namespace": "monitoring"}
	return t
}

// prometheusCR is a prometheus-operator Prometheus.
func prometheusCR(ns, name, uid string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "Prometheus",
		"metadata":   map[string]any{"namespace": ns, "name": name, "uid": uid},
		"spec":       spec,
	}}
}

// operatorStatefulSet is a StatefulSet as prometheus-operator makes it
// for Prometheus <prom>: prometheus-<prom>, owned by the Prometheus, its
// TSDB in sub-path prometheus-db of claim template prometheus-<prom>-db.
func operatorStatefulSet(ns, prom, promUID string, replicas int32) *appsv1.StatefulSet {
	name := "prometheus-" + prom
	labels := map[string]string{"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": prom}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: "sts-uid",
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "monitoring.coreos.com/v1", Kind: "Prometheus", Name: prom, UID: types.UID(promUID), Controller: new(true),
			}},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: new(int64(1000)), RunAsNonRoot: new(true), FSGroup: new(int64(2000))},
					NodeSelector:    map[string]string{"pool": "monitoring"},
					Tolerations:     []corev1.Toleration{{Key: "dedicated", Value: "monitoring", Effect: corev1.TaintEffectNoSchedule}},
					Volumes:         []corev1.Volume{{Name: "config-out", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					Containers: []corev1.Container{
						{Name: "config-reloader", Image: "quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0"},
						{
							Name:  "prometheus",
							Image: "quay.io/prometheus/prometheus:v3.5.0",
							VolumeMounts: []corev1.VolumeMount{
								{Name: "config-out", MountPath: "/etc/prometheus/config_out"},
								{Name: name + "-db", MountPath: "/prometheus", SubPath: "prometheus-db"},
							},
							SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: new(true)},
						},
					},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-db"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
		Status: appsv1.StatefulSetStatus{Replicas: replicas, ReadyReplicas: replicas - 1},
	}
}

// stsPod is ordinal i of sts; the first one crash-loops after OOM kills.
func stsPod(sts *appsv1.StatefulSet, i int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: sts.Namespace, Name: fmt.Sprintf("%s-%d", sts.Name, i), UID: types.UID(fmt.Sprintf("pod-uid-%d", i)),
			Labels:          sts.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name, UID: sts.UID, Controller: new(true)}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "prometheus", Ready: true}}},
	}
	if i == 0 {
		p.Status.ContainerStatuses[0] = corev1.ContainerStatus{
			Name: "prometheus", RestartCount: 12,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason: "OOMKilled", ExitCode: 137, FinishedAt: metav1.NewTime(time.Date(2025, 3, 1, 10, 58, 0, 0, time.UTC)),
			}},
		}
	}
	return p
}

func boundPVC(ns, name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: "pvc-uid"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeName: "pv-1", StorageClassName: new("standard"),
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("50Gi")}},
	}
}

// operatorCluster is a fake cluster with Prometheus monitoring/main
// (2 replicas), its StatefulSet, pods and the PVC of ordinal 0.
func operatorCluster(set func(sts *appsv1.StatefulSet, cr *unstructured.Unstructured)) (*fake.Clientset, *dynamicfake.FakeDynamicClient) {
	sts := operatorStatefulSet("monitoring", "main", "prom-uid", 2)
	cr := prometheusCR("monitoring", "main", "prom-uid", map[string]any{"replicas": int64(2)})
	if set != nil {
		set(sts, cr)
	}
	kube := fake.NewClientset(sts, stsPod(sts, 0), stsPod(sts, 1), boundPVC("monitoring", "prometheus-main-db-prometheus-main-0"))
	return kube, newDynamic(cr)
}

// requireReadOnly fails if any recorded action is not a get or a list.
func requireReadOnly(t *testing.T, as []k8stesting.Action) {
	t.Helper()
	require.NotEmpty(t, as)
	for _, a := range as {
		require.Contains(t, []string{"get", "list"}, a.GetVerb(), "%s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
	}
}

// newKubeAction builds a kubernetes-mode action on statefulset
// monitoring/prometheus-main of the fakes, its params changed by set.
func newKubeAction(t *testing.T, kube *fake.Clientset, dyn *dynamicfake.FakeDynamicClient, set func(p *Params)) *Action {
	t.Helper()
	d := kubeDeps(kube)
	d.Dynamic = dyn
	a, err := New(kubeParams("prometheus-main", set), d)
	require.NoError(t, err)
	return a
}

func TestKubePlanReadsOnlyAndShowsTheJob(t *testing.T) {
	kube, dyn := operatorCluster(nil)
	a := newKubeAction(t, kube, dyn, nil)

	plan, err := a.Plan(context.Background(), k8sTarget())
	require.NoError(t, err)
	requireReadOnly(t, kube.Actions())
	requireReadOnly(t, dyn.Actions())

	require.Equal(t, "pause prometheus monitoring/main, scale statefulset monitoring/prometheus-main from 2 to 0, "+
		"run `selfheal wal-quarantine` in a job on persistentvolumeclaim prometheus-main-db-prometheus-main-0 (prometheus-db -> selfheal-quarantine/), "+
		"scale back to 2, unpause, wait for Ready", plan.Summary)
	require.Equal(t, []actions.Param{
		{Name: "mode", Value: "kubernetes"},
		{Name: "namespace", Value: "monitoring"},
		{Name: "statefulset", Value: "prometheus-main"},
		{Name: "pvc", Value: "prometheus-main-db-prometheus-main-0 (volumeClaimTemplate prometheus-main-db, ordinal 0)"},
		{Name: "data_sub_path", Value: "prometheus-db"},
		{Name: "quarantine_sub_path", Value: "selfheal-quarantine"},
		{Name: "min_wal_bytes", Value: "67108864 (64MiB)"},
		{Name: "image", Value: testImage},
		{Name: "pod_gone_timeout", Value: "10m"},
		{Name: "job_timeout", Value: "10m"},
		{Name: "ready_timeout", Value: "10m"},
	}, plan.Params)
	text := strings.Join(plan.Details, "\n")
	for _, want := range []string{
		"statefulset monitoring/prometheus-main: uid sts-uid, replicas 2, ready 1, pod security context runAsUser 1000, runAsGroup unset, fsGroup 2000, runAsNonRoot true",
		"pod prometheus-main-0: uid pod-uid-0, Running; container prometheus: ready false, restarts 12, waiting CrashLoopBackOff, last terminated OOMKilled (exit 137) at 2025-03-01T10:58:00Z",
		"pod prometheus-main-1: uid pod-uid-1, Running; container prometheus: ready true, restarts 0",
		"owner: prometheus monitoring/main (uid prom-uid), spec.paused false: paused first",
		"persistentvolumeclaim prometheus-main-db-prometheus-main-0: Bound, volume pv-1, capacity 50Gi, access modes [ReadWriteOnce], storage class standard",
		"mount: container prometheus mounts volume prometheus-main-db at /prometheus with subPath prometheus-db\n",
		"step 1: PATCH (merge) prometheus monitoring/main: spec.paused true, annotation selfheal.io/paused-by",
		"step 2: PUT statefulsets/prometheus-main/scale: replicas 2 -> 0 (recorded: 2)",
		"step 3: list the statefulset's pods every 20ms until none is left, for up to pod_gone_timeout 10m",
		"step 4: create the job below, named <generateName><5 random characters>; get it every 20ms until Complete or Failed, for up to job_timeout 10m + 30s",
		"step 6: always, also when an earlier step failed: PUT statefulsets/prometheus-main/scale: replicas -> 2",
		"step 7: always: PATCH (merge) prometheus monitoring/main: spec.paused as it was (absent), annotation selfheal.io/paused-by removed",
		"step 8: get the statefulset every 20ms until it has observed the scale back and 2/2 pods are Ready, for up to ready_timeout 10m",
	} {
		require.Contains(t, text, want)
	}
	var job string
	for _, d := range plan.Details {
		if s, ok := strings.CutPrefix(d, "job: "); ok {
			job = s
		}
	}
	for _, want := range []string{
		`"generateName":"prometheus-main-wal-quarantine-","namespace":"monitoring"`,
		`"selfheal.io/replicas":"2"`, `"selfheal.io/run":"run-7"`, `"selfheal.io/statefulset":"monitoring/prometheus-main"`,
		`"activeDeadlineSeconds":600,"backoffLimit":0`,
		`"ttlSecondsAfterFinished":86400`,
		`"volumes":[{"name":"prometheus-data","persistentVolumeClaim":{"claimName":"prometheus-main-db-prometheus-main-0"}}]`,
		`"image":"` + testImage + `","command":["selfheal","wal-quarantine","--data-dir=/prometheus/prometheus-db","--quarantine-dir=/prometheus/selfheal-quarantine","--min-wal-bytes=67108864"]`,
		`"volumeMounts":[{"name":"prometheus-data","mountPath":"/prometheus"}]`,
		`"securityContext":{"runAsUser":1000,"runAsNonRoot":true,"fsGroup":2000}`,
		`"securityContext":{"capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false}`,
		`"nodeSelector":{"pool":"monitoring"}`,
		`"tolerations":[{"key":"dedicated","value":"monitoring","effect":"NoSchedule"}]`,
		`"automountServiceAccountToken":false`,
		`"restartPolicy":"Never"`,
		`"terminationMessagePolicy":"FallbackToLogsOnError"`,
	} {
		require.Contains(t, job, want)
	}
}

func TestKubePlanVariants(t *testing.T) {
	t.Run("already paused", func(t *testing.T) {
		kube, dyn := operatorCluster(func(_ *appsv1.StatefulSet, cr *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(cr.Object, true, "spec", "paused"))
		})
		plan, err := newKubeAction(t, kube, dyn, nil).Plan(context.Background(), k8sTarget())
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(plan.Summary, "scale statefulset monitoring/prometheus-main from 2 to 0"), plan.Summary)
		require.NotContains(t, plan.Summary, "unpause")
		require.Contains(t, plan.Details, "owner: prometheus monitoring/main (uid prom-uid) is already paused (spec.paused: true); it is left paused")
		require.NotContains(t, strings.Join(plan.Details, "\n"), "PATCH")
	})
	t.Run("ordinals start at 3", func(t *testing.T) {
		kube, dyn := operatorCluster(func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) {
			sts.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3}
		})
		require.NoError(t, kube.Tracker().Add(boundPVC("monitoring", "prometheus-main-db-prometheus-main-3")))
		plan, err := newKubeAction(t, kube, dyn, nil).Plan(context.Background(), k8sTarget())
		require.NoError(t, err)
		require.Contains(t, plan.Params, actions.Param{Name: "pvc", Value: "prometheus-main-db-prometheus-main-3 (volumeClaimTemplate prometheus-main-db, ordinal 3)"})
	})
	t.Run("no operator, explicit pvc and paths", func(t *testing.T) {
		kube, dyn := operatorCluster(func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) {
			sts.OwnerReferences = nil
		})
		require.NoError(t, kube.Tracker().Add(boundPVC("monitoring", "other-claim")))
		a := newKubeAction(t, kube, dyn, func(p *Params) {
			p.PVC = actions.MustTemplate("other-claim")
			p.DataSubPath = "data/tsdb"
			p.QuarantineSubPath = "data/quarantine"
			p.MinWALBytes = 1 << 30
		})
		plan, err := a.Plan(context.Background(), k8sTarget())
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(plan.Summary, "scale statefulset monitoring/prometheus-main from 2 to 0, run `selfheal wal-quarantine` in a job on persistentvolumeclaim other-claim (data/tsdb -> data/quarantine/)"), plan.Summary)
		require.Contains(t, plan.Params, actions.Param{Name: "pvc", Value: "other-claim (from parameter pvc)"})
		text := strings.Join(plan.Details, "\n")
		require.Contains(t, text, "owner: no prometheus-operator Prometheus owns the statefulset; nothing is paused")
		require.Contains(t, text, `"--data-dir=/prometheus/data/tsdb","--quarantine-dir=/prometheus/data/quarantine","--min-wal-bytes=1073741824"`)
		require.NotContains(t, text, "mount: ", "the pods do not mount other-claim")
		requireReadOnly(t, kube.Actions())
		require.Empty(t, dyn.Actions())
	})
}

func TestKubeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(sts *appsv1.StatefulSet, cr *unstructured.Unstructured)
		pvc  string
		want string
	}{
		{"zero replicas", func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) { sts.Spec.Replicas = new(int32(0)) },
			"", "statefulset monitoring/prometheus-main has 0 replicas: nothing runs"},
		{"other controller", func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) {
			sts.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Monitor", Name: "m", UID: "u", Controller: new(true)}}
		}, "", "it is controlled by Monitor m, which would undo the scale to 0"},
		{"owner gone", func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) { sts.OwnerReferences[0].Name = "gone" },
			"", "its owner Prometheus monitoring/gone does not exist"},
		{"owner replaced", func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) { sts.OwnerReferences[0].UID = "old-uid" },
			"", "its owner Prometheus monitoring/main has uid prom-uid, not old-uid"},
		{"two claim templates", func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) {
			sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "wal"}})
		}, "", "it has 2 volumeClaimTemplates: set pvc"},
		{"no claim", nil, "missing", "persistentvolumeclaim monitoring/missing (from parameter pvc) does not exist"},
		{"claims deleted on scale down", func(sts *appsv1.StatefulSet, _ *unstructured.Unstructured) {
			sts.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			}
		}, "", "its persistentVolumeClaimRetentionPolicy.whenScaled is Delete: scaling it to 0 would delete the PVCs, and the TSDB with them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube, dyn := operatorCluster(tc.set)
			a := newKubeAction(t, kube, dyn, func(p *Params) {
				if tc.pvc != "" {
					p.PVC = actions.MustTemplate(tc.pvc)
				}
			})
			plan, err := a.Plan(context.Background(), k8sTarget())
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(plan.Summary, "refuse to quarantine the head of statefulset monitoring/prometheus-main: "), plan.Summary)
			require.Contains(t, plan.Summary, tc.want)
			require.Contains(t, strings.Join(plan.Details, "\n"), "\nrefuse: "+tc.want)

			_, err = a.Run(context.Background(), k8sTarget())
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, ErrRefused)
			require.False(t, actions.IsRetryable(err))
			requireReadOnly(t, kube.Actions())
			for _, a := range dyn.Actions() {
				require.Equal(t, "get", a.GetVerb())
			}
		})
	}
}

func TestKubeErrorsBeforeAnyChange(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		retryable bool
	}{
		{"unavailable", apierrors.NewServiceUnavailable("etcd leader changed"), true},
		{"server timeout", apierrors.NewServerTimeout(schema.GroupResource{Resource: "statefulsets"}, "get", 1), true},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"forbidden", apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, "prometheus-main", errors.New("RBAC")), false},
		{"not found", apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, "prometheus-main"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube, dyn := operatorCluster(nil)
			kube.PrependReactor("get", "statefulsets", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tc.err
			})
			a := newKubeAction(t, kube, dyn, nil)
			_, err := a.Run(context.Background(), k8sTarget())
			require.ErrorContains(t, err, "prometheus.wal_cleanup: get statefulset monitoring/prometheus-main: ")
			require.Equal(t, tc.retryable, actions.IsRetryable(err))
			_, err = a.Plan(context.Background(), k8sTarget())
			require.Equal(t, tc.retryable, actions.IsRetryable(err))
			requireReadOnly(t, kube.Actions())
		})
	}
	t.Run("owner unreadable", func(t *testing.T) {
		kube, dyn := operatorCluster(nil)
		dyn.PrependReactor("get", "prometheuses", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewInternalError(errors.New("boom"))
		})
		_, err := newKubeAction(t, kube, dyn, nil).Run(context.Background(), k8sTarget())
		require.ErrorContains(t, err, "get prometheus monitoring/main (owner of statefulset monitoring/prometheus-main)")
		require.True(t, actions.IsRetryable(err))
		requireReadOnly(t, kube.Actions())
	})
	t.Run("render error", func(t *testing.T) {
		kube, dyn := operatorCluster(nil)
		a := newKubeAction(t, kube, dyn, func(p *Params) { p.PVC = actions.MustTemplate("{{ .Labels.nope }}") })
		_, err := a.Run(context.Background(), k8sTarget())
		require.ErrorContains(t, err, "prometheus.wal_cleanup: pvc: render")
		a = newKubeAction(t, kube, dyn, func(p *Params) { p.StatefulSet = actions.MustTemplate("{{ .Labels.alertname }}") })
		_, err = a.Plan(context.Background(), k8sTarget())
		require.ErrorContains(t, err, `statefulset: "PrometheusOOMLoop" is not a valid name`)
		require.Empty(t, kube.Actions())
	})
}

func TestKubeValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(p *Params)
		want string
	}{
		{"ok", func(*Params) {}, ""},
		{"nested sub-paths", func(p *Params) { p.DataSubPath, p.QuarantineSubPath = "a/tsdb", "a/quarantine" }, ""},
		{"no namespace", func(p *Params) { p.Namespace = actions.Template{} }, "namespace: must be set in mode kubernetes"},
		{"no statefulset", func(p *Params) { p.StatefulSet = actions.Template{} }, "statefulset: must be set in mode kubernetes"},
		{"bad namespace", func(p *Params) { p.Namespace = actions.MustTemplate("Monitoring") }, `namespace: "Monitoring" is not a valid name`},
		{"bad pvc", func(p *Params) { p.PVC = actions.MustTemplate("db_0") }, `pvc: "db_0" is not a valid name`},
		{"host parameter", func(p *Params) { p.ReadyURL = actions.MustTemplate("http://x/-/ready") }, "ready_url: only for mode host"},
		{"absolute sub-path", func(p *Params) { p.DataSubPath = "/prometheus-db" }, `data_sub_path: "/prometheus-db" must be relative to the volume`},
		{"escaping sub-path", func(p *Params) { p.QuarantineSubPath = "../q" }, `quarantine_sub_path: "../q" must be a clean relative path`},
		{"unclean sub-path", func(p *Params) { p.QuarantineSubPath = "a//q" }, `quarantine_sub_path: "a//q" must be a clean relative path`},
		{"volume root", func(p *Params) { p.DataSubPath = "" }, `data_sub_path: "" must be set: the quarantine must be on the same volume, outside the TSDB`},
		{"quarantine inside the TSDB", func(p *Params) { p.QuarantineSubPath = "prometheus-db/q" }, `quarantine_sub_path: "prometheus-db/q" must be outside data_sub_path "prometheus-db"`},
		{"TSDB inside the quarantine", func(p *Params) { p.DataSubPath = "selfheal-quarantine/x" }, "must be outside data_sub_path"},
		{"zero pod timeout", func(p *Params) { p.PodGoneTimeout = 0 }, "pod_gone_timeout: must be greater than 0"},
		{"sub-second job", func(p *Params) { p.JobTimeout = model.Duration(500 * time.Millisecond) }, "job_timeout: must be at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := kubeParams("prometheus-main", tc.set)
			err := p.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNewKubeNeedsClusterAndImage(t *testing.T) {
	p := kubeParams("prometheus-main", nil)
	d := kubeDeps(fake.NewClientset())
	_, err := New(p, d)
	require.NoError(t, err)

	noKube := d
	noKube.Kube = nil
	_, err = New(p, noKube)
	require.EqualError(t, err, "prometheus.wal_cleanup: mode kubernetes: kubernetes is not configured (set kubernetes in the daemon's config)")
	noDyn := d
	noDyn.Dynamic = nil
	_, err = New(p, noDyn)
	require.ErrorContains(t, err, "kubernetes is not configured")
	noImage := d
	noImage.Image = ""
	_, err = New(p, noImage)
	require.EqualError(t, err, "prometheus.wal_cleanup: mode kubernetes: kubernetes.image is not set (the Job runs `selfheal wal-quarantine` from it)")

	// Host mode needs neither.
	_, err = New(&Params{Mode: ModeHost, DataDir: actions.MustTemplate("/d"), QuarantineDir: actions.MustTemplate("/q"), ReadyTimeout: model.Duration(time.Minute)}, Deps{})
	require.NoError(t, err)
}

func TestKubeMaxDuration(t *testing.T) {
	p := kubeParams("prometheus-main", nil)
	// scale down 1m, pods gone 10m, job 10m + 30s, deleting an unfinished
	// job 2m and waiting for its pod 10m, scale back 2m, unpause 2m, ready
	// 10m, 2m of slack.
	require.Equal(t, 49*time.Minute+30*time.Second, p.MaxDuration())
	require.Equal(t, 12*time.Minute, DefaultParams().MaxDuration())
}
