package kubernetes

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/strictyaml"
)

// fixedNow is the clock of the unit tests.
var fixedNow = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// target is an alert about pod ns/pod.
func target(ns, pod string) actions.Target {
	a := alert.Alert{
		Status:   alert.Firing,
		Labels:   map[string]string{"alertname": "PodWedged", "namespace": ns, "pod": pod},
		StartsAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
	}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	return actions.NewTarget(a, "restart-wedged", "restart", "run-1")
}

// build decodes src as a step's `with` through a registry holding the
// three specs bound to client, as playbooks do.
func build(t *testing.T, client clientset.Interface, id, src string) (actions.Action, error) {
	t.Helper()
	r := actions.NewRegistry()
	for _, s := range Specs(Deps{Client: client, Now: func() time.Time { return fixedNow }}) {
		require.NoError(t, r.Register(s))
	}
	a, _, err := r.Build("step.yaml", "steps[0].with", id, withNode(t, src))
	return a, err
}

// withNode parses src as a step's `with`.
func withNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	doc, err := strictyaml.Parse("step.yaml", []byte(src))
	require.NoError(t, err)
	require.NotEmpty(t, doc.Content)
	return doc.Content[0]
}

// mustBuild is build that must succeed.
func mustBuild(t *testing.T, client clientset.Interface, id, src string) actions.Action {
	t.Helper()
	a, err := build(t, client, id, src)
	require.NoError(t, err)
	return a
}

func ctrlRef(kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: ptr(true)}
}

func ptr[T any](v T) *T { return &v }

// podTemplate has containers app (memory limit 1Gi, request 512Mi) and
// sidecar (no resources).
func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "app:1", Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceCPU: resource.MustParse("2")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			}},
			{Name: "sidecar", Image: "sidecar:1"},
		}},
	}
}

// world is the cluster of the unit tests, in namespace "shop":
//
//	Deployment web → ReplicaSet web-7d9f → Pod web-7d9f-a
//	StatefulSet db (OnDelete) → Pod db-0
//	StatefulSet prom, controlled by a Prometheus resource → Pod prom-0
//	DaemonSet agent → Pod agent-x
//	Deployment frozen (paused) → ReplicaSet frozen-1 → Pod frozen-1-a
//	Job batch → Pod batch-a; ReplicaSet lone (no controller) → Pod lone-a
//	Pod bare (no controller)
func world() []runtime.Object {
	ns := "shop"
	meta := func(name string, uid types.UID, owner ...metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid, OwnerReferences: owner, Labels: map[string]string{"app": "web"}}
	}
	pod := func(name string, uid types.UID, owner ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: meta(name, uid, owner...), Spec: podTemplate().Spec,
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	}
	onDelete := appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	promRef := metav1.OwnerReference{APIVersion: "monitoring.coreos.com/v1", Kind: "Prometheus", Name: "k8s", UID: "u-cr", Controller: ptr(true)}
	return []runtime.Object{
		&appsv1.Deployment{ObjectMeta: meta("web", "u-web"), Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Template: podTemplate()}},
		&appsv1.ReplicaSet{ObjectMeta: meta("web-7d9f", "u-rs", ctrlRef("Deployment", "web", "u-web"))},
		pod("web-7d9f-a", "u-pod", ctrlRef("ReplicaSet", "web-7d9f", "u-rs")),
		&appsv1.StatefulSet{ObjectMeta: meta("db", "u-db"), Spec: appsv1.StatefulSetSpec{Template: podTemplate(), UpdateStrategy: onDelete}},
		pod("db-0", "u-db-0", ctrlRef("StatefulSet", "db", "u-db")),
		&appsv1.StatefulSet{ObjectMeta: meta("prom", "u-prom", promRef), Spec: appsv1.StatefulSetSpec{Template: podTemplate()}},
		pod("prom-0", "u-prom-0", ctrlRef("StatefulSet", "prom", "u-prom")),
		&appsv1.DaemonSet{ObjectMeta: meta("agent", "u-agent"), Spec: appsv1.DaemonSetSpec{Template: podTemplate()}},
		pod("agent-x", "u-agent-x", ctrlRef("DaemonSet", "agent", "u-agent")),
		&appsv1.Deployment{ObjectMeta: meta("frozen", "u-frozen"), Spec: appsv1.DeploymentSpec{Paused: true, Template: podTemplate()}},
		&appsv1.ReplicaSet{ObjectMeta: meta("frozen-1", "u-frozen-1", ctrlRef("Deployment", "frozen", "u-frozen"))},
		pod("frozen-1-a", "u-frozen-1-a", ctrlRef("ReplicaSet", "frozen-1", "u-frozen-1")),
		pod("batch-a", "u-batch-a", metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "batch", UID: "u-job", Controller: ptr(true)}),
		&appsv1.ReplicaSet{ObjectMeta: meta("lone", "u-lone")},
		pod("lone-a", "u-lone-a", ctrlRef("ReplicaSet", "lone", "u-lone")),
		pod("bare", "u-bare"),
	}
}

// newFake returns a fake clientset holding world() plus objs.
func newFake(objs ...runtime.Object) *fake.Clientset {
	return fake.NewClientset(append(world(), objs...)...)
}

// writes lists the fake's recorded actions that are not get or list.
func writes(c *fake.Clientset) []string {
	var w []string
	for _, a := range c.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			s := v + " " + a.GetResource().Resource
			if sub := a.GetSubresource(); sub != "" {
				s += "/" + sub
			}
			w = append(w, s)
		}
	}
	return w
}

// getDeployment reads a deployment from the fake.
func getDeployment(t *testing.T, c clientset.Interface, name string) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments("shop").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d
}

// scaleReactor serves the scale subresource of Deployments and
// StatefulSets from the fake's tracker, which the fake does not do.
func scaleReactor(c *fake.Clientset) {
	c.PrependReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		g, ok := a.(k8stesting.GetAction)
		if !ok || a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		obj, err := c.Tracker().Get(a.GetResource(), a.GetNamespace(), g.GetName())
		if err != nil {
			return true, nil, err
		}
		var r *int32
		var rv string
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r, rv = o.Spec.Replicas, o.ResourceVersion
		case *appsv1.StatefulSet:
			r, rv = o.Spec.Replicas, o.ResourceVersion
		}
		return true, scaleOf(g.GetName(), replicas(r), rv), nil
	})
	c.PrependReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u, ok := a.(k8stesting.UpdateAction)
		if !ok || a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		s := u.GetObject().(*autoscalingv1.Scale)
		obj, err := c.Tracker().Get(a.GetResource(), a.GetNamespace(), s.Name)
		if err != nil {
			return true, nil, err
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			o.Spec.Replicas = ptr(s.Spec.Replicas)
		case *appsv1.StatefulSet:
			o.Spec.Replicas = ptr(s.Spec.Replicas)
		}
		return true, s, c.Tracker().Update(a.GetResource(), obj, a.GetNamespace())
	})
}

func scaleOf(name string, r int32, rv string) *autoscalingv1.Scale {
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ResourceVersion: rv},
		Spec:       autoscalingv1.ScaleSpec{Replicas: r},
		Status:     autoscalingv1.ScaleStatus{Replicas: r},
	}
}
