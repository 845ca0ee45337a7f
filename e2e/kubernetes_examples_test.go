package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/selfheal/selfheal/e2e/k8slab"
	"github.com/selfheal/selfheal/playbooks/kube"
)

// The Kubernetes example (examples/kubernetes): what `kubectl apply -k`
// deploys, and the files around it.
const (
	k8sExampleDir       = "../examples/kubernetes"
	k8sExampleNamespace = "monitoring"
	// k8sExampleAccount is the ServiceAccount every binding must name.
	k8sExampleAccount = "selfheal"
)

// k8sExampleAlternatives are the manifests of examples/kubernetes that the
// kustomization leaves out on purpose (they replace one of its files).
var k8sExampleAlternatives = []string{"rbac-playbooks-cluster.yaml"}

// k8sExampleSecrets are the Secrets the README's quickstart has people
// create (they are not committed), by name, with their keys.
var k8sExampleSecrets = map[string][]string{
	"selfheal-webhook": {"token"},
	"selfheal":         {"jenkins-api-token", "gossip-key"},
}

// k8sObject is one object of an example manifest.
type k8sObject struct {
	file string
	obj  *unstructured.Unstructured
}

func (o k8sObject) String() string {
	return o.file + ": " + o.obj.GetKind() + " " + o.obj.GetName()
}

// k8sExample is the parsed example: the objects of the kustomization's
// resources, in its order, and those of the alternatives.
type k8sExample struct {
	resources    []k8sObject
	alternatives []k8sObject
}

// loadK8sExample reads the kustomization strictly (only resources, so that
// applying its files one by one is what `kubectl apply -k` does) and
// checks that every manifest of the folder is a resource or an
// alternative.
func loadK8sExample(t *testing.T) *k8sExample {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sExampleDir, "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	require.NoError(t, yaml.UnmarshalStrict(data, &k), "kustomization.yaml may hold only apiVersion, kind and resources: the test applies them as kubectl apply -k would")
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
	require.Equal(t, "Kustomization", k.Kind)

	files, err := filepath.Glob(filepath.Join(k8sExampleDir, "*.y*ml"))
	require.NoError(t, err)
	var manifests []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		if base := filepath.Base(f); base != "kustomization.yaml" && kube.IsManifest(data) {
			manifests = append(manifests, base)
		}
	}
	want := append(slices.Clone(k.Resources), k8sExampleAlternatives...)
	slices.Sort(want)
	require.Equal(t, want, manifests, "every manifest of %s is in kustomization.yaml's resources or is a known alternative", k8sExampleDir)

	ex := &k8sExample{}
	for _, f := range k.Resources {
		ex.resources = append(ex.resources, readManifest(t, f)...)
	}
	for _, f := range k8sExampleAlternatives {
		ex.alternatives = append(ex.alternatives, readManifest(t, f)...)
	}
	return ex
}

// readManifest returns the objects of a multi-document manifest.
func readManifest(t *testing.T, name string) []k8sObject {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sExampleDir, name))
	require.NoError(t, err)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []k8sObject
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, name)
		js, err := yaml.YAMLToJSON(doc)
		require.NoError(t, err, name)
		if string(bytes.TrimSpace(js)) == "null" {
			continue // only comments
		}
		u := &unstructured.Unstructured{}
		require.NoError(t, u.UnmarshalJSON(js), name)
		out = append(out, k8sObject{file: name, obj: u})
	}
	require.NotEmpty(t, out, name)
	return out
}

// one returns the only object of the kustomization with kind and name (any
// name when name is ""), converted into out (a typed object) unless nil.
func (ex *k8sExample) one(t *testing.T, kind, name string, out any) k8sObject {
	t.Helper()
	var found []k8sObject
	for _, o := range ex.resources {
		if o.obj.GetKind() == kind && (name == "" || o.obj.GetName() == name) {
			found = append(found, o)
		}
	}
	require.Len(t, found, 1, "one %s %q in the kustomization", kind, name)
	if out != nil {
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(found[0].obj.Object, out, true), found[0].String())
	}
	return found[0]
}

// deployment returns the example's Deployment and its only container.
func (ex *k8sExample) deployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	var d appsv1.Deployment
	ex.one(t, "Deployment", "", &d)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	return &d, &d.Spec.Template.Spec.Containers[0]
}

// flags returns the container's --name=value arguments, by name.
func flags(c *corev1.Container) map[string][]string {
	out := map[string][]string{}
	for _, a := range c.Args {
		if name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			out[name] = append(out[name], value)
		}
	}
	return out
}

// exampleConfig returns the daemon config file of the example's ConfigMap
// (the one --config.file names), as text.
func (ex *k8sExample) exampleConfig(t *testing.T) (path, text string) {
	t.Helper()
	d, c := ex.deployment(t)
	files := flags(c)["config.file"]
	require.Len(t, files, 1)
	vol, key := mountedFile(t, d, c, files[0])
	require.NotNil(t, vol.ConfigMap, "--config.file=%s is on a ConfigMap volume", files[0])
	var cm corev1.ConfigMap
	ex.one(t, "ConfigMap", vol.ConfigMap.Name, &cm)
	require.Contains(t, cm.Data, key, "ConfigMap %s has the key %s that --config.file names", cm.Name, key)
	return files[0], cm.Data[key]
}

// mountedFile finds the volume a path in the container is on, and its key.
func mountedFile(t *testing.T, d *appsv1.Deployment, c *corev1.Container, path string) (*corev1.Volume, string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if rel, ok := strings.CutPrefix(path, m.MountPath+"/"); ok {
			for i, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name {
					return &d.Spec.Template.Spec.Volumes[i], rel
				}
			}
			t.Fatalf("volumeMount %s names no volume", m.Name)
		}
	}
	t.Fatalf("%s is on no volume the container mounts", path)
	return nil, ""
}

// TestKubernetesExampleManifests checks what the API server cannot: that
// the objects of the kustomization fit together (selectors, ports, the
// flags, the files the config reads, the image) and deploy into namespace
// monitoring whatever the current kubectl namespace.
func TestKubernetesExampleManifests(t *testing.T) {
	ex := loadK8sExample(t)
	for _, o := range append(slices.Clone(ex.resources), ex.alternatives...) {
		switch o.obj.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			require.Empty(t, o.obj.GetNamespace(), o.String())
		default:
			require.Equal(t, k8sExampleNamespace, o.obj.GetNamespace(), "%s names its namespace itself", o)
		}
		if subjects, ok, _ := unstructured.NestedSlice(o.obj.Object, "subjects"); ok {
			require.Equal(t, []any{map[string]any{"kind": "ServiceAccount", "name": k8sExampleAccount, "namespace": k8sExampleNamespace}}, subjects, "%s binds the example's ServiceAccount", o)
		}
	}
	d, c := ex.deployment(t)
	pod := d.Spec.Template
	require.EqualValues(t, 3, *d.Spec.Replicas)
	require.Equal(t, d.Spec.Selector.MatchLabels, pod.Labels, "the selector is the pod labels")
	var sa corev1.ServiceAccount
	ex.one(t, "ServiceAccount", k8sExampleAccount, &sa)
	require.Equal(t, sa.Name, pod.Spec.ServiceAccountName)

	t.Run("anti-affinity", func(t *testing.T) {
		terms := pod.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		require.Len(t, terms, 1)
		require.Equal(t, "kubernetes.io/hostname", terms[0].PodAffinityTerm.TopologyKey)
		require.Equal(t, pod.Labels, terms[0].PodAffinityTerm.LabelSelector.MatchLabels)
	})

	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	t.Run("services", func(t *testing.T) {
		var web, gossip corev1.Service
		ex.one(t, "Service", "selfheal", &web)
		ex.one(t, "Service", "selfheal-gossip", &gossip)
		for _, s := range []corev1.Service{web, gossip} {
			require.Equal(t, pod.Labels, s.Spec.Selector, "Service %s selects the pods", s.Name)
			for _, p := range s.Spec.Ports {
				cp, ok := ports[p.TargetPort.String()]
				require.True(t, ok, "Service %s port %s targets a named container port", s.Name, p.Name)
				require.Equal(t, p.Protocol, cp.Protocol)
				require.Equal(t, p.Port, cp.ContainerPort)
			}
		}
		require.Len(t, web.Spec.Ports, 1)
		require.EqualValues(t, 9595, web.Spec.Ports[0].Port)
		require.Equal(t, corev1.ClusterIPNone, gossip.Spec.ClusterIP)
		require.True(t, gossip.Spec.PublishNotReadyAddresses, "replicas find each other before they are ready")
		var protos []corev1.Protocol
		for _, p := range gossip.Spec.Ports {
			require.EqualValues(t, 9596, p.Port)
			protos = append(protos, p.Protocol)
		}
		require.ElementsMatch(t, []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}, protos)

		f := flags(c)
		require.Equal(t, []string{gossip.Name + "." + gossip.Namespace + ".svc:9596"}, f["cluster.peer"])
		require.Equal(t, []string{"0.0.0.0:9596"}, f["cluster.listen-address"])
		require.Equal(t, []string{"$(POD_IP):9596"}, f["cluster.advertise-address"])
		require.Equal(t, []string{":9595"}, f["web.listen-address"])
		require.Equal(t, []string{"$(POD_NAME)"}, f["cluster.name"])
		require.Contains(t, f, "cluster.settle-timeout")
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
		require.Equal(t, map[string]string{"POD_NAME": "metadata.name", "POD_IP": "status.podIP"}, env)
	})

	t.Run("probes and disruption budget", func(t *testing.T) {
		require.Equal(t, "/-/healthy", c.LivenessProbe.HTTPGet.Path)
		require.Equal(t, "/-/ready", c.ReadinessProbe.HTTPGet.Path)
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			require.Equal(t, "http", p.HTTPGet.Port.String())
		}
		var pdb policyv1.PodDisruptionBudget
		ex.one(t, "PodDisruptionBudget", "", &pdb)
		require.Equal(t, pod.Labels, pdb.Spec.Selector.MatchLabels)
		require.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())
	})

	t.Run("image and user", func(t *testing.T) {
		dockerfile, err := os.ReadFile("../Dockerfile")
		require.NoError(t, err)
		require.Contains(t, string(dockerfile), "\nUSER 65532:65532\n")
		require.Contains(t, string(dockerfile), "\nENV PATH=/usr/local/bin\n", "prometheus.wal_cleanup's Job runs `selfheal wal-quarantine` from PATH")
		sc := pod.Spec.SecurityContext
		require.EqualValues(t, 65532, *sc.RunAsUser)
		require.True(t, *sc.RunAsNonRoot)
		require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
		_, cfg := ex.exampleConfig(t)
		var parsed struct {
			Kubernetes struct {
				Image string `json:"image"`
			} `json:"kubernetes"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(cfg), &parsed))
		require.Equal(t, c.Image, parsed.Kubernetes.Image, "the Jobs of prometheus.wal_cleanup run the Deployment's image")
	})

	t.Run("files the daemon reads", func(t *testing.T) {
		f := flags(c)
		vol, _ := mountedFile(t, d, c, f["storage.path"][0]+"/log.db")
		require.NotNil(t, vol.EmptyDir, "--storage.path is an emptyDir")
		for _, path := range k8sExampleFiles(t, ex) {
			vol, key := mountedFile(t, d, c, path)
			switch {
			case vol.Secret != nil:
				require.Contains(t, k8sExampleSecrets[vol.Secret.SecretName], key, "%s: Secret %s has the key %s", path, vol.Secret.SecretName, key)
			case vol.ConfigMap != nil:
				var cm corev1.ConfigMap
				ex.one(t, "ConfigMap", vol.ConfigMap.Name, &cm)
				require.Contains(t, cm.Data, key, path)
			default:
				t.Fatalf("%s is on volume %s, neither a Secret nor a ConfigMap", path, vol.Name)
			}
		}
		var secrets []string
		for _, v := range pod.Spec.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		require.ElementsMatch(t, slices.Collect(maps.Keys(k8sExampleSecrets)), secrets)
	})
}

// TestKubernetesQuickstart keeps the README's quickstart in step with the
// manifests: the namespace, the Secrets and their keys, the image, the
// Services and the Alertmanager side it names.
func TestKubernetesQuickstart(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(data), "\n## Kubernetes quickstart\n")
	require.True(t, ok, "README.md has a Kubernetes quickstart section")
	section, _, _ = strings.Cut(section, "\n## ")
	ex := loadK8sExample(t)
	_, c := ex.deployment(t)
	am, err := os.ReadFile(filepath.Join(k8sExampleDir, "alertmanager.yml"))
	require.NoError(t, err)
	for _, want := range []string{
		"kubectl create namespace " + k8sExampleNamespace,
		"kubectl apply -k examples/kubernetes",
		"selfheal check examples/kubernetes/playbooks-configmap.yaml",
		"rollout status deployment/selfheal",
		"port-forward svc/selfheal 9595",
		c.Image,
		"http://selfheal." + k8sExampleNamespace + ".svc:9595/api/v1/alerts",
		"promtool test rules examples/kubernetes/prometheus-rules.test.yml",
		"amtool check-config examples/kubernetes/alertmanager.yml",
	} {
		require.Contains(t, section, want)
	}
	require.Contains(t, string(am), "http://selfheal."+k8sExampleNamespace+".svc:9595/api/v1/alerts")
	for name, keys := range k8sExampleSecrets {
		var line string
		for l := range strings.SplitSeq(section, "\n") {
			if strings.Contains(l, "kubectl -n "+k8sExampleNamespace+" create secret generic "+name+" ") {
				line = l
			}
		}
		require.NotEmpty(t, line, "the quickstart creates Secret %s", name)
		for _, k := range keys {
			require.Contains(t, line, "--from-file="+k+"=", "Secret %s gets key %s", name, k)
		}
		mount := "/etc/alertmanager/secrets/" + name + "/"
		if strings.Contains(string(am), mount) {
			require.Contains(t, section, mount, "the quickstart says where Alertmanager mounts Secret %s", name)
		}
	}
}

// k8sExampleFiles lists the files the example daemon reads: the config
// file, the *_file keys of the config, and the file flags.
func k8sExampleFiles(t *testing.T, ex *k8sExample) []string {
	t.Helper()
	_, c := ex.deployment(t)
	path, cfg := ex.exampleConfig(t)
	out := []string{path}
	for _, name := range []string{"config.file", "cluster.gossip-key-file", "web.config.file"} {
		for _, v := range flags(c)[name] {
			if v != path {
				out = append(out, v)
			}
		}
	}
	var doc any
	require.NoError(t, yaml.Unmarshal([]byte(cfg), &doc))
	walkStrings(doc, "", func(key, v string) {
		if strings.HasSuffix(key, "_file") && v != "" {
			out = append(out, v)
		}
	})
	require.Greater(t, len(out), 3, "the config file, the webhook token, the Jenkins token and the gossip key")
	return out
}

// walkStrings calls f with the key and value of every string in a decoded
// YAML document.
func walkStrings(v any, key string, f func(key, value string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walkStrings(e, k, f)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, key, f)
		}
	case string:
		f(key, x)
	}
}

// applyK8sExample applies every object of the kustomization into ns, as
// the example's objects would be in monitoring (see localize). The
// alternatives are applied with a server-side dry run.
func applyK8sExample(t *testing.T, cfg *rest.Config, ex *k8sExample, ns string) {
	t.Helper()
	applyK8sObjects(t, cfg, ex.resources, ns, ns, false)
	applyK8sObjects(t, cfg, ex.alternatives, ns, ns, true)
}

// applyK8sObjects applies objs, localized, in order. Every apply is a
// server-side apply with strict field validation: an unknown or misspelled
// field fails. Cluster-scoped objects are deleted when the test ends (the
// namespaces go with theirs).
func applyK8sObjects(t *testing.T, cfg *rest.Config, objs []k8sObject, into, ns string, dryRun bool) {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	for _, o := range objs {
		u := localize(t, mapper, o, into, ns)
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(t, err, o.String())
		namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if namespaced {
			ri = dyn.Resource(m.Resource).Namespace(into)
		}
		data, err := u.MarshalJSON()
		require.NoError(t, err)
		opts := metav1.PatchOptions{FieldManager: "selfheal-e2e", Force: new(true), FieldValidation: "Strict"}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err = ri.Patch(context.Background(), u.GetName(), types.ApplyPatchType, data, opts)
		require.NoError(t, err, "apply %s", o)
		if !namespaced && !dryRun {
			t.Cleanup(func() { _ = ri.Delete(context.Background(), u.GetName(), metav1.DeleteOptions{}) })
		}
	}
}

// localize returns a copy of o's object as it would be in monitoring with
// ns standing for monitoring: a namespaced object goes into into (ns, or
// another namespace for a copy of a RoleBinding), a cluster-scoped one gets
// a "-<ns>" suffix, and so do the references to it; the bindings' subjects
// are the ServiceAccount of ns.
func localize(t *testing.T, mapper meta.RESTMapper, o k8sObject, into, ns string) *unstructured.Unstructured {
	t.Helper()
	u := o.obj.DeepCopy()
	gvk := u.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	require.NoError(t, err, o.String())
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		u.SetNamespace(into)
	} else {
		u.SetName(u.GetName() + "-" + ns)
	}
	if subjects, ok, _ := unstructured.NestedSlice(u.Object, "subjects"); ok {
		for _, s := range subjects {
			s.(map[string]any)["namespace"] = ns
		}
		require.NoError(t, unstructured.SetNestedSlice(u.Object, subjects, "subjects"))
	}
	if kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind"); kind == "ClusterRole" {
		name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		require.NoError(t, unstructured.SetNestedField(u.Object, name+"-"+ns, "roleRef", "name"))
	}
	return u
}

// createK8sExampleSecrets creates the Secrets of the README's quickstart in
// ns, with the values given by key; every key must have one.
func createK8sExampleSecrets(t *testing.T, lab *k8slab.Lab, ns string, values map[string]string) {
	t.Helper()
	c := lab.Client(t)
	for name, keys := range k8sExampleSecrets {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{}}
		for _, k := range keys {
			v, ok := values[k]
			require.True(t, ok, "a value for Secret key %s", k)
			s.StringData[k] = v
		}
		_, err := c.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
}
