package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/exec"
	"github.com/selfheal/selfheal/e2e/k8slab"
	"github.com/selfheal/selfheal/playbooks"
)

const label = "selfheal.io/playbook"

func registry(t *testing.T) *actions.Registry {
	t.Helper()
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(exec.Spec(nil)))
	return reg
}

// book is a playbook file defining the named playbooks.
func book(names ...string) string {
	var b strings.Builder
	b.WriteString("playbooks:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    match: ['alertname=\"DiskFull\"']\n    steps:\n      - name: clean\n        action: exec\n        with: {command: [/bin/true]}\n", n)
	}
	return b.String()
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{label: "true"}},
		Data:       data,
	}
}

type rig struct {
	catalog *playbooks.Catalog
	watcher *Watcher
	cancel  context.CancelFunc
	done    chan struct{}
}

// start runs a watcher over client until the test ends.
func start(t *testing.T, client kubernetes.Interface, o Options) *rig {
	t.Helper()
	if o.Selector == nil {
		o.Selector = labels.SelectorFromSet(labels.Set{label: "true"})
	}
	r := &rig{catalog: playbooks.NewCatalog(registry(t), playbooks.CatalogOptions{}), done: make(chan struct{})}
	r.watcher = New(client, r.catalog, o)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		_ = r.watcher.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *rig) sync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.True(t, r.watcher.WaitForSync(ctx), "informers did not sync")
}

func (r *rig) active(name string) *playbooks.Playbook { return r.catalog.Set().Get(name) }

func (r *rig) status(source string) (playbooks.SourceStatus, bool) {
	for _, st := range r.catalog.Statuses() {
		if st.Source == source {
			return st, true
		}
	}
	return playbooks.SourceStatus{}, false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// events returns the Events on the ConfigMap name in ns.
func events(t *testing.T, c kubernetes.Interface, ns, name string) []corev1.Event {
	t.Helper()
	list, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.kind=ConfigMap,involvedObject.name=" + name})
	require.NoError(t, err)
	return list.Items
}

func hasEvent(evs []corev1.Event, typ, reason, substr string) bool {
	for _, e := range evs {
		if e.Type == typ && e.Reason == reason && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

func TestConfigMapLifecycleAgainstAPIServer(t *testing.T) {
	lab := k8slab.Get(t)
	c, ns := lab.Client(t), lab.Namespace(t)
	ctx := context.Background()
	r := start(t, c, Options{Namespaces: []string{ns}})
	require.NoError(t, r.watcher.CheckPermissions(ctx))
	r.sync(t)

	cm := configMap(ns, "disk", map[string]string{"a.yaml": book("clean-disk"), "b.yml": book("clean-tmp"), "README.md": "not a playbook"})
	created := time.Now()
	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, "both playbooks active", func() bool { return r.active("clean-disk") != nil && r.active("clean-tmp") != nil })
	t.Logf("create to active: %v", time.Since(created))
	require.Equal(t, "configmap/"+ns+"/disk/a.yaml", r.active("clean-disk").Source)
	require.Equal(t, 2, r.catalog.Set().Len(), "README.md is not a playbook key")
	eventually(t, "a Normal event", func() bool {
		return hasEvent(events(t, c, ns, "disk"), corev1.EventTypeNormal, "PlaybooksLoaded", "configmap/"+ns+"/disk/a.yaml revision")
	})
	good := r.active("clean-disk")

	// One update: a syntax error in a.yaml, an unknown field in b.yml.
	cm.Data["a.yaml"] = "playbooks:\n  - name: clean-disk\n    match: [\n"
	cm.Data["b.yml"] = strings.Replace(book("clean-tmp"), "    steps:", "    retries: 3\n    steps:", 1)
	_, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	unknown := fmt.Sprintf("configmap/%s/disk/b.yml:4:5: playbooks[0]: unknown field \"retries\"", ns)
	syntax := fmt.Sprintf("configmap/%s/disk/a.yaml:3:12: syntax error: sequence end token ']' not found", ns)
	eventually(t, "both errors reported", func() bool {
		a, _ := r.status("configmap/" + ns + "/disk/a.yaml")
		b, _ := r.status("configmap/" + ns + "/disk/b.yml")
		return strings.Contains(a.LastError, syntax) && strings.Contains(b.LastError, unknown)
	})
	require.Same(t, good, r.active("clean-disk"), "the previous version stays active")
	require.NotNil(t, r.active("clean-tmp"))
	eventually(t, "Warning events with the positions", func() bool {
		evs := events(t, c, ns, "disk")
		return hasEvent(evs, corev1.EventTypeWarning, "InvalidPlaybooks", unknown) && hasEvent(evs, corev1.EventTypeWarning, "InvalidPlaybooks", syntax)
	})

	// The fix activates the new version.
	cm.Data["a.yaml"] = book("clean-disk", "clean-logs")
	cm.Data["b.yml"] = book("clean-tmp")
	_, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, "fixed version active", func() bool { return r.active("clean-logs") != nil })
	require.Equal(t, playbooks.Revision([]byte(cm.Data["a.yaml"])), r.active("clean-disk").Revision)
	st, _ := r.status("configmap/" + ns + "/disk/a.yaml")
	require.Empty(t, st.LastError)

	// Removing the label removes the playbooks; putting it back restores them.
	cm.Labels = map[string]string{"team": "ops"}
	cm, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, "playbooks gone after the label removal", func() bool { return r.catalog.Set().Len() == 0 })
	require.Empty(t, r.catalog.Statuses())
	cm.Labels[label] = "true"
	cm, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, "playbooks back with the label", func() bool { return r.catalog.Set().Len() == 3 })

	// Deleting the ConfigMap removes them.
	require.NoError(t, c.CoreV1().ConfigMaps(ns).Delete(ctx, cm.Name, metav1.DeleteOptions{}))
	eventually(t, "playbooks gone after the deletion", func() bool { return r.catalog.Set().Len() == 0 })
}

func TestConfigMapNameClashNamesBothSources(t *testing.T) {
	lab := k8slab.Get(t)
	c, ns := lab.Client(t), lab.Namespace(t)
	ctx := context.Background()
	r := start(t, c, Options{Namespaces: []string{ns}})
	r.sync(t)

	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "first", map[string]string{"p.yaml": book("restart-pod")}), metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, "first active", func() bool { return r.active("restart-pod") != nil })
	_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "second", map[string]string{"p.yaml": book("other", "restart-pod")}), metav1.CreateOptions{})
	require.NoError(t, err)
	clash := fmt.Sprintf(`playbook "restart-pod" is defined twice: in configmap/%[1]s/first/p.yaml:2:11 and in configmap/%[1]s/second/p.yaml:8:11`, ns)
	eventually(t, "the clash reported on the second ConfigMap", func() bool {
		return hasEvent(events(t, c, ns, "second"), corev1.EventTypeWarning, "InvalidPlaybooks", clash)
	})
	st, _ := r.status("configmap/" + ns + "/second/p.yaml")
	require.Contains(t, st.LastError, clash)
	require.Equal(t, "configmap/"+ns+"/first/p.yaml", r.active("restart-pod").Source)
	require.Nil(t, r.active("other"), "nothing of the clashing version is active")

	// Deleting the first lets the waiting version in.
	require.NoError(t, c.CoreV1().ConfigMaps(ns).Delete(ctx, "first", metav1.DeleteOptions{}))
	eventually(t, "second active", func() bool {
		pb := r.active("restart-pod")
		return pb != nil && pb.Source == "configmap/"+ns+"/second/p.yaml" && r.active("other") != nil
	})
}

func TestNamespaceFilter(t *testing.T) {
	lab := k8slab.Get(t)
	c := lab.Client(t)
	watched, other := lab.Namespace(t), lab.Namespace(t)
	ctx := context.Background()
	r := start(t, c, Options{Namespaces: []string{watched}})
	r.sync(t)

	_, err := c.CoreV1().ConfigMaps(other).Create(ctx, configMap(other, "elsewhere", map[string]string{"p.yaml": book("not-mine")}), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().ConfigMaps(watched).Create(ctx, configMap(watched, "here", map[string]string{"p.yaml": book("mine")}), metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, "the watched namespace's playbook", func() bool { return r.active("mine") != nil })

	// A watcher over all namespaces sees both, so the first one's silence is
	// the filter, not a slow watch.
	all := start(t, c, Options{})
	all.sync(t)
	eventually(t, "both with no namespace filter", func() bool { return all.active("mine") != nil && all.active("not-mine") != nil })
	require.Nil(t, r.active("not-mine"))
	require.Equal(t, []string{watched}, []string{r.watcher.Status().Namespaces[0].Namespace})
}

func TestRestrictedTokenIsAClearErrorUntilGranted(t *testing.T) {
	lab := k8slab.Get(t)
	admin, ns := lab.Client(t), lab.Namespace(t)
	ctx := context.Background()
	restricted, err := kubernetes.NewForConfig(lab.Restricted)
	require.NoError(t, err)
	_, err = admin.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "disk", map[string]string{"p.yaml": book("clean-disk")}), metav1.CreateOptions{})
	require.NoError(t, err)

	r := start(t, restricted, Options{Namespaces: []string{ns}})
	err = r.watcher.CheckPermissions(ctx)
	require.ErrorContains(t, err, "forbidden: needs verb list on resource configmaps in namespace "+ns)
	require.ErrorContains(t, err, "forbidden: needs verb watch on resource configmaps in namespace "+ns)
	require.ErrorContains(t, err, "forbidden: needs verb create on resource events in namespace "+ns)
	require.ErrorContains(t, err, "examples/kubernetes/rbac-playbooks-namespace.yaml")
	eventually(t, "the list error in the status", func() bool {
		st := r.watcher.Status()
		return strings.Contains(st.Namespaces[0].Error, "forbidden") && strings.Contains(st.Namespaces[0].Error, lab.RestrictedUser)
	})
	st := r.watcher.Status()
	require.False(t, st.Namespaces[0].Synced)
	require.Len(t, st.Problems, 4)

	// Granting exactly the example Role heals it without a restart.
	grantExample(t, admin, ns, lab.RestrictedUser)
	eventually(t, "the playbook once the Role is bound", func() bool { return r.active("clean-disk") != nil })
	require.NoError(t, r.watcher.CheckPermissions(ctx))
	eventually(t, "the status error cleared", func() bool { return r.watcher.Status().Namespaces[0].Error == "" })
	eventually(t, "the Normal event written with the granted permission", func() bool {
		return hasEvent(events(t, admin, ns, "disk"), corev1.EventTypeNormal, "PlaybooksLoaded", "p.yaml revision")
	})
}

// grantExample creates the Role of examples/kubernetes/rbac-playbooks-namespace.yaml
// in ns and binds it to user.
func grantExample(t *testing.T, c kubernetes.Interface, ns, user string) {
	t.Helper()
	data, err := os.ReadFile("../../examples/kubernetes/rbac-playbooks-namespace.yaml")
	require.NoError(t, err)
	var role *rbacv1.Role
	for doc := range strings.SplitSeq(string(data), "\n---") {
		var r rbacv1.Role
		require.NoError(t, yaml.Unmarshal([]byte(doc), &r))
		if r.Kind == "Role" {
			role = &r
		}
	}
	require.NotNil(t, role, "the example holds a Role")
	ctx := context.Background()
	_, err = c.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "selfheal-playbooks"}, Rules: role.Rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "selfheal-playbooks"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "selfheal-playbooks"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// TestClusterRoleExample checks the ClusterRole example grants what a
// watcher over all namespaces needs.
func TestClusterRoleExample(t *testing.T) {
	lab := k8slab.Get(t)
	admin, ns := lab.Client(t), lab.Namespace(t)
	ctx := context.Background()
	data, err := os.ReadFile("../../examples/kubernetes/rbac-playbooks-cluster.yaml")
	require.NoError(t, err)
	var role *rbacv1.ClusterRole
	for doc := range strings.SplitSeq(string(data), "\n---") {
		var r rbacv1.ClusterRole
		require.NoError(t, yaml.Unmarshal([]byte(doc), &r))
		if r.Kind == "ClusterRole" {
			role = &r
		}
	}
	require.NotNil(t, role)
	name := "selfheal-playbooks-" + ns
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: role.Rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: lab.RestrictedUser}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	restricted, err := kubernetes.NewForConfig(lab.Restricted)
	require.NoError(t, err)
	_, err = admin.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "disk", map[string]string{"p.yaml": book("cluster-wide")}), metav1.CreateOptions{})
	require.NoError(t, err)

	r := start(t, restricted, Options{})
	require.NoError(t, r.watcher.CheckPermissions(ctx))
	r.sync(t)
	eventually(t, "the playbook through the ClusterRole", func() bool { return r.active("cluster-wide") != nil })
}

// TestFakeClientsetLabelLeavingSelector: the fake clientset's watch ignores
// label selectors (research: kube-apiserver §4), so a label removal arrives
// as an update; the watcher must still drop the playbooks.
func TestFakeClientsetLabelLeavingSelector(t *testing.T) {
	c := fake.NewClientset()
	rec := record.NewFakeRecorder(10)
	r := start(t, c, Options{Namespaces: []string{"ops"}, Recorder: rec})
	r.sync(t)
	ctx := context.Background()
	cm := configMap("ops", "disk", map[string]string{"p.yaml": book("clean-disk")})
	_, err := c.CoreV1().ConfigMaps("ops").Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, "active", func() bool { return r.active("clean-disk") != nil })
	require.Equal(t, "Normal PlaybooksLoaded configmap/ops/disk/p.yaml revision "+playbooks.Revision([]byte(cm.Data["p.yaml"]))+" is active", <-rec.Events)

	cm.Labels = nil
	_, err = c.CoreV1().ConfigMaps("ops").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, "removed", func() bool { return r.catalog.Set().Len() == 0 })
}

func TestEventMessageIsCut(t *testing.T) {
	long := strings.Repeat("é", 1000)
	msg := eventMessage(long)
	require.LessOrEqual(t, len(msg), maxEventMessage)
	require.True(t, strings.HasSuffix(msg, "/api/v1/playbooks)"))
	require.True(t, strings.HasPrefix(msg, "éé"))
	require.Equal(t, "short", eventMessage("short"))
}

// TestRoutineWatchEndsAreNotErrors: a watch that expires (410) or ends is
// resumed by the reflector and must not show as a problem; a 403 must.
func TestRoutineWatchEndsAreNotErrors(t *testing.T) {
	w := New(fake.NewClientset(), playbooks.NewCatalog(registry(t), playbooks.CatalogOptions{}), Options{Namespaces: []string{"ops"}, Recorder: record.NewFakeRecorder(1)})
	nw := w.watches[0]
	w.watchError(nw, apierrors.NewResourceExpired("too old resource version: 1 (42)"))
	w.watchError(nw, io.EOF)
	require.Empty(t, w.Status().Namespaces[0].Error)
	w.watchError(nw, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("no RBAC")))
	require.Contains(t, w.Status().Namespaces[0].Error, "watch ConfigMaps in namespace ops: configmaps is forbidden")
}
