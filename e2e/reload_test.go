package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/selfheal/selfheal/e2e/k8slab"
)

// playbookFile is a playbook file with one exec playbook that appends the
// episode to ran, matching the single-firing capture.
func playbookFile(name, ran string) string {
	return fmt.Sprintf(`playbooks:
  - name: %s
    match: ['jenkins_job="clean_data_worker"']
    steps:
      - name: record
        action: exec
        with: {command: [/bin/sh, -c, 'echo "%s $SELFHEAL_EPISODE" >> %s']}
`, name, name, ran)
}

type sourceView struct {
	Source         string   `json:"source"`
	Revision       string   `json:"revision"`
	Playbooks      []string `json:"playbooks"`
	LatestRevision string   `json:"latestRevision"`
	LastError      string   `json:"lastError"`
}

type playbooksView struct {
	Playbooks []struct {
		Name     string `json:"name"`
		Source   string `json:"source"`
		Revision string `json:"revision"`
	} `json:"playbooks"`
	Sources []sourceView `json:"sources"`
}

func apiPlaybooks(t *testing.T, d *daemon) playbooksView {
	t.Helper()
	var v playbooksView
	require.NoError(t, json.Unmarshal([]byte(d.get(t, "/api/v1/playbooks")), &v))
	return v
}

func (v playbooksView) names() []string {
	out := []string{}
	for _, p := range v.Playbooks {
		out = append(out, p.Name)
	}
	return out
}

func (v playbooksView) source(name string) sourceView {
	for _, s := range v.Sources {
		if s.Source == name {
			return s
		}
	}
	return sourceView{}
}

func reload(t *testing.T, d *daemon) (int, string) {
	t.Helper()
	return d.request(t, http.MethodPost, "/-/reload")
}

// TestConfigMapPlaybooksLiveReload: the daemon, pointed at the real
// kube-apiserver, loads a kubectl-applied ConfigMap within 2 s and runs it
// on a webhook; a broken update keeps the previous version and says why in
// a Warning Event, the metric and the API; the fix activates; removing the
// label and deleting the ConfigMap remove the playbooks.
func TestConfigMapPlaybooksLiveReload(t *testing.T) {
	requireE2E(t)
	lab := k8slab.Get(t)
	c, ns := lab.Client(t), lab.Namespace(t)
	ctx := context.Background()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.log")
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "selfheal.yml"), fmt.Sprintf(`receiver:
  bearer_token_file: token
playbooks:
  kubernetes: {enabled: true, namespaces: [%s]}
kubernetes:
  kubeconfig: %s
`, ns, lab.AdminKubeconfig))
	d := startSelfheal(t, dir, filepath.Join(dir, "data"), freePort(t))
	require.Empty(t, apiPlaybooks(t, d).Playbooks)

	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spark", Labels: map[string]string{"selfheal.io/playbook": "true"}},
		Data:       map[string]string{"clean.yaml": playbookFile("clean-data-worker", ran)},
	}
	applied := time.Now()
	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)
	var took time.Duration
	eventually(t, 10*time.Second, "the playbook in /api/v1/playbooks", func() bool {
		took = time.Since(applied)
		return len(apiPlaybooks(t, d).Playbooks) == 1
	})
	t.Logf("apply to active (seen through the API, polled): %v", took)
	require.Less(t, took, 2*time.Second, "apply to active")
	source := "configmap/" + ns + "/spark/clean.yaml"
	require.Equal(t, source, apiPlaybooks(t, d).Playbooks[0].Source)

	require.Equal(t, 202, d.postAlerts(t, realPayload(t, "single-firing"), token))
	eventually(t, 30*time.Second, "the ConfigMap's playbook to run", func() bool { return len(lines(t, ran)) == 1 })
	require.True(t, strings.HasPrefix(lines(t, ran)[0], "clean-data-worker "))
	good := apiPlaybooks(t, d).source(source).Revision
	eventually(t, 10*time.Second, "the run record", func() bool { r := runs(t, d); return len(r) == 1 && r[0].State == "succeeded" })
	require.Equal(t, source, runs(t, d)[0].Source, "run records name the ConfigMap key")
	require.Equal(t, good, runs(t, d)[0].Revision)

	// A broken update: a syntax error in one key, an unknown field in another.
	cm.Data["clean.yaml"] = strings.Replace(playbookFile("clean-data-worker", ran), "    steps:", "    step_timeout: 5m\n    steps:", 1)
	cm.Data["more.yaml"] = "playbooks:\n  - name: more\n    match: ['a=\"b\"'\n"
	cm, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	unknown := source + `:4:5: playbooks[0]: unknown field "step_timeout"`
	syntax := "configmap/" + ns + "/spark/more.yaml:3:12: syntax error: sequence end token ']' not found"
	eventually(t, 10*time.Second, "the errors in /api/v1/playbooks", func() bool {
		v := apiPlaybooks(t, d)
		return strings.Contains(v.source(source).LastError, unknown) && strings.Contains(v.source("configmap/"+ns+"/spark/more.yaml").LastError, syntax)
	})
	v := apiPlaybooks(t, d)
	require.Equal(t, good, v.source(source).Revision, "the previous version stays active")
	require.NotEmpty(t, v.source(source).LatestRevision)
	require.Equal(t, []string{"clean-data-worker"}, v.names())
	require.Equal(t, 0.0, metric(t, d.url, "selfheal_config_last_reload_successful", map[string]string{"source": source}))
	require.Equal(t, 0.0, metric(t, d.url, "selfheal_config_last_reload_successful", map[string]string{"source": "configmap/" + ns + "/spark/more.yaml"}))
	eventually(t, 10*time.Second, "Warning Events carrying the positions", func() bool {
		list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=spark,type=Warning"})
		require.NoError(t, err)
		var all []string
		for _, e := range list.Items {
			all = append(all, e.Message)
		}
		msgs := strings.Join(all, "\n")
		return strings.Contains(msgs, unknown) && strings.Contains(msgs, syntax)
	})
	require.Contains(t, tail(d.log, 200), "playbook source not loaded; its last good version stays active")

	// The fix activates the new version.
	cm.Data["clean.yaml"] = playbookFile("clean-data-worker", ran) + "    description: fixed\n"
	cm.Data["more.yaml"] = playbookFile("more", ran)
	cm, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, 10*time.Second, "the fixed version", func() bool {
		v := apiPlaybooks(t, d)
		return len(v.Playbooks) == 2 && v.source(source).Revision != good && v.source(source).LastError == ""
	})
	require.Equal(t, 1.0, metric(t, d.url, "selfheal_config_last_reload_successful", map[string]string{"source": source}))

	// Removing the label removes the playbooks, and so does deleting.
	delete(cm.Labels, "selfheal.io/playbook")
	cm, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, 10*time.Second, "no playbooks after the label removal", func() bool { return len(apiPlaybooks(t, d).Playbooks) == 0 })
	cm.Labels = map[string]string{"selfheal.io/playbook": "true"}
	_, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, 10*time.Second, "playbooks back with the label", func() bool { return len(apiPlaybooks(t, d).Playbooks) == 2 })
	require.NoError(t, c.CoreV1().ConfigMaps(ns).Delete(ctx, "spark", metav1.DeleteOptions{}))
	eventually(t, 10*time.Second, "no playbooks after the deletion", func() bool {
		v := apiPlaybooks(t, d)
		return len(v.Playbooks) == 0 && len(v.Sources) == 0
	})
}

// TestConfigMapsWithRestrictedTokenDoNotCrash: a token without RBAC gets a
// clear error at start and in /api/v1/status; the daemon serves on.
func TestConfigMapsWithRestrictedTokenDoNotCrash(t *testing.T) {
	requireE2E(t)
	lab := k8slab.Get(t)
	ns := lab.Namespace(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "selfheal.yml"), fmt.Sprintf(`receiver:
  insecure: true
playbooks:
  kubernetes: {enabled: true, namespaces: [%s]}
kubernetes:
  kubeconfig: %s
`, ns, lab.RestrictedKubeconfig))
	d := startSelfheal(t, dir, filepath.Join(dir, "data"), freePort(t))
	log := tail(d.log, 100)
	require.Contains(t, log, "forbidden: needs verb list on resource configmaps in namespace "+ns)
	require.Contains(t, log, "rbac-playbooks-namespace.yaml")

	var st struct {
		Kubernetes struct {
			Problems   []string `json:"problems"`
			Namespaces []struct {
				Namespace string `json:"namespace"`
				Synced    bool   `json:"synced"`
				Error     string `json:"error"`
			} `json:"namespaces"`
		} `json:"kubernetes"`
	}
	eventually(t, 10*time.Second, "the watch error in /api/v1/status", func() bool {
		require.NoError(t, json.Unmarshal([]byte(d.get(t, "/api/v1/status")), &st))
		return len(st.Kubernetes.Namespaces) == 1 && strings.Contains(st.Kubernetes.Namespaces[0].Error, "forbidden")
	})
	require.Contains(t, strings.Join(st.Kubernetes.Problems, "\n"), "forbidden: needs verb watch on resource configmaps in namespace "+ns)
	require.False(t, st.Kubernetes.Namespaces[0].Synced)
	require.Contains(t, d.get(t, "/-/healthy"), "Healthy")
	select {
	case <-d.done:
		t.Fatal("the daemon exited")
	default:
	}
}

// TestPlaybookFilesReload: an edit on disk and a kubelet-style ..data
// symlink swap reload the files through the watcher; with the watcher off,
// SIGHUP and POST /-/reload do; a broken file keeps its last good version
// and /-/reload answers 500 with the error.
func TestPlaybookFilesReload(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.log")
	pbDir := filepath.Join(dir, "playbooks")
	mount := filepath.Join(dir, "mount") // laid out like a kubelet ConfigMap volume
	config := func(watch bool) {
		writeFile(t, filepath.Join(dir, "selfheal.yml"), fmt.Sprintf(
			"receiver:\n  insecure: true\nplaybooks:\n  files: [%s/*.yaml, %s/*.yaml]\n  watch_files: %t\n", pbDir, mount, watch))
	}
	names := func(d *daemon) string { return strings.Join(apiPlaybooks(t, d).names(), ",") }
	config(true)
	writeFile(t, filepath.Join(pbDir, "a.yaml"), playbookFile("alpha", ran))
	kubeletWrite(t, mount, map[string]string{"k.yaml": playbookFile("kube-one", ran)})
	storage, port := filepath.Join(dir, "data"), freePort(t)
	d := startSelfheal(t, dir, storage, port)
	require.Equal(t, "alpha,kube-one", names(d))

	// On-disk changes: a new file, the kubelet's symlink swap (which never
	// writes k.yaml itself), a removed file.
	writeFile(t, filepath.Join(pbDir, "b.yaml"), playbookFile("beta", ran))
	eventually(t, 10*time.Second, "beta after a new file on disk", func() bool { return names(d) == "alpha,beta,kube-one" })
	kubeletWrite(t, mount, map[string]string{"k.yaml": playbookFile("kube-two", ran)})
	eventually(t, 10*time.Second, "kube-two after the ..data swap", func() bool { return names(d) == "alpha,beta,kube-two" })
	require.NoError(t, os.Remove(filepath.Join(pbDir, "a.yaml")))
	eventually(t, 10*time.Second, "alpha gone with its file", func() bool { return names(d) == "beta,kube-two" })
	// A broken edit on disk keeps the last good version.
	beta := filepath.Join(pbDir, "b.yaml")
	writeFile(t, beta, strings.Replace(playbookFile("beta", ran), "    steps:", "    stpes: []\n    steps:", 1))
	eventually(t, 10*time.Second, "the broken edit reported", func() bool {
		return strings.Contains(apiPlaybooks(t, d).source(beta).LastError, beta+`:4:5: playbooks[0]: unknown field "stpes"`)
	})
	require.Equal(t, "beta,kube-two", names(d), "the last good version stays")
	d.stop(t)

	// Without the watcher, only SIGHUP and /-/reload reload.
	config(false)
	writeFile(t, beta, playbookFile("beta", ran))
	d = startSelfheal(t, dir, storage, port)
	writeFile(t, filepath.Join(pbDir, "c.yaml"), playbookFile("gamma", ran))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	eventually(t, 10*time.Second, "gamma after SIGHUP", func() bool { return names(d) == "beta,gamma,kube-two" })
	require.Contains(t, tail(d.log, 50), "SIGHUP: reloading playbook files")

	good := apiPlaybooks(t, d).source(beta).Revision
	writeFile(t, beta, strings.Replace(playbookFile("beta", ran), "    steps:", "    stpes: []\n    steps:", 1))
	code, body := reload(t, d)
	require.Equal(t, 500, code)
	require.Contains(t, body, beta+`:4:5: playbooks[0]: unknown field "stpes"`)
	require.Equal(t, good, apiPlaybooks(t, d).source(beta).Revision, "the last good version stays")
	require.Equal(t, 0.0, metric(t, d.url, "selfheal_config_last_reload_successful", map[string]string{"source": beta}))

	writeFile(t, beta, playbookFile("beta", ran)+"    description: fixed\n")
	code, body = reload(t, d)
	require.Equal(t, 200, code, body)
	require.NotEqual(t, good, apiPlaybooks(t, d).source(beta).Revision)
	require.Equal(t, 1.0, metric(t, d.url, "selfheal_config_last_reload_successful", map[string]string{"source": beta}))
	kubeletWrite(t, mount, map[string]string{"k.yaml": playbookFile("kube-three", ran)})
	code, body = reload(t, d)
	require.Equal(t, 200, code, body)
	require.Equal(t, "beta,gamma,kube-three", names(d), "/-/reload follows the ..data symlink too")
}

// kubeletWrite updates dir the way the kubelet's AtomicWriter updates a
// ConfigMap volume: the files go into a new hidden timestamped folder, a
// ..data_tmp symlink to it is renamed over ..data, each user-visible name
// is a symlink to ..data/<key> (created once), and the old folder is
// removed.
func kubeletWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	require.NoError(t, err)
	for k, v := range files {
		require.NoError(t, os.WriteFile(filepath.Join(ts, k), []byte(v), 0o644))
	}
	tmp := filepath.Join(dir, "..data_tmp")
	require.NoError(t, os.Symlink(filepath.Base(ts), tmp))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	for k := range files {
		link := filepath.Join(dir, k)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			require.NoError(t, os.Symlink(filepath.Join("..data", k), link))
		}
	}
	if old != "" {
		require.NoError(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}
