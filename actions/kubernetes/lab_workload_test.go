package kubernetes

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
)

// TestLabForbidden: a user without grants gets an error that names the
// missing permission, request by request as grants are added; with the
// rules of examples/kubernetes/rbac-actions.yaml every action works.
func TestLabForbidden(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	e.deployment(t, "web", 2)
	pod := e.readyPods(t, "web")[0]
	tg := target(e.ns, pod.Name)
	ns := e.ns

	steps := []struct {
		name  string
		rules []rbacv1.PolicyRule                              // granted on top of the previous steps'
		probe func(context.Context, clientset.Interface) error // works once they are in effect
		id    string
		src   string
		want  string
	}{
		{name: "nothing granted", id: RestartID, src: "mode: evict",
			want: `forbidden: needs verb get on resource pods in namespace ` + ns + ` (user "k8slab-restricted"; Role rule: apiGroups [""], resources ["pods"], verbs ["get"])`},
		{name: "pods get", rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
			probe: func(ctx context.Context, c clientset.Interface) error {
				_, err := c.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
				return err
			},
			id: RestartID, src: "mode: evict", want: "forbidden: needs verb create on resource pods/eviction in namespace " + ns},
		{name: "delete", id: RestartID, src: "mode: delete", want: "forbidden: needs verb delete on resource pods in namespace " + ns},
		{name: "rollout", id: RestartID, src: "mode: rollout", want: "forbidden: needs verb get on resource apps/replicasets in namespace " + ns},
		{name: "rollout patch", rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "deployments"}, Verbs: []string{"get"}}},
			probe: func(ctx context.Context, c clientset.Interface) error {
				_, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
				return err
			},
			id: RestartID, src: "mode: rollout", want: "forbidden: needs verb patch on resource apps/deployments in namespace " + ns},
		{name: "scale", id: ScaleID, src: "kind: Deployment\nname: web\nreplicas: 3",
			want: "forbidden: needs verb get on resource apps/deployments/scale in namespace " + ns},
		{name: "set_resources", id: SetResourcesID, src: "container: app\nmemory_limit: 256Mi",
			want: "forbidden: needs verb patch on resource apps/deployments in namespace " + ns},
	}
	var granted []rbacv1.PolicyRule
	var client clientset.Interface = e.restricted(t, "none")
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if len(st.rules) > 0 {
				granted = append(granted, st.rules...)
				client = e.restricted(t, "step-"+string(rune('a'+i)), granted...)
				waitFor(t, "grants in effect", 10*time.Second, func(ctx context.Context) (bool, error) {
					return st.probe(ctx, client) == nil, nil
				})
			}
			a := e.build(t, client, st.id, st.src)
			_, err := a.Run(ctx, tg)
			t.Log(err)
			require.ErrorIs(t, err, ErrForbidden)
			require.True(t, apierrors.IsForbidden(err))
			require.False(t, actions.IsRetryable(err))
			require.Contains(t, err.Error(), st.want)
			var fe *ForbiddenError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "k8slab-restricted", fe.User)
		})
	}

	t.Run("plan without budgets list", func(t *testing.T) {
		a := e.build(t, client, RestartID, "mode: evict")
		p, err := a.Plan(ctx, tg)
		require.NoError(t, err)
		require.Contains(t, p.Details, `PodDisruptionBudgets: not known (forbidden: needs verb list on resource policy/poddisruptionbudgets in namespace `+
			ns+` (user "k8slab-restricted"; Role rule: apiGroups ["policy"], resources ["poddisruptionbudgets"], verbs ["list"])); `+
			`the API server applies them at run time`)
	})

	t.Run("example RBAC", func(t *testing.T) {
		client := e.restricted(t, "example", exampleRules(t)...)
		waitFor(t, "example grants in effect", 10*time.Second, func(ctx context.Context) (bool, error) {
			_, err := client.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
			return err == nil, nil
		})
		for _, st := range []struct{ id, src string }{
			{ScaleID, "kind: Deployment\nname: web\nreplicas: 3"},
			{SetResourcesID, "container: app\nmemory_limit: 256Mi"},
			{RestartID, "mode: rollout"},
			{RestartID, "mode: evict"},
			{RestartID, "mode: delete"},
		} {
			a := e.build(t, client, st.id, st.src)
			p := e.readyPods(t, "web")[0]
			plan, err := a.Plan(ctx, target(ns, p.Name))
			require.NoError(t, err, st.id+" "+st.src)
			require.NotContains(t, plan.Summary, "refuse")
			for _, d := range plan.Details {
				require.NotContains(t, d, "needs verb", st.id+" "+st.src)
			}
			res, err := a.Run(ctx, target(ns, p.Name))
			require.NoError(t, err, st.id+" "+st.src)
			t.Logf("%s %q: %s", st.id, st.src, res.Summary)
			e.waitRollout(t, "web")
		}
	})
}

// TestLabScale: scale a real Deployment; its new pods become Ready. The
// plan showed current → target.
func TestLabScale(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	d := e.deployment(t, "web", 1)
	a := e.build(t, nil, ScaleID, "kind: Deployment\nname: web\nreplicas: 3")
	p, err := a.Plan(ctx, target(e.ns, "any"))
	require.NoError(t, err)
	require.Equal(t, "scale Deployment "+e.ns+"/web from 1 to 3 replicas", p.Summary)
	res, err := a.Run(ctx, target(e.ns, "any"))
	require.NoError(t, err)
	requireSameTarget(t, p, res, "namespace", "owner", "owner_uid", "call", "replicas", "current_replicas")
	require.Equal(t, string(d.UID), res.Details["owner_uid"])
	e.waitRollout(t, "web")
	require.Len(t, e.readyPods(t, "web"), 3)

	res, err = a.Run(ctx, target(e.ns, "any"))
	require.NoError(t, err)
	require.Equal(t, "unchanged", res.Details["outcome"])

	down := e.build(t, nil, ScaleID, "kind: Deployment\nname: web\nreplicas: 0\nallow_zero: true")
	_, err = down.Run(ctx, target(e.ns, "any"))
	require.NoError(t, err)
	e.waitRollout(t, "web")
	require.Empty(t, e.readyPods(t, "web"))
}

// TestLabSetResources: raise the memory limit of a pod's container on the
// owning Deployment; the pods roll and every new pod has the new limit,
// while the other container is unchanged. The plan showed the change and
// the request Run sent.
func TestLabSetResources(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	before := e.deployment(t, "prom", 2)
	old := e.readyPods(t, "prom")
	a := e.build(t, nil, SetResourcesID, "container: app\nmemory_limit: x2\nmemory_request: 96Mi\nmax_memory_limit: 768Mi")
	tg := target(e.ns, old[0].Name)
	p, err := a.Plan(ctx, tg)
	require.NoError(t, err)
	require.Equal(t, "set memory of container app in Deployment "+e.ns+"/prom: limit 128Mi -> 256Mi, request 64Mi -> 96Mi", p.Summary)

	res, err := a.Run(ctx, tg)
	require.NoError(t, err)
	t.Logf("run: %s", res.Summary)
	requireSameTarget(t, p, res, "namespace", "pod", "pod_uid", "owner", "owner_uid", "call", "container", "memory_limit", "memory_request")

	d := e.getDeployment(t, "prom")
	require.Equal(t, before.Generation+1, d.Generation)
	e.waitRollout(t, "prom")
	pods := e.readyPods(t, "prom")
	require.Len(t, pods, 2)
	for _, pod := range pods {
		for _, o := range old {
			require.NotEqual(t, o.UID, pod.UID, "every pod was replaced")
		}
		app, sidecar := pod.Spec.Containers[0], pod.Spec.Containers[1]
		require.Equal(t, "256Mi", ptr(app.Resources.Limits[corev1.ResourceMemory]).String())
		require.Equal(t, "96Mi", ptr(app.Resources.Requests[corev1.ResourceMemory]).String())
		require.Equal(t, labContainers()[1].Resources, sidecar.Resources)
	}

	// Once more: x2 of 256Mi is 512Mi, and x2 again would pass max_memory_limit.
	_, err = a.Run(ctx, target(e.ns, pods[0].Name))
	require.NoError(t, err)
	e.waitRollout(t, "prom")
	_, err = a.Run(ctx, target(e.ns, e.readyPods(t, "prom")[0].Name))
	require.ErrorIs(t, err, ErrGuard)
	require.Contains(t, err.Error(), "memory limit 1Gi of container app would be above max_memory_limit 768Mi")
}

// TestLabOnDeleteRollout: a StatefulSet with updateStrategy OnDelete is
// not rolled out (the patch would restart nothing).
func TestLabOnDeleteRollout(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	labels := map[string]string{"app": "db"}
	sts, err := e.c.AppsV1().StatefulSets(e.ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr(int32(1)), ServiceName: "db",
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: labContainers()}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, "db-0 ready", 15*time.Second, func(context.Context) (bool, error) { return len(e.readyPods(t, "db")) == 1, nil })
	a := e.build(t, nil, RestartID, "mode: rollout")
	_, err = a.Run(ctx, target(e.ns, "db-0"))
	require.ErrorIs(t, err, ErrOnDelete)
	got, err := e.c.AppsV1().StatefulSets(e.ns).Get(ctx, "db", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, sts.Generation, got.Generation)
}
