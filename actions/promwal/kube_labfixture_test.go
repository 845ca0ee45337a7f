package promwal

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/e2e/k8slab"
)

// crdOnce installs the Prometheus CRD once per test binary.
var crdOnce sync.Once

// labCluster is one test's namespace with an operator-style Prometheus.
type labCluster struct {
	lab   *k8slab.Lab
	admin kubernetes.Interface
	dyn   dynamic.Interface
	ns    string
	sts   *appsv1.StatefulSet
	prom  *unstructured.Unstructured
}

type labOptions struct {
	noOperator bool
	paused     bool
}

const labSts = "prometheus-main"

// newLabCluster creates, in a new namespace, Prometheus "main" (unless
// noOperator) and its StatefulSet prometheus-main with one replica whose
// claim prometheus-main-db-prometheus-main-0 binds to a hostPath PV made
// for it, and waits for the pod to be Ready.
func newLabCluster(t *testing.T, o labOptions) *labCluster {
	t.Helper()
	lab := k8slab.Get(t)
	c := &labCluster{lab: lab, admin: lab.Client(t), ns: lab.Namespace(t)}
	var err error
	c.dyn, err = dynamic.NewForConfig(lab.Admin)
	require.NoError(t, err)
	crdOnce.Do(func() { ensurePrometheusCRD(t, c.dyn) })
	ctx := context.Background()
	require.Eventually(t, func() bool {
		_, err := c.dyn.Resource(PrometheusResource).Namespace(c.ns).List(ctx, metav1.ListOptions{})
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "the prometheuses resource is not served")

	sts := operatorStatefulSet(c.ns, "main", "", 1)
	sts.UID = ""
	sts.Status = appsv1.StatefulSetStatus{}
	sts.Spec.Template.Spec.NodeSelector = nil
	sts.Spec.Template.Spec.Tolerations = nil
	sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = new("")
	if o.noOperator {
		sts.OwnerReferences = nil
	} else {
		spec := map[string]any{"replicas": int64(1)}
		if o.paused {
			spec["paused"] = true
		}
		c.prom, err = c.dyn.Resource(PrometheusResource).Namespace(c.ns).Create(ctx, prometheusCR(c.ns, "main", "", spec), metav1.CreateOptions{})
		require.NoError(t, err)
		sts.OwnerReferences[0].UID = c.prom.GetUID()
	}

	pvName := "selfheal-test-" + c.ns
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/nonexistent/selfheal-k8slab"}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: c.ns, Name: "prometheus-main-db-prometheus-main-0"},
		},
	}
	_, err = c.admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.admin.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})

	c.sts, err = c.admin.AppsV1().StatefulSets(c.ns).Create(ctx, sts, metav1.CreateOptions{})
	require.NoError(t, err)
	c.waitReady(t, 1)
	return c
}

// ensurePrometheusCRD installs a minimal CRD for prometheus-operator's
// Prometheus (v1, any fields) unless one exists; it is left in place for
// other tests on the lab.
func ensurePrometheusCRD(t *testing.T, dyn dynamic.Interface) {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "prometheuses.monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "prometheuses", "singular": "prometheus", "kind": "Prometheus", "listKind": "PrometheusList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	_, err := dyn.Resource(gvr).Create(context.Background(), crd, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

func (c *labCluster) waitReady(t *testing.T, n int32) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := c.admin.AppsV1().StatefulSets(c.ns).Get(context.Background(), labSts, metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == n && *s.Spec.Replicas == n && s.Status.ObservedGeneration >= s.Generation
	}, 60*time.Second, 50*time.Millisecond, "statefulset not %d/%d Ready", n, n)
}

// restrictedDeps are the action's deps as the lab's restricted user,
// granted RBACRules in the namespace only.
func (c *labCluster) restrictedDeps(t *testing.T) Deps {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "selfheal-wal-cleanup"}, Rules: RBACRules()}
	_, err := c.admin.RbacV1().Roles(c.ns).Create(ctx, role, metav1.CreateOptions{})
	require.NoError(t, err)
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "selfheal-wal-cleanup"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: c.lab.RestrictedUser}},
	}
	_, err = c.admin.RbacV1().RoleBindings(c.ns).Create(ctx, rb, metav1.CreateOptions{})
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(c.lab.Restricted)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(c.lab.Restricted)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := kube.AppsV1().StatefulSets(c.ns).Get(ctx, labSts, metav1.GetOptions{})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the role binding does not take effect")
	return Deps{Kube: kube, Dynamic: dyn, Image: testImage, PollInterval: 100 * time.Millisecond}
}

// labTarget is the alert for the lab namespace.
func (c *labCluster) target() actions.Target {
	t := target()
	t.Labels = map[string]string{"alertname": "PrometheusOOMLoop", "namespace": c.ns}
	return t
}

// recorder records, from watches, the API writes that matter: the
// Prometheus' spec.paused, the StatefulSet's spec.replicas, the deletion
// of its pods, and the Job's creation, end and deletion. They are ordered
// by resourceVersion, which the lab's single etcd makes a global revision
// across resources.
type recorder struct {
	mu     sync.Mutex
	events []recorded
}

type recorded struct {
	rv   int64
	what string
}

func (c *labCluster) record(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	start := func(w watch.Interface, err error, on func(watch.Event)) {
		require.NoError(t, err)
		wg.Go(func() {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					on(ev)
				}
			}
		})
	}
	stsList, err := c.admin.AppsV1().StatefulSets(c.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	replicas := *c.sts.Spec.Replicas
	w, err := c.admin.AppsV1().StatefulSets(c.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: stsList.ResourceVersion})
	start(w, err, func(ev watch.Event) {
		if s, ok := ev.Object.(*appsv1.StatefulSet); ok && ev.Type == watch.Modified && *s.Spec.Replicas != replicas {
			replicas = *s.Spec.Replicas
			r.add(s, fmt.Sprintf("statefulset replicas=%d", replicas))
		}
	})
	pods, err := c.admin.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	w, err = c.admin.CoreV1().Pods(c.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: pods.ResourceVersion})
	start(w, err, func(ev watch.Event) {
		if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Deleted {
			if o := metav1.GetControllerOf(p); o != nil && o.Kind == "StatefulSet" {
				r.add(p, "pod "+p.Name+" deleted")
			}
		}
	})
	jobs, err := c.admin.BatchV1().Jobs(c.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	finished := map[types.UID]bool{}
	w, err = c.admin.BatchV1().Jobs(c.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: jobs.ResourceVersion})
	start(w, err, func(ev watch.Event) {
		j, ok := ev.Object.(*batchv1.Job)
		if !ok {
			return
		}
		switch c := jobFinished(j); {
		case ev.Type == watch.Added:
			r.add(j, "job created")
		case ev.Type == watch.Deleted:
			r.add(j, "job deleted")
		case c != nil && !finished[j.UID]:
			finished[j.UID] = true
			r.add(j, "job "+string(c.Type))
		}
	})
	if c.prom != nil {
		paused, _, _ := unstructured.NestedBool(c.prom.Object, "spec", "paused")
		w, err = c.dyn.Resource(PrometheusResource).Namespace(c.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: c.prom.GetResourceVersion()})
		start(w, err, func(ev watch.Event) {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || ev.Type != watch.Modified {
				return
			}
			if p, _, _ := unstructured.NestedBool(u.Object, "spec", "paused"); p != paused {
				paused = p
				r.add(u, fmt.Sprintf("prometheus paused=%t", p))
			}
		})
	}
	return r
}

func (r *recorder) add(o runtime.Object, what string) {
	m, err := meta.Accessor(o)
	if err != nil {
		panic(err)
	}
	rv, err := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recorded{rv, what})
}

// order returns the events by resourceVersion, without those that keep is
// false for.
func (r *recorder) order(keep func(string) bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := slices.Clone(r.events)
	sort.Slice(evs, func(i, j int) bool { return evs[i].rv < evs[j].rv })
	var out []string
	for _, e := range evs {
		if keep == nil || keep(e.what) {
			out = append(out, e.what)
		}
	}
	return out
}

// requireOrder waits for the watches to deliver want, in that order.
func (r *recorder) requireOrder(t *testing.T, want []string, keep func(string) bool) {
	t.Helper()
	require.Eventually(t, func() bool { return slices.Equal(want, r.order(keep)) }, 10*time.Second, 50*time.Millisecond,
		"API writes in resourceVersion order:\n  %s\nwant:\n  %s", strings.Join(r.order(keep), "\n  "), strings.Join(want, "\n  "))
}

// requireRestored checks the StatefulSet is back at one replica and the
// Prometheus' spec.paused is as it was, without selfheal's annotation.
func (c *labCluster) requireRestored(t *testing.T, paused bool) {
	t.Helper()
	sts, err := c.admin.AppsV1().StatefulSets(c.ns).Get(context.Background(), labSts, metav1.GetOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 1, *sts.Spec.Replicas, "scaled back")
	if c.prom == nil {
		return
	}
	p, err := c.dyn.Resource(PrometheusResource).Namespace(c.ns).Get(context.Background(), "main", metav1.GetOptions{})
	require.NoError(t, err)
	got, set, _ := unstructured.NestedBool(p.Object, "spec", "paused")
	require.Equal(t, paused, got)
	require.Equal(t, paused, set, "spec.paused is absent again, as it was")
	require.NotContains(t, p.GetAnnotations(), PausedByAnnotation)
}

// denyJobPods makes the API server refuse the Job's pods in c's namespace
// (a ValidatingAdmissionPolicy on their labels), so that the Job
// controller fails the Job when its activeDeadlineSeconds pass.
func (c *labCluster) denyJobPods(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	name := "selfheal-test-deny-" + c.ns
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: new(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{
				ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": jobLabelComponent}},
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				}}},
			},
			Validations: []admissionv1.Validation{{Expression: "false", Message: "denied by the test"}},
		},
	}
	_, err := c.admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": c.ns},
			}},
		},
	}
	_, err = c.admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: jobLabels()},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}
	require.Eventually(t, func() bool {
		_, err := c.admin.CoreV1().Pods(c.ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "denied by the test")
	}, 20*time.Second, 100*time.Millisecond, "the admission policy does not take effect")
}
