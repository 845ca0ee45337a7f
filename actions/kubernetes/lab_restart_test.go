package kubernetes

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/selfheal/selfheal/actions"
)

// TestLabEvictWithBudget: a budget that needs every replica refuses the
// eviction (429), which Run retries until its own short timeout and then
// reports as retryable; once the budget is relaxed, a run that is still
// retrying evicts the pod. The plan named the pod, its UID, controller
// and the request that Run sent.
func TestLabEvictWithBudget(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	e.deployment(t, "web", 2)
	_, err := e.c.PolicyV1().PodDisruptionBudgets(e.ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromInt32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, "budget processed: 0 disruptions allowed", 15*time.Second, func(ctx context.Context) (bool, error) {
		p, err := e.c.PolicyV1().PodDisruptionBudgets(e.ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 2 && p.Status.DisruptionsAllowed == 0, err
	})
	pod := e.readyPods(t, "web")[0]
	tg := target(e.ns, pod.Name)

	blocked := e.build(t, nil, RestartID, "mode: evict\ntimeout: 1500ms\npdb_retry_interval: 200ms")
	plan, err := blocked.Plan(ctx, tg)
	require.NoError(t, err)
	require.Equal(t, "evict pod "+e.ns+"/"+pod.Name+" (UID "+string(pod.UID)+")", plan.Summary)
	require.Contains(t, plan.Details, "PodDisruptionBudget web (minAvailable 2): allows 0 disruptions now (healthy 2, desired 2, expected 2 pods)")
	require.Contains(t, plan.Details, "now: the budget allows no disruption: the eviction would be refused (429) and retried until the timeout")

	start := time.Now()
	_, err = blocked.Run(ctx, tg)
	took := time.Since(start)
	t.Logf("blocked run: %s: %v", took, err)
	require.ErrorIs(t, err, ErrPDBBlocked)
	require.True(t, actions.IsRetryable(err))
	require.True(t, apierrors.IsTooManyRequests(err))
	require.Contains(t, err.Error(), "The disruption budget web needs 2 healthy pods and has 2 currently")
	require.Less(t, took, 3*time.Second, "our deadline, not client-go's 10 retries, bounds the eviction")
	require.True(t, e.podExists(t, pod.Name, pod.UID))

	// A run that keeps retrying succeeds once the budget allows it.
	patient := e.build(t, nil, RestartID, "mode: evict\ntimeout: 20s\npdb_retry_interval: 200ms")
	var (
		wg  sync.WaitGroup
		res actions.Result
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, err = patient.Run(ctx, tg)
	}()
	time.Sleep(700 * time.Millisecond)
	_, perr := e.c.PolicyV1().PodDisruptionBudgets(e.ns).Patch(ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"minAvailable":1}}`), metav1.PatchOptions{})
	require.NoError(t, perr)
	wg.Wait()
	require.NoError(t, err)
	t.Logf("run: %s, %v", res.Summary, res.Details)
	require.Equal(t, "evicted", res.Details["outcome"])
	require.NotEqual(t, "1", res.Details["attempts"], "the budget refused first")
	requireSameTarget(t, plan, res, "namespace", "pod", "pod_uid", "controller", "call")
	e.waitGone(t, pod.Name, pod.UID)
	e.waitRollout(t, "web")
}

// TestLabStaleUID: the pod is deleted and recreated under the same name
// (a StatefulSet pod) between the read and the write; the UID
// precondition makes the API server refuse the write (409), which the
// action reports as a permanent refusal, and the new pod lives on.
func TestLabStaleUID(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	labels := map[string]string{"app": "db"}
	_, err := e.c.AppsV1().StatefulSets(e.ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr(int32(1)), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: labContainers()}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	ready := func(t *testing.T, old types.UID) {
		waitFor(t, "db-0 ready", 15*time.Second, func(context.Context) (bool, error) {
			ps := e.readyPods(t, "db")
			return len(ps) == 1 && ps[0].UID != old, nil
		})
	}
	ready(t, "")

	for _, mode := range []string{ModeDelete, ModeEvict} {
		t.Run(mode, func(t *testing.T) {
			// Between the action's read and its write, db-0 is replaced.
			var once sync.Once
			var replaced types.UID
			client := hookClient{Interface: e.c, afterPodGet: func(p *corev1.Pod) {
				once.Do(func() {
					require.NoError(t, e.c.CoreV1().Pods(e.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}))
					ready(t, p.UID)
					replaced = e.readyPods(t, "db")[0].UID
				})
			}}
			a := e.build(t, client, RestartID, "mode: "+mode+"\ntimeout: 20s")
			_, err := a.Run(ctx, target(e.ns, "db-0"))
			t.Logf("%s: %v", mode, err)
			require.ErrorIs(t, err, ErrReplaced)
			require.True(t, apierrors.IsConflict(err))
			require.False(t, actions.IsRetryable(err))
			require.Contains(t, err.Error(), "refusing to touch the new pod")
			require.Contains(t, err.Error(), "does not match the UID in record ("+string(replaced)+")")
			require.True(t, e.podExists(t, "db-0", replaced), "the new pod lives on")
		})
	}
}

// TestLabRollout: a rollout restart through a pod patches the owning
// Deployment's template, and the rollout completes with new pods Ready.
// The plan named the pod, the owner, their UIDs and the request Run sent.
func TestLabRollout(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	before := e.deployment(t, "web", 2)
	old := e.readyPods(t, "web")
	a := e.build(t, nil, RestartID, "mode: rollout")
	tg := target(e.ns, old[0].Name)
	plan, err := a.Plan(ctx, tg)
	require.NoError(t, err)
	require.Equal(t, "rollout restart of Deployment "+e.ns+"/web", plan.Summary)

	res, err := a.Run(ctx, tg)
	require.NoError(t, err)
	t.Logf("run: %s", res.Summary)
	requireSameTarget(t, plan, res, "namespace", "pod", "pod_uid", "controller", "owner", "owner_uid", "call")
	require.Equal(t, "Deployment/web", res.Details["owner"])
	require.Equal(t, string(before.UID), res.Details["owner_uid"])

	d := e.getDeployment(t, "web")
	require.Equal(t, res.Details["restarted_at"], d.Spec.Template.Annotations[RestartedAtAnnotation])
	require.Equal(t, before.Generation+1, d.Generation)
	e.waitRollout(t, "web")
	for _, p := range e.readyPods(t, "web") {
		for _, o := range old {
			require.NotEqual(t, o.UID, p.UID, "every pod was replaced")
		}
	}
}

// TestLabRefusals: a paused Deployment is not restarted, a bare pod is not
// evicted, a Job's pod is not rolled out; nothing changes.
func TestLabRefusals(t *testing.T) {
	e := newLab(t)
	ctx := context.Background()
	e.deployment(t, "web", 1)
	_, err := e.c.AppsV1().Deployments(e.ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	paused := e.getDeployment(t, "web")
	pod := e.readyPods(t, "web")[0]

	bare, err := e.c.CoreV1().Pods(e.ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Labels: map[string]string{"app": "bare"}},
		Spec: corev1.PodSpec{Containers: labContainers()}}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, "bare pod ready", 15*time.Second, func(context.Context) (bool, error) { return len(e.readyPods(t, "bare")) == 1, nil })

	tests := []struct {
		name, src, pod string
		wantErr        error
	}{
		{"paused deployment", "mode: rollout", pod.Name, ErrPaused},
		{"paused deployment by name", "mode: rollout\nkind: Deployment\nname: web", "", ErrPaused},
		{"bare pod evict", "mode: evict", "bare", ErrBarePod},
		{"bare pod delete", "mode: delete", "bare", ErrBarePod},
		{"bare pod rollout", "mode: rollout", "bare", ErrBarePod},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.build(t, nil, RestartID, tc.src)
			_, err := a.Run(ctx, target(e.ns, tc.pod))
			t.Log(err)
			require.ErrorIs(t, err, tc.wantErr)
			require.False(t, actions.IsRetryable(err))
			p, err := a.Plan(ctx, target(e.ns, tc.pod))
			require.NoError(t, err)
			require.Contains(t, p.Summary, "refuse: "+tc.wantErr.Error())
		})
	}
	require.Equal(t, paused.Generation, e.getDeployment(t, "web").Generation, "the paused Deployment is unchanged")
	require.True(t, e.podExists(t, "bare", bare.UID))
	require.True(t, e.podExists(t, pod.Name, pod.UID))
}
