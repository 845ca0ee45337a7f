package kubernetes

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/selfheal/selfheal/actions"
)

func TestOwnerOf(t *testing.T) {
	tests := []struct {
		pod     string
		extra   []runtime.Object
		want    string // workload ref
		via     string
		wantErr error
	}{
		{pod: "web-7d9f-a", want: "Deployment/web", via: "Pod web-7d9f-a → ReplicaSet web-7d9f → Deployment web"},
		{pod: "db-0", want: "StatefulSet/db", via: "Pod db-0 → StatefulSet db"},
		{pod: "agent-x", want: "DaemonSet/agent", via: "Pod agent-x → DaemonSet agent"},
		{pod: "bare", wantErr: ErrBarePod},
		{pod: "batch-a", wantErr: ErrUnsupportedOwner},
		{pod: "lone-a", wantErr: ErrUnsupportedOwner},
		{
			pod: "stale-a", wantErr: ErrReplaced,
			extra: []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stale-a",
				OwnerReferences: []metav1.OwnerReference{ctrlRef("ReplicaSet", "web-7d9f", "u-old-rs")}}}},
		},
		{
			pod: "stale-db-0", wantErr: ErrReplaced,
			extra: []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stale-db-0",
				OwnerReferences: []metav1.OwnerReference{ctrlRef("StatefulSet", "db", "u-old-db")}}}},
		},
		{
			// The pod's owner is an Argo Rollout's ReplicaSet: not a Deployment.
			pod: "argo-a", wantErr: ErrUnsupportedOwner,
			extra: []runtime.Object{
				&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "argo-a",
					OwnerReferences: []metav1.OwnerReference{ctrlRef("ReplicaSet", "argo-1", "u-argo-1")}}},
				&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "argo-1", UID: "u-argo-1",
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "argo", UID: "u-r", Controller: ptr(true)}}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.pod, func(t *testing.T) {
			c := newFake(tc.extra...)
			pod, err := getPod(context.Background(), c, "shop", tc.pod, "")
			require.NoError(t, err)
			w, err := ownerOf(context.Background(), c, pod)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, w.ref())
			require.Equal(t, tc.via, w.Via)
		})
	}
}

// evictReactor answers evictions: refused (429, as a blocking budget does)
// for the first `refuse` attempts, then accepted, deleting the pod. It
// records the delete options of every eviction.
type evictReactor struct {
	refuse   int
	attempts int
	opts     []*metav1.DeleteOptions
}

func (e *evictReactor) install(c *fake.Clientset) {
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		e.attempts++
		e.opts = append(e.opts, ev.DeleteOptions)
		if e.attempts <= e.refuse {
			err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
			err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause,
				Message: "The disruption budget web needs 3 healthy pods and has 3 currently"}}
			return true, nil, err
		}
		return true, nil, c.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ev.Namespace, ev.Name)
	})
}

func TestRestartEvict(t *testing.T) {
	t.Run("retries a refusing budget, then evicts", func(t *testing.T) {
		c := newFake()
		e := &evictReactor{refuse: 2}
		e.install(c)
		a := mustBuild(t, c, RestartID, "mode: evict\ngrace_period: 1500ms\npdb_retry_interval: 10ms\ntimeout: 5s")
		res, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
		require.NoError(t, err)
		require.Equal(t, 3, e.attempts)
		require.Equal(t, "evicted", res.Details["outcome"])
		require.Equal(t, "3", res.Details["attempts"])
		require.Equal(t, "u-pod", res.Details["pod_uid"])
		require.Equal(t, "ReplicaSet/web-7d9f", res.Details["controller"])
		require.Equal(t, "POST /api/v1/namespaces/shop/pods/web-7d9f-a/eviction", res.Details["call"])
		for _, o := range e.opts {
			require.Equal(t, "u-pod", string(*o.Preconditions.UID))
			require.Equal(t, int64(2), *o.GracePeriodSeconds) // rounded up
		}
		_, err = c.CoreV1().Pods("shop").Get(context.Background(), "web-7d9f-a", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err))
	})
	t.Run("a budget refusing until the timeout is retryable", func(t *testing.T) {
		c := newFake()
		e := &evictReactor{refuse: 1 << 30}
		e.install(c)
		a := mustBuild(t, c, RestartID, "pdb_retry_interval: 20ms\ntimeout: 300ms")
		start := time.Now()
		_, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
		require.Less(t, time.Since(start), 2*time.Second)
		require.ErrorIs(t, err, ErrPDBBlocked)
		require.True(t, actions.IsRetryable(err))
		require.True(t, apierrors.IsTooManyRequests(err))
		require.Contains(t, err.Error(), "restart pod shop/web-7d9f-a: eviction blocked by a PodDisruptionBudget: refused")
		require.Greater(t, e.attempts, 2)
	})
	t.Run("a cancelled context is not retried", func(t *testing.T) {
		c := newFake()
		(&evictReactor{refuse: 1 << 30}).install(c)
		a := mustBuild(t, c, RestartID, "pdb_retry_interval: 1s\ntimeout: 1m")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := a.Run(ctx, target("shop", "web-7d9f-a"))
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, actions.IsRetryable(err))
	})
	for _, tc := range []struct {
		name    string
		answer  error
		outcome string
		wantErr error
		retry   bool
	}{
		{name: "gone meanwhile", answer: apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web-7d9f-a"), outcome: "already_gone"},
		{name: "replaced meanwhile", answer: apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web-7d9f-a",
			errors.New("the UID in the precondition (u-pod) does not match the UID in record")), wantErr: ErrReplaced},
		{name: "two budgets", answer: apierrors.NewInternalError(errors.New("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."))},
		{name: "apiserver down", answer: apierrors.NewServiceUnavailable("etcd"), retry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake()
			c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				return a.GetSubresource() == "eviction", nil, tc.answer
			})
			a := mustBuild(t, c, RestartID, "pdb_retry_interval: 10ms\ntimeout: 1s")
			res, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
			if tc.outcome != "" {
				require.NoError(t, err)
				require.Equal(t, tc.outcome, res.Details["outcome"])
				return
			}
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			require.Equal(t, tc.retry, actions.IsRetryable(err), err.Error())
		})
	}
}

func TestRestartGuards(t *testing.T) {
	tests := []struct {
		name, src, pod string
		wantErr        error
		msg            string
	}{
		{name: "bare pod evict", src: "mode: evict", pod: "bare", wantErr: ErrBarePod,
			msg: "restart pod shop/bare: pod has no controller: nothing would recreate pod shop/bare once it is gone; set allow_bare_pods: true to evict it anyway"},
		{name: "bare pod delete", src: "mode: delete", pod: "bare", wantErr: ErrBarePod},
		{name: "bare pod rollout, even allowed", src: "mode: rollout\nallow_bare_pods: true", pod: "bare", wantErr: ErrBarePod,
			msg: "there is no workload to roll out"},
		{name: "paused deployment", src: "mode: rollout", pod: "frozen-1-a", wantErr: ErrPaused,
			msg: "restart pod shop/frozen-1-a: deployment is paused: Deployment shop/frozen is paused; a restart would not roll out until it is resumed (kubectl rollout resume)"},
		{name: "OnDelete statefulset", src: "mode: rollout", pod: "db-0", wantErr: ErrOnDelete, msg: "restart its pods with mode evict or delete instead"},
		{name: "job pod rollout", src: "mode: rollout", pod: "batch-a", wantErr: ErrUnsupportedOwner, msg: "is controlled by Job batch (batch/v1)"},
		{name: "uid from the alert differs", src: "mode: delete\nuid: u-older", pod: "web-7d9f-a", wantErr: ErrReplaced,
			msg: "pod shop/web-7d9f-a has UID u-pod, not the UID u-older the step names"},
		{name: "pod not found", src: "mode: evict", pod: "nope", msg: `GET /api/v1/namespaces/shop/pods/nope: pods "nope" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake()
			a := mustBuild(t, c, RestartID, tc.src)
			_, err := a.Run(context.Background(), target("shop", tc.pod))
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			require.Contains(t, err.Error(), tc.msg)
			require.False(t, actions.IsRetryable(err))
			require.Empty(t, writes(c))

			p, err := a.Plan(context.Background(), target("shop", tc.pod))
			if tc.wantErr == nil {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Contains(t, p.Summary, "refuse: ")
			require.Contains(t, p.Summary, tc.msg[max(0, len(tc.msg)-40):])
		})
	}
	t.Run("bare pod allowed", func(t *testing.T) {
		c := newFake()
		a := mustBuild(t, c, RestartID, "mode: delete\nallow_bare_pods: true")
		res, err := a.Run(context.Background(), target("shop", "bare"))
		require.NoError(t, err)
		require.Equal(t, "deleted", res.Details["outcome"])
		require.Equal(t, "", res.Details["controller"])
	})
}

func TestRestartDelete(t *testing.T) {
	c := newFake()
	var opts metav1.DeleteOptions
	c.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts = a.(k8stesting.DeleteAction).GetDeleteOptions()
		return false, nil, nil
	})
	a := mustBuild(t, c, RestartID, "mode: delete\nuid: '{{ .Labels.pod | reReplaceAll \"web-7d9f-a\" \"u-pod\" }}'")
	res, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
	require.NoError(t, err)
	require.Equal(t, "deleted", res.Details["outcome"])
	require.Equal(t, "DELETE /api/v1/namespaces/shop/pods/web-7d9f-a", res.Details["call"])
	require.Equal(t, "u-pod", string(*opts.Preconditions.UID))
	require.Nil(t, opts.GracePeriodSeconds)
	require.Equal(t, []string{"delete pods"}, writes(c))

	t.Run("stale UID", func(t *testing.T) {
		c := newFake()
		c.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "db-0",
				errors.New("the UID in the precondition (u-db-0) does not match the UID in record (u-new)"))
		})
		a := mustBuild(t, c, RestartID, "mode: delete")
		_, err := a.Run(context.Background(), target("shop", "db-0"))
		require.ErrorIs(t, err, ErrReplaced)
		require.False(t, actions.IsRetryable(err))
		require.Contains(t, err.Error(), "refusing to touch the new pod")
	})
}

func TestRestartRollout(t *testing.T) {
	tests := []struct {
		name, src, pod string
		check          func(t *testing.T, c *fake.Clientset)
		owner          string
	}{
		{
			name: "deployment of a pod", src: "mode: rollout", pod: "web-7d9f-a", owner: "Deployment/web",
			check: func(t *testing.T, c *fake.Clientset) {
				d := getDeployment(t, c, "web")
				require.Equal(t, "2026-03-01T09:30:00Z", d.Spec.Template.Annotations[RestartedAtAnnotation])
				require.Len(t, d.Spec.Template.Spec.Containers, 2, "the patch keeps the rest of the template")
			},
		},
		{
			name: "daemonset of a pod", src: "mode: rollout", pod: "agent-x", owner: "DaemonSet/agent",
			check: func(t *testing.T, c *fake.Clientset) {
				d, err := c.AppsV1().DaemonSets("shop").Get(context.Background(), "agent", metav1.GetOptions{})
				require.NoError(t, err)
				require.Equal(t, "2026-03-01T09:30:00Z", d.Spec.Template.Annotations[RestartedAtAnnotation])
			},
		},
		{
			name: "named deployment", src: "mode: rollout\nnamespace: shop\nkind: deployment\nname: '{{ .Labels.alertname | toLower | reReplaceAll \"podwedged\" \"web\" }}'",
			owner: "Deployment/web",
			check: func(t *testing.T, c *fake.Clientset) {
				require.Equal(t, "2026-03-01T09:30:00Z", getDeployment(t, c, "web").Spec.Template.Annotations[RestartedAtAnnotation])
			},
		},
		{
			name: "operator-managed statefulset: restarted, with a note", src: "mode: rollout", pod: "prom-0", owner: "StatefulSet/prom",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake()
			a := mustBuild(t, c, RestartID, tc.src)
			res, err := a.Run(context.Background(), target("shop", tc.pod))
			require.NoError(t, err)
			require.Equal(t, tc.owner, res.Details["owner"])
			require.Equal(t, "2026-03-01T09:30:00Z", res.Details["restarted_at"])
			require.Len(t, writes(c), 1)
			if tc.check != nil {
				tc.check(t, c)
			}
			if tc.pod == "prom-0" {
				require.Contains(t, res.Summary, "Prometheus k8s (monitoring.coreos.com/v1) manages it and may revert the change")
			}
		})
	}
}

// TestPlanReadsOnly: no plan of any action writes; each names the request
// Run would send.
func TestPlanReadsOnly(t *testing.T) {
	tests := []struct {
		id, src, pod, summary, call string
	}{
		{RestartID, "mode: evict", "web-7d9f-a", "evict pod shop/web-7d9f-a (UID u-pod)", "POST /api/v1/namespaces/shop/pods/web-7d9f-a/eviction"},
		{RestartID, "mode: delete\ngrace_period: 0s", "db-0", "delete pod shop/db-0 (UID u-db-0)", "DELETE /api/v1/namespaces/shop/pods/db-0"},
		{RestartID, "mode: rollout", "web-7d9f-a", "rollout restart of Deployment shop/web", "PATCH /apis/apps/v1/namespaces/shop/deployments/web"},
		{RestartID, "mode: rollout", "db-0", "refuse: updateStrategy is OnDelete", ""},
		{ScaleID, "kind: Deployment\nname: web\nreplicas: 5", "", "scale Deployment shop/web from 3 to 5 replicas", "PUT /apis/apps/v1/namespaces/shop/deployments/web/scale"},
		{SetResourcesID, "container: app\nmemory_limit: x1.5", "web-7d9f-a", "set memory of container app in Deployment shop/web: limit 1Gi -> 1536Mi", "PATCH /apis/apps/v1/namespaces/shop/deployments/web"},
	}
	for _, tc := range tests {
		t.Run(tc.id+" "+tc.summary, func(t *testing.T) {
			c := newFake(pdb("web", 2, 1))
			scaleReactor(c)
			a := mustBuild(t, c, tc.id, tc.src)
			p, err := a.Plan(context.Background(), target("shop", tc.pod))
			require.NoError(t, err)
			require.Contains(t, p.Summary, tc.summary)
			require.Empty(t, writes(c))
			require.NotEmpty(t, c.Actions())
			if tc.call != "" {
				require.Contains(t, p.Params, actions.Param{Name: "call", Value: tc.call})
			}
		})
	}
}

func TestPlanEvictShowsBudgets(t *testing.T) {
	c := newFake(pdb("web", 3, 0), pdb("other", 1, 1))
	c.PrependReactor("list", "poddisruptionbudgets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return false, nil, nil
	})
	// The "other" budget selects another app.
	o, err := c.PolicyV1().PodDisruptionBudgets("shop").Get(context.Background(), "other", metav1.GetOptions{})
	require.NoError(t, err)
	o.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
	_, err = c.PolicyV1().PodDisruptionBudgets("shop").Update(context.Background(), o, metav1.UpdateOptions{})
	require.NoError(t, err)
	c.ClearActions()

	a := mustBuild(t, c, RestartID, "mode: evict\ntimeout: 90s")
	p, err := a.Plan(context.Background(), target("shop", "web-7d9f-a"))
	require.NoError(t, err)
	require.Equal(t, []actions.Param{
		{Name: "mode", Value: "evict"}, {Name: "namespace", Value: "shop"}, {Name: "pod", Value: "web-7d9f-a"},
		{Name: "pod_uid", Value: "u-pod"}, {Name: "controller", Value: "ReplicaSet/web-7d9f"},
		{Name: "call", Value: "POST /api/v1/namespaces/shop/pods/web-7d9f-a/eviction"}, {Name: "timeout", Value: "1m30s"},
	}, p.Params)
	require.Equal(t, []string{
		`GET /api/v1/namespaces/shop/pods/web-7d9f-a: UID u-pod, phase Running, ready true, node "", controlled by ReplicaSet/web-7d9f`,
		"GET /apis/policy/v1/namespaces/shop/poddisruptionbudgets: 1 of 2 budgets in the namespace cover the pod",
		"PodDisruptionBudget web (minAvailable 3): allows 0 disruptions now (healthy 3, desired 3, expected 3 pods)",
		"now: the budget allows no disruption: the eviction would be refused (429) and retried until the timeout",
		"POST /api/v1/namespaces/shop/pods/web-7d9f-a/eviction (policy/v1 Eviction) with deleteOptions.preconditions.uid=u-pod",
		"200 evicts; 404 counts as done; 409 means the name now belongs to another pod: refused; 429 (a budget refuses) is retried " +
			"after 5s, doubling up to 30s and at least the server's Retry-After, until 1m30s have passed, then the step fails (retryable)",
		"then the pod terminates within its terminationGracePeriodSeconds and ReplicaSet/web-7d9f creates a replacement; the step does not wait for it",
	}, p.Details)
	require.Empty(t, writes(c))
}

// pdb is a budget over app=web with minAvailable min that allows allowed
// disruptions, as processed by the disruption controller.
func pdb(name string, min, allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 1},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromInt32(min)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: allowed,
			CurrentHealthy: 3, DesiredHealthy: min, ExpectedPods: 3},
	}
}

func TestPredictEviction(t *testing.T) {
	ready := func(phase corev1.PodPhase, ok bool) *corev1.Pod {
		st := corev1.ConditionFalse
		if ok {
			st = corev1.ConditionTrue
		}
		return &corev1.Pod{Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
	}
	always := pdb("web", 3, 0)
	always.Spec.UnhealthyPodEvictionPolicy = ptr(policyv1.AlwaysAllow)
	always.Status.CurrentHealthy = 2
	unprocessed := pdb("web", 2, 1)
	unprocessed.Generation = 2
	short := pdb("web", 3, 0)
	short.Status.CurrentHealthy = 2
	tests := []struct {
		name string
		pod  *corev1.Pod
		pdbs []policyv1.PodDisruptionBudget
		want string
	}{
		{"pending", ready(corev1.PodPending, false), []policyv1.PodDisruptionBudget{*pdb("web", 3, 0)}, "the pod is Pending: the eviction is allowed without checking budgets"},
		{"no budget", ready(corev1.PodRunning, true), nil, "no budget covers the pod: the eviction would be allowed"},
		{"two budgets", ready(corev1.PodRunning, true), []policyv1.PodDisruptionBudget{*pdb("a", 1, 1), *pdb("b", 1, 1)}, "more than one budget"},
		{"allowed", ready(corev1.PodRunning, true), []policyv1.PodDisruptionBudget{*pdb("web", 2, 1)}, "the budget allows 1 disruptions: the eviction would be allowed"},
		{"blocked", ready(corev1.PodRunning, true), []policyv1.PodDisruptionBudget{*pdb("web", 3, 0)}, "the budget allows no disruption"},
		{"unprocessed", ready(corev1.PodRunning, true), []policyv1.PodDisruptionBudget{*unprocessed}, "not processed yet"},
		{"unready, budget met", ready(corev1.PodRunning, false), []policyv1.PodDisruptionBudget{*pdb("web", 3, 0)}, "without using the budget"},
		{"unready, AlwaysAllow", ready(corev1.PodRunning, false), []policyv1.PodDisruptionBudget{*always}, "AlwaysAllow"},
		{"unready, budget short", ready(corev1.PodRunning, false), []policyv1.PodDisruptionBudget{*short}, "IfHealthyBudget"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, predictEviction(tc.pod, tc.pdbs), tc.want)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	c := newFake()
	a := mustBuild(t, c, RestartID, "pod: '{{ .Labels.container }}'")
	_, err := a.Run(context.Background(), target("shop", "web-7d9f-a"))
	require.ErrorContains(t, err, `kubernetes.restart: pod: render "{{ .Labels.container }}"`)
	_, err = a.Plan(context.Background(), target("shop", "web-7d9f-a"))
	require.ErrorContains(t, err, `map has no entry for key "container"`)

	a = mustBuild(t, c, RestartID, "mode: evict")
	_, err = a.Run(context.Background(), target("Bad_NS", "web-7d9f-a"))
	require.ErrorContains(t, err, `kubernetes.restart: namespace: "Bad_NS" is not a valid namespace name: a lowercase RFC 1123 label`)
	require.Empty(t, c.Actions())
}

func TestGracePeriodSeconds(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want *int64
	}{
		{"mode: delete", nil},
		{"mode: delete\ngrace_period: 0s", ptr(int64(1))}, // never a force deletion
		{"mode: delete\ngrace_period: 1500ms", ptr(int64(2))},
		{"mode: evict\ngrace_period: 2m", ptr(int64(120))},
	} {
		t.Run(tc.src, func(t *testing.T) {
			a := mustBuild(t, newFake(), RestartID, tc.src).(*Restart)
			require.Equal(t, tc.want, a.p.gracePeriodSeconds())
		})
	}
}
