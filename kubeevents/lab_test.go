package kubeevents_test

// Runs through the engine against the real kube-apiserver of e2e/k8slab:
// a real kubernetes.restart acts on a Deployment's pod, and the Event the
// run leaves is read back from the API server.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/selfheal/selfheal/actions"
	kubeactions "github.com/selfheal/selfheal/actions/kubernetes"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/e2e/k8slab"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/kubeevents"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

// labRules are all selfheal is granted in the test's namespace: what
// kubernetes.restart modes delete and rollout need, and the one rule the
// Events need.
var labRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "delete"}},
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
}

type lab struct {
	admin, selfheal clientset.Interface
	ns              string
}

// newLab is a fresh namespace in which the lab's restricted user has
// labRules and nothing else, with a Deployment web of one Ready pod.
func newLab(t *testing.T) lab {
	t.Helper()
	l := k8slab.Get(t)
	t.Parallel()
	e := lab{admin: l.Client(t), ns: l.Namespace(t)}
	ctx := context.Background()
	_, err := e.admin.RbacV1().Roles(e.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "selfheal"}, Rules: labRules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.admin.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "selfheal"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "selfheal"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: l.RestrictedUser}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.selfheal, err = clientset.NewForConfig(l.Restricted)
	require.NoError(t, err)

	labels := map[string]string{"app": "web"}
	one := int32(1)
	_, err = e.admin.AppsV1().Deployments(e.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return e
}

// readyPod waits for the Ready pod of Deployment web.
func (e lab) readyPod(t *testing.T) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	poll(t, "a Ready pod of deployment web", func(ctx context.Context) (bool, error) {
		l, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			for _, c := range p.Status.Conditions {
				if p.DeletionTimestamp == nil && c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					pod = p
					return true, nil
				}
			}
		}
		return false, nil
	})
	return pod
}

// poll checks cond every 50ms for up to 20s.
func poll(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, cond)
	require.NoError(t, err, "waiting for %s", what)
}

// run runs one engine, as replica "selfheal-0" with the lab's restricted
// client, over the playbooks in yaml until alert a's run of playbook has
// ended, and returns its record.
func (e lab) run(t *testing.T, yaml, playbook string, a alert.Alert) ha.Record {
	t.Helper()
	reg := actions.NewRegistry()
	for _, s := range kubeactions.Specs(kubeactions.Deps{Client: e.selfheal}) {
		require.NoError(t, reg.Register(s))
	}
	pbs, err := playbooks.Parse(reg, "lab.yaml", []byte(yaml))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	dir := t.TempDir()
	log, err := ha.Open(dir, ha.Options{Node: "selfheal-0"})
	require.NoError(t, err)
	defer log.Close()
	inbox, err := receiver.OpenInbox(dir, 100)
	require.NoError(t, err)
	defer inbox.Close()
	metrics := prometheus.NewPedanticRegistry()
	eng := engine.New(inbox, log, engine.Options{Registerer: metrics,
		Notifier: kubeevents.New(e.selfheal, kubeevents.Options{Instance: "selfheal-0", Registerer: metrics})})
	eng.SetPlaybooks(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	_, err = inbox.Put(ctx, alert.Batch{Alerts: []alert.Alert{a}})
	require.NoError(t, err)
	id := ha.RunID(playbook, a.Episode())
	var rec ha.Record
	poll(t, "run "+id+" ended", func(context.Context) (bool, error) {
		r, found, err := log.Get(id)
		rec = r
		return found && r.State.Final(), err
	})
	return rec
}

// podAlert is a firing alert about pod ns/name.
func podAlert(ns, name string) alert.Alert {
	labels := map[string]string{"alertname": "PodWedged", "namespace": ns, "pod": name}
	return alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: time.Now().UTC().Truncate(time.Second), Fingerprint: alert.Fingerprint(labels)}
}

// eventsOn lists the SelfhealRemediation Events whose involved object has
// uid, through the field selector `kubectl describe` uses (the
// controllers' own Events on it are left out).
func (e lab) eventsOn(t *testing.T, uid types.UID) []corev1.Event {
	t.Helper()
	l, err := e.admin.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.uid=" + string(uid) + ",reason=" + kubeevents.Reason})
	require.NoError(t, err)
	return l.Items
}

// requireEvent checks the one Event on uid, and that the events.k8s.io
// API shows it the same.
func (e lab) requireEvent(t *testing.T, uid types.UID, typ, msg string) {
	t.Helper()
	evs := e.eventsOn(t, uid)
	require.Len(t, evs, 1, "one Event per run on the object")
	ev := evs[0]
	t.Logf("event %s: %s %s %s", ev.Name, ev.Type, ev.Reason, ev.Message)
	require.Equal(t, kubeevents.Reason, ev.Reason)
	require.Equal(t, typ, ev.Type)
	require.Equal(t, msg, ev.Message)
	require.Equal(t, "selfheal", ev.ReportingController)
	require.Equal(t, "selfheal-0", ev.ReportingInstance)
	require.Equal(t, "kubernetes.restart", ev.Action)

	nev, err := e.admin.EventsV1().Events(e.ns).Get(context.Background(), ev.Name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, uid, nev.Regarding.UID)
	require.Equal(t, msg, nev.Note)
	require.Equal(t, kubeevents.Reason, nev.Reason)
}

// TestLabEventOnRestartedPod: a run that deleted a Deployment's pod leaves
// a Normal SelfhealRemediation Event on that pod, naming the playbook, the
// run and its outcome, posted with no more than create on events.
func TestLabEventOnRestartedPod(t *testing.T) {
	e := newLab(t)
	pod := e.readyPod(t)
	a := podAlert(e.ns, pod.Name)
	rec := e.run(t, `playbooks:
  - name: restart-wedged
    match: ['alertname="PodWedged"']
    steps: [{name: restart, action: kubernetes.restart, with: {mode: delete}}]
`, "restart-wedged", a)
	require.Equal(t, ha.Succeeded, rec.State, rec.Reason)
	require.Equal(t, fmt.Sprintf("v1 Pod %s/%s %s", e.ns, pod.Name, pod.UID), rec.Steps[0].Details[actions.TouchedKey])
	e.requireEvent(t, pod.UID, corev1.EventTypeNormal,
		fmt.Sprintf("playbook restart-wedged (run %s): succeeded", ha.RunID("restart-wedged", a.Episode())))
}

// TestLabEventOnRolledOutOwner: a rollout restart touches the pod's
// Deployment, not the pod: the Event is on the Deployment. The run fails
// at its next step, so the Event is a Warning that says why.
func TestLabEventOnRolledOutOwner(t *testing.T) {
	e := newLab(t)
	pod := e.readyPod(t)
	dep, err := e.admin.AppsV1().Deployments(e.ns).Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	a := podAlert(e.ns, pod.Name)
	rec := e.run(t, `playbooks:
  - name: rollout-web
    match: ['alertname="PodWedged"']
    steps:
      - {name: rollout, action: kubernetes.restart, with: {mode: rollout}}
      - {name: other, action: kubernetes.restart, with: {mode: rollout, kind: Deployment, name: missing}}
`, "rollout-web", a)
	require.Equal(t, ha.Failed, rec.State)
	require.True(t, strings.HasPrefix(rec.Reason, `step "other" failed: `), rec.Reason)
	e.requireEvent(t, dep.UID, corev1.EventTypeWarning,
		fmt.Sprintf("playbook rollout-web (run %s): failed: %s", ha.RunID("rollout-web", a.Episode()), rec.Reason))
	require.Empty(t, e.eventsOn(t, pod.UID), "the rollout did not touch the pod itself")
}
