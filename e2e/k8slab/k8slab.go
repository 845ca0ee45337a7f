// Package k8slab gives tests the real Kubernetes control plane that `make
// test` starts with scripts/k8slab.sh: kube-apiserver v1.37.1 on etcd, with
// kube-controller-manager, kube-scheduler and kwok (a fake kubelet), so
// Deployments get ReplicaSets and Pods that become Running and Ready.
package k8slab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvVar names the env file scripts/k8slab.sh writes on start; make sets it.
const EnvVar = "SELFHEAL_K8SLAB_ENV"

// Lab is a running control plane.
type Lab struct {
	// AdminKubeconfig is a kubeconfig of a system:masters user.
	AdminKubeconfig string
	// RestrictedKubeconfig is a kubeconfig of a user with no RBAC grants.
	RestrictedKubeconfig string
	// RestrictedUser is that user's name, for RoleBindings.
	RestrictedUser string
	Admin          *rest.Config
	Restricted     *rest.Config
}

// Get returns the lab `make test` started. Under -short it skips; when no
// lab runs it fails, naming the command that starts one: a missing
// component is installed, never skipped.
func Get(t testing.TB) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real kube-apiserver; run without -short (make test)")
	}
	path := os.Getenv(EnvVar)
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache", "selfheal", "k8slab", "env")
	}
	env, err := readEnv(path)
	if err != nil {
		t.Fatalf("no running kube-apiserver (%v): run `make test`, or `make k8s-up` before go test", err)
	}
	lab := &Lab{
		AdminKubeconfig:      env["K8SLAB_KUBECONFIG"],
		RestrictedKubeconfig: env["K8SLAB_RESTRICTED_KUBECONFIG"],
		RestrictedUser:       "k8slab-restricted",
	}
	for _, c := range []struct {
		path string
		out  **rest.Config
	}{{lab.AdminKubeconfig, &lab.Admin}, {lab.RestrictedKubeconfig, &lab.Restricted}} {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.path)
		if err != nil {
			t.Fatalf("k8slab kubeconfig %s: %v", c.path, err)
		}
		*c.out = cfg
	}
	probe := rest.CopyConfig(lab.Admin)
	probe.Timeout = 10 * time.Second
	client, err := kubernetes.NewForConfig(probe)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		t.Fatalf("kube-apiserver from %s does not answer (%v): run `make k8s-up`", path, err)
	}
	return lab
}

// Client returns an admin clientset.
func (l *Lab) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(l.Admin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Namespace creates a namespace for the test, deleted when it ends.
func (l *Lab) Namespace(t testing.TB) string {
	t.Helper()
	c := l.Client(t)
	base := sanitize(t.Name())
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	name := fmt.Sprintf("t-%s-%06d", base, time.Now().UnixNano()%1e6)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	if env["K8SLAB_KUBECONFIG"] == "" {
		return nil, fmt.Errorf("%s has no K8SLAB_KUBECONFIG", path)
	}
	return env, sc.Err()
}
