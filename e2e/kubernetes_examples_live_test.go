package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/selfheal/selfheal/actions/promwal"
	"github.com/selfheal/selfheal/e2e/k8slab"
)

// k8sPerm is one permission, as a SelfSubjectAccessReview asks for it.
type k8sPerm struct{ verb, group, resource, subresource string }

func (p k8sPerm) String() string {
	r := p.resource
	if p.group != "" {
		r = p.group + "/" + r
	}
	if p.subresource != "" {
		r += "/" + p.subresource
	}
	return p.verb + " " + r
}

// perms is every verb on every resource ("pods/eviction": a subresource).
func perms(group string, resources, verbs []string) []k8sPerm {
	var out []k8sPerm
	for _, r := range resources {
		res, sub, _ := strings.Cut(r, "/")
		for _, v := range verbs {
			out = append(out, k8sPerm{v, group, res, sub})
		}
	}
	return out
}

// k8sActionPerms is what each action, by id and mode, asks the API server
// for in the namespace it acts in (actions/kubernetes/doc.go,
// promwal.RBACRules), besides create on events for the Event on what they
// changed (kubeevents). The actions without a Kubernetes side need nothing.
var k8sActionPerms = map[string][]k8sPerm{
	"kubernetes.restart evict": slices.Concat(perms("", []string{"pods"}, []string{"get"}),
		perms("", []string{"pods/eviction"}, []string{"create"}),
		perms("policy", []string{"poddisruptionbudgets"}, []string{"list"})),
	"kubernetes.restart delete": perms("", []string{"pods"}, []string{"get", "delete"}),
	"kubernetes.restart rollout": slices.Concat(perms("", []string{"pods"}, []string{"get"}),
		perms("apps", []string{"replicasets"}, []string{"get"}),
		perms("apps", []string{"deployments", "statefulsets", "daemonsets"}, []string{"get", "patch"})),
	"kubernetes.set_resources": slices.Concat(perms("", []string{"pods"}, []string{"get"}),
		perms("apps", []string{"replicasets"}, []string{"get"}),
		perms("apps", []string{"deployments", "statefulsets", "daemonsets"}, []string{"get", "patch"})),
	"kubernetes.scale": slices.Concat(perms("apps", []string{"deployments", "statefulsets"}, []string{"get"}),
		perms("apps", []string{"deployments/scale", "statefulsets/scale"}, []string{"get", "update"})),
	"prometheus.wal_cleanup kubernetes": walCleanupPerms(),
	"prometheus.wal_cleanup host":       nil,
	"jenkins.build":                     nil,
	"alertmanager.silence":              nil,
	"webhook":                           nil,
	"exec":                              nil,
}

// walCleanupPerms are promwal.RBACRules as permissions.
func walCleanupPerms() []k8sPerm {
	var out []k8sPerm
	for _, r := range promwal.RBACRules() {
		for _, g := range r.APIGroups {
			out = append(out, perms(g, r.Resources, r.Verbs)...)
		}
	}
	return out
}

// k8sWatcherPerms is what the playbook ConfigMap watcher needs in each
// namespace it watches (playbooks/kube).
var k8sWatcherPerms = slices.Concat(perms("", []string{"configmaps"}, []string{"list", "watch"}),
	perms("", []string{"events"}, []string{"create", "patch"}))

// examplePlaybookActions returns the actions, by id and mode, that the
// steps of the example's playbook ConfigMaps use.
func examplePlaybookActions(t *testing.T, ex *k8sExample) []string {
	t.Helper()
	var cm corev1.ConfigMap
	ex.one(t, "ConfigMap", "selfheal-playbooks", &cm)
	type step struct {
		Action string         `json:"action"`
		With   map[string]any `json:"with"`
	}
	var used []string
	for key, text := range cm.Data {
		var f struct {
			Playbooks []struct {
				Steps     []step `json:"steps"`
				OnFailure []step `json:"on_failure"`
			} `json:"playbooks"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(text), &f), key)
		for _, pb := range f.Playbooks {
			for _, st := range slices.Concat(pb.Steps, pb.OnFailure) {
				id := st.Action
				mode, _ := st.With["mode"].(string)
				switch {
				case id == "kubernetes.restart" && mode == "":
					id += " evict"
				case id == "prometheus.wal_cleanup" && mode == "":
					id += " host"
				case mode != "":
					id += " " + mode
				}
				if !slices.Contains(used, id) {
					used = append(used, id)
				}
			}
		}
	}
	slices.Sort(used)
	return used
}

// serviceAccountConfig is the admin config impersonating the example's
// ServiceAccount in ns, with the groups its token would carry.
func serviceAccountConfig(lab *k8slab.Lab, ns string) *rest.Config {
	c := rest.CopyConfig(lab.Admin)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + k8sExampleAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return c
}

// serviceAccountKubeconfig writes a kubeconfig that is the admin one
// impersonating the example's ServiceAccount, for the daemon.
func serviceAccountKubeconfig(t *testing.T, lab *k8slab.Lab, ns, path string) {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(lab.AdminKubeconfig)
	require.NoError(t, err)
	sa := serviceAccountConfig(lab, ns).Impersonate
	user := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo]
	user.Impersonate, user.ImpersonateGroups = sa.UserName, sa.Groups
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
}

func allowed(t *testing.T, c kubernetes.Interface, ns string, p k8sPerm) bool {
	t.Helper()
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: p.verb, Group: p.group, Resource: p.resource, Subresource: p.subresource,
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return r.Status.Allowed
}

// TestKubernetesExampleDeploys applies the example to the real
// kube-apiserver in a fresh namespace standing for monitoring, then checks
// as its ServiceAccount that the RBAC grants what every example playbook's
// actions need and nothing else asked, that the plans of the playbooks for
// the alerts of the example rules read the cluster with it, and that two
// replicas started with the Deployment's flags and the config's files form
// a cluster, load the playbook ConfigMap and run the alert a real
// Alertmanager with the example route sends them.
func TestKubernetesExampleDeploys(t *testing.T) {
	requireE2E(t, "prometheus-alertmanager")
	lab := k8slab.Get(t)
	ns := lab.Namespace(t)
	ex := loadK8sExample(t)
	applyK8sExample(t, lab.Admin, ex, ns)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	secrets := map[string]string{
		"token":             "k8s-example-token",
		"jenkins-api-token": "k8s-example-jenkins-token",
		"gossip-key":        base64.StdEncoding.EncodeToString(key) + "\n", // as `head -c 32 /dev/urandom | base64` writes it
	}
	createK8sExampleSecrets(t, lab, ns, secrets)
	admin := lab.Client(t)

	t.Run("rbac", func(t *testing.T) {
		sa, err := kubernetes.NewForConfig(serviceAccountConfig(lab, ns))
		require.NoError(t, err)
		used := examplePlaybookActions(t, ex)
		require.Contains(t, used, "prometheus.wal_cleanup kubernetes")
		for _, id := range used {
			need, known := k8sActionPerms[id]
			require.True(t, known, "action %s of an example playbook: add what it needs to k8sActionPerms", id)
			if len(need) > 0 { // the Event on each object it changed (kubeevents)
				need = append(need, k8sPerm{"create", "", "events", ""})
			}
			for _, p := range need {
				require.True(t, allowed(t, sa, ns, p), "%s needs %s in its namespace", id, p)
			}
		}
		// Another namespace gets the actions with a copy of the actions'
		// RoleBinding, as rbac-actions.yaml says: events included.
		other := lab.Namespace(t)
		applyK8sObjects(t, lab.Admin, []k8sObject{ex.one(t, "RoleBinding", "selfheal-actions", nil)}, other, ns, false)
		require.False(t, allowed(t, sa, other, k8sPerm{"list", "", "configmaps", ""}), "only the actions' rules in %s", other)
		for _, p := range append(k8sActionPerms["kubernetes.restart evict"], k8sPerm{"create", "", "events", ""}) {
			require.True(t, allowed(t, sa, other, p), "with the RoleBinding's copy, kubernetes.restart evict needs %s in %s", p, other)
		}
		for _, p := range k8sWatcherPerms {
			require.True(t, allowed(t, sa, ns, p), "the playbook watcher needs %s", p)
		}
		require.True(t, allowed(t, sa, "", k8sPerm{"create", "authorization.k8s.io", "selfsubjectaccessreviews", ""}), "the watcher checks its permissions")
		for _, d := range []struct {
			ns string
			p  k8sPerm
		}{
			{ns, k8sPerm{"list", "", "secrets", ""}},
			{ns, k8sPerm{"get", "", "secrets", ""}},
			{ns, k8sPerm{"create", "", "configmaps", ""}},
			{ns, k8sPerm{"update", "", "configmaps", ""}},
			{ns, k8sPerm{"get", "", "configmaps", ""}},
			{ns, k8sPerm{"create", "batch", "cronjobs", ""}},
			{"", k8sPerm{"list", "", "configmaps", ""}},
			{"default", k8sPerm{"delete", "", "pods", ""}},
			{"default", k8sPerm{"create", "", "pods", "eviction"}},
			{"kube-system", k8sPerm{"patch", "apps", "deployments", ""}},
		} {
			require.False(t, allowed(t, sa, d.ns, d.p), "%s in namespace %q is not granted", d.p, d.ns)
		}
	})

	t.Run("the deployment creates its pods", func(t *testing.T) {
		eventually(t, 60*time.Second, "3 pods of the Deployment", func() bool {
			d, err := admin.AppsV1().Deployments(ns).Get(context.Background(), "selfheal", metav1.GetOptions{})
			require.NoError(t, err)
			return d.Status.Replicas == 3
		})
	})

	dir := t.TempDir()
	t.Run("check and dry-run as the service account", func(t *testing.T) {
		kubeconfig := filepath.Join(dir, "kubeconfig")
		serviceAccountKubeconfig(t, lab, ns, kubeconfig)
		cfg := writeK8sExampleFiles(t, ex, filepath.Join(dir, "dry-run"), ns, kubeconfig, "", secrets)
		out, err := exec.Command(selfhealBin, "check", "--config.file="+cfg, filepath.Join(k8sExampleDir, "playbooks-configmap.yaml")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NotContains(t, string(out), "WARNING")

		uids := createExampleWorkloads(t, admin, ns)
		payload := filepath.Join(dir, "alerts.json")
		alerts := exampleRuleAlerts(t)
		for _, a := range alerts {
			if _, ok := a.Labels["namespace"]; ok {
				a.Labels["namespace"] = ns
			}
			if a.Labels["alertname"] == "PodWedged" {
				a.Labels["pod"], a.Labels["uid"] = uids.cartPod, uids.cartUID
			}
		}
		writeFile(t, payload, webhookPayload(t, alerts))
		// dry-run reads playbook files, not manifests: the ConfigMap's
		// keys as files, as a volume of it would hold them.
		var cm corev1.ConfigMap
		ex.one(t, "ConfigMap", "selfheal-playbooks", &cm)
		for key, text := range cm.Data {
			writeFile(t, filepath.Join(dir, "playbooks", key), text)
		}
		var stderr strings.Builder
		cmd := exec.Command(selfhealBin, "dry-run", "--config.file="+cfg, "--playbooks="+filepath.Join(dir, "playbooks", "*.yaml"),
			"--alerts="+payload, "--output=json")
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		require.NoError(t, err, stderr.String())
		_, c := ex.deployment(t)
		checkExampleDryRun(t, out, c.Image)
	})

	t.Run("two replicas behind a real alertmanager", func(t *testing.T) {
		runExampleReplicas(t, lab, ex, ns, filepath.Join(dir, "replicas"), secrets)
	})
}

// exampleAlert is an alert of the example rules' unit tests.
type exampleAlert struct {
	Labels      map[string]string `json:"exp_labels"`
	Annotations map[string]string `json:"exp_annotations"`
}

// exampleRuleAlerts returns every alert prometheus-rules.test.yml expects
// the example rules to fire: what the playbooks get.
func exampleRuleAlerts(t *testing.T) []*exampleAlert {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sExampleDir, "prometheus-rules.test.yml"))
	require.NoError(t, err)
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				ExpAlerts []*exampleAlert `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(data, &f))
	var out []*exampleAlert
	for _, tc := range f.Tests {
		for _, r := range tc.AlertRuleTest {
			out = append(out, r.ExpAlerts...)
		}
	}
	return out
}

// webhookPayload is an Alertmanager notification (version 4) of alerts
// that began firing a minute ago.
func webhookPayload(t *testing.T, alerts []*exampleAlert) string {
	t.Helper()
	startsAt := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond).Format(time.RFC3339Nano)
	var list []map[string]any
	for _, a := range alerts {
		list = append(list, map[string]any{"status": "firing", "labels": a.Labels, "annotations": a.Annotations,
			"startsAt": startsAt, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph"})
	}
	data, err := json.Marshal(map[string]any{"version": "4", "groupKey": `{}/{selfhealing="true"}:{}`, "status": "firing",
		"receiver": "selfheal", "groupLabels": map[string]string{}, "commonLabels": map[string]string{},
		"commonAnnotations": map[string]string{}, "externalURL": "http://alertmanager:9093", "alerts": list})
	require.NoError(t, err)
	return string(data)
}

type exampleUIDs struct{ cartPod, cartUID string }

// createExampleWorkloads creates what the example alerts are about, as the
// example rules' unit tests name them: a Prometheus StatefulSet
// prometheus-k8s (with its claim) and a Deployment cart whose pods opted in
// to restarts. It returns cart's pod.
func createExampleWorkloads(t *testing.T, c kubernetes.Interface, ns string) exampleUIDs {
	t.Helper()
	ctx := context.Background()
	container := func(name string) corev1.Container {
		return corev1.Container{Name: name, Image: "registry.example/" + name + ":1", Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}
	}
	prom := container("prometheus")
	prom.VolumeMounts = []corev1.VolumeMount{{Name: "prometheus-k8s-db", MountPath: "/prometheus", SubPath: "prometheus-db"}}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-k8s"}, Spec: appsv1.StatefulSetSpec{
		Replicas: new(int32(1)), ServiceName: "prometheus-operated",
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "prometheus"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "prometheus"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{prom}}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-k8s-db"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}}}},
	}}
	_, err := c.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
	require.NoError(t, err)
	labels := map[string]string{"app": "cart", "selfheal.io/restart": "true"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cart"}, Spec: appsv1.DeploymentSpec{
		Replicas: new(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{container("cart")}}},
	}}
	_, err = c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	require.NoError(t, err)
	var out exampleUIDs
	eventually(t, 60*time.Second, "the pods and the claim of the workloads", func() bool {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cart"})
		require.NoError(t, err)
		_, perr := c.CoreV1().Pods(ns).Get(ctx, "prometheus-k8s-0", metav1.GetOptions{})
		_, cerr := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "prometheus-k8s-db-prometheus-k8s-0", metav1.GetOptions{})
		if len(pods.Items) != 1 || perr != nil || cerr != nil {
			return false
		}
		out = exampleUIDs{pods.Items[0].Name, string(pods.Items[0].UID)}
		return true
	})
	return out
}

// exampleRunsOf says which playbooks run for each alert of the example rules.
var exampleRunsOf = map[string][]string{
	"SparkWorkerDiskFull":      {"clean-data-worker"},
	"SparkWorkerDiskFillingUp": {"clean-data-worker"},
	"PrometheusWALReplayOOM":   {"prometheus-oom-more-memory", "prometheus-wal-quarantine"},
	"PodWedged":                {"restart-wedged-pod"},
}

// checkExampleDryRun checks selfheal dry-run's JSON: every alert runs its
// playbooks, and each of their steps has a plan, read from the cluster as
// the ServiceAccount; prometheus.wal_cleanup's Job runs image.
func checkExampleDryRun(t *testing.T, out []byte, image string) {
	t.Helper()
	var rep struct {
		Alerts []struct {
			Alertname string
			Labels    map[string]string
			Playbooks []struct {
				Name     string
				Matches  bool
				Decision *struct{ Verdict, Reason string }
				Steps    []struct {
					Name, Action, Error string
					Plan                *struct {
						Summary string
						Params  []struct{ Name, Value string }
					}
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal(out, &rep), "%s", out)
	require.Len(t, rep.Alerts, 4)
	for _, a := range rep.Alerts {
		var matched []string
		for _, pb := range a.Playbooks {
			if !pb.Matches {
				continue
			}
			matched = append(matched, pb.Name)
			require.NotEqual(t, "skip", strings.ToLower(pb.Decision.Verdict), "%s for %s", pb.Name, a.Alertname)
			require.NotEmpty(t, pb.Steps)
			for _, st := range pb.Steps {
				require.Empty(t, st.Error, "%s/%s for %s", pb.Name, st.Name, a.Alertname)
				require.NotNil(t, st.Plan)
				summary := st.Plan.Summary
				t.Logf("%s: %s/%s [%s]: %s", a.Alertname, pb.Name, st.Name, st.Action, summary)
				switch st.Action {
				case "jenkins.build":
					host, _, _ := strings.Cut(a.Labels["instance"], ":")
					require.Contains(t, st.Plan.Params, struct{ Name, Value string }{"parameters.HOST", host})
				case "kubernetes.set_resources":
					require.Contains(t, summary, "3Gi", "x1.5 of 2Gi")
				case "prometheus.wal_cleanup":
					require.Contains(t, summary, "scale statefulset "+a.Labels["namespace"]+"/prometheus-k8s from 1 to 0")
					require.Contains(t, st.Plan.Params, struct{ Name, Value string }{"image", image}, "the Job runs the Deployment's image")
				case "kubernetes.restart":
					require.Contains(t, summary, a.Labels["pod"])
				}
			}
		}
		require.Equal(t, exampleRunsOf[a.Alertname], matched, "the playbooks %s runs", a.Alertname)
	}
}
