package kubernetes

// Helpers of the tests against the real control plane of e2e/k8slab:
// kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok,
// which makes pods Running and Ready on the fake node kwok-node-0.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientset "k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/e2e/k8slab"
)

// labEnv is a fresh namespace in the lab with an admin client.
type labEnv struct {
	lab *k8slab.Lab
	c   clientset.Interface
	ns  string
}

// newLab returns a fresh namespace of the lab; the test runs in parallel
// with the other lab tests.
func newLab(t *testing.T) labEnv {
	t.Helper()
	lab := k8slab.Get(t)
	t.Parallel()
	return labEnv{lab: lab, c: lab.Client(t), ns: lab.Namespace(t)}
}

// build builds a step with client (the admin client when nil) and the real
// clock.
func (e labEnv) build(t *testing.T, client clientset.Interface, id, src string) actions.Action {
	t.Helper()
	if client == nil {
		client = e.c
	}
	r := actions.NewRegistry()
	for _, s := range Specs(Deps{Client: client}) {
		require.NoError(t, r.Register(s))
	}
	a, _, err := r.Build("step.yaml", "steps[0].with", id, withNode(t, src))
	require.NoError(t, err)
	return a
}

// waitFor polls cond every 50ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	start := time.Now()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, cond)
	require.NoError(t, err, "waiting %s for %s", timeout, what)
	t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
}

// labContainers are the containers of the lab's workloads: app (memory
// limit 128Mi, request 64Mi) and sidecar.
func labContainers() []corev1.Container {
	return []corev1.Container{
		{Name: "app", Image: "registry.invalid/app:1", Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}},
		{Name: "sidecar", Image: "registry.invalid/sidecar:1"},
	}
}

// deployment creates a Deployment of app=name with n replicas and waits
// until they are all available.
func (e labEnv) deployment(t *testing.T, name string, n int32, mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: labContainers()},
			},
		},
	}
	for _, m := range mutate {
		m(d)
	}
	_, err := e.c.AppsV1().Deployments(e.ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitRollout(t, name)
	return e.getDeployment(t, name)
}

func (e labEnv) getDeployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d, err := e.c.AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d
}

// waitRollout waits until the Deployment's rollout is complete, by
// kubectl rollout status's criteria, and its ready pods are exactly its
// replicas.
func (e labEnv) waitRollout(t *testing.T, name string) {
	t.Helper()
	waitFor(t, "deployment "+name+" rolled out", 20*time.Second, func(ctx context.Context) (bool, error) {
		d, err := e.c.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := replicas(d.Spec.Replicas)
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.Replicas != want || s.AvailableReplicas != want {
			return false, nil
		}
		return len(e.readyPods(t, name)) == int(want), nil
	})
}

// readyPods are the ready, not terminating pods of app=app.
func (e labEnv) readyPods(t *testing.T, app string) []corev1.Pod {
	t.Helper()
	list, err := e.c.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	require.NoError(t, err)
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return out
}

// waitGone waits until the pod ns/name with uid no longer exists.
func (e labEnv) waitGone(t *testing.T, name string, uid types.UID) {
	t.Helper()
	waitFor(t, "pod "+name+" gone", 15*time.Second, func(ctx context.Context) (bool, error) {
		p, err := e.c.CoreV1().Pods(e.ns).Get(ctx, name, metav1.GetOptions{})
		return err != nil || p.UID != uid, nil
	})
}

// podExists reports whether the pod with uid still exists.
func (e labEnv) podExists(t *testing.T, name string, uid types.UID) bool {
	t.Helper()
	p, err := e.c.CoreV1().Pods(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil && p.UID == uid
}

// restricted returns a client of the lab's user without RBAC grants, after
// binding it the rules (none: nothing).
func (e labEnv) restricted(t *testing.T, name string, rules ...rbacv1.PolicyRule) clientset.Interface {
	t.Helper()
	ctx := context.Background()
	if len(rules) > 0 {
		_, err := e.c.RbacV1().Roles(e.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = e.c.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: e.lab.RestrictedUser}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	c, err := clientset.NewForConfig(e.lab.Restricted)
	require.NoError(t, err)
	return c
}

// exampleRules are the rules of the ClusterRole in
// examples/kubernetes/rbac-actions.yaml.
func exampleRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile("../../examples/kubernetes/rbac-actions.yaml")
	require.NoError(t, err)
	var role rbacv1.ClusterRole
	first, _, _ := strings.Cut(string(data), "\n---")
	require.NoError(t, yaml.Unmarshal([]byte(first), &role))
	require.Equal(t, "ClusterRole", role.Kind)
	require.NotEmpty(t, role.Rules)
	return role.Rules
}

// hookClient calls afterPodGet after every successful pod Get, to change
// the world between what an action reads and what it writes.
type hookClient struct {
	clientset.Interface
	afterPodGet func(*corev1.Pod)
}

func (h hookClient) CoreV1() corev1client.CoreV1Interface {
	return hookCore{CoreV1Interface: h.Interface.CoreV1(), after: h.afterPodGet}
}

type hookCore struct {
	corev1client.CoreV1Interface
	after func(*corev1.Pod)
}

func (h hookCore) Pods(ns string) corev1client.PodInterface {
	return hookPods{PodInterface: h.CoreV1Interface.Pods(ns), after: h.after}
}

type hookPods struct {
	corev1client.PodInterface
	after func(*corev1.Pod)
}

func (h hookPods) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error) {
	p, err := h.PodInterface.Get(ctx, name, opts)
	if err == nil && h.after != nil {
		h.after(p)
	}
	return p, err
}

// paramValue is the value of the plan parameter name.
func paramValue(p actions.Plan, name string) string {
	for _, x := range p.Params {
		if x.Name == name {
			return x.Value
		}
	}
	return fmt.Sprintf("<no %s>", name)
}

// requireSameTarget checks that the plan named what Run did: every key of
// keys has the same value in the plan's parameters and the result.
func requireSameTarget(t *testing.T, p actions.Plan, res actions.Result, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.NotEmpty(t, res.Details[k], k)
		require.Equal(t, res.Details[k], paramValue(p, k), "plan and run differ on %s", k)
	}
}
