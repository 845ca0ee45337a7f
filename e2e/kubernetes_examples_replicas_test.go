package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/selfheal/selfheal/e2e/k8slab"
)

// writeK8sExampleFiles lays out under root what a pod of the example sees
// under its mounts: the config of its ConfigMap, rewritten for the test
// (the paths of the files it reads under root, the watched namespace ns,
// the kubeconfig, and amURL as the only Alertmanager when set, reconciled at
// start only, with global shadow mode then), and the Secret keys with the
// values given. It returns the config's path.
func writeK8sExampleFiles(t *testing.T, ex *k8sExample, root, ns, kubeconfig, amURL string, values map[string]string) string {
	t.Helper()
	d, c := ex.deployment(t)
	cfgPath, text := ex.exampleConfig(t)
	files := k8sExampleFiles(t, ex)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(text), &cfg))
	cfg = rewriteStrings(cfg, func(s string) string {
		if slices.Contains(files, s) {
			return root + s
		}
		return s
	}).(map[string]any)
	pk := cfg["playbooks"].(map[string]any)["kubernetes"].(map[string]any)
	require.Equal(t, []any{k8sExampleNamespace}, pk["namespaces"])
	pk["namespaces"] = []any{ns}
	k := cfg["kubernetes"].(map[string]any)
	require.Equal(t, "", k["kubeconfig"], "in-cluster")
	k["kubeconfig"] = kubeconfig
	if amURL != "" {
		am := cfg["alertmanager"].(map[string]any)
		am["urls"] = []any{amURL}
		// Reconciliation once, at start: the alert must come by the
		// webhook route, not be found by a later reconciliation.
		am["reconcile_interval"] = "1h"
		cfg["dry_run"] = true
	}
	data, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	for _, f := range files {
		if f == cfgPath {
			writeFile(t, root+f, string(data))
			continue
		}
		vol, key := mountedFile(t, d, c, f)
		require.NotNil(t, vol.Secret, f)
		writeFile(t, root+f, values[key])
	}
	return root + cfgPath
}

// rewriteStrings returns v with every string s replaced by f(s).
func rewriteStrings(v any, f func(string) string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = rewriteStrings(e, f)
		}
	case []any:
		for i, e := range x {
			x[i] = rewriteStrings(e, f)
		}
	case string:
		return f(x)
	}
	return v
}

// runExampleReplicas starts two replicas with the Deployment's flags (pod
// name and IP, ports and paths filled in for loopback) and a real
// Alertmanager with the example's alertmanager.yml (its URL and token file
// pointed at the first replica and its token, its group_wait shortened),
// and sends the Alertmanager the disk alert of the example rules.
func runExampleReplicas(t *testing.T, lab *k8slab.Lab, ex *k8sExample, ns, dir string, secrets map[string]string) {
	t.Helper()
	amPort := freePort(t)
	amURL := fmt.Sprintf("http://127.0.0.1:%d", amPort)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	serviceAccountKubeconfig(t, lab, ns, kubeconfig)
	type replica struct {
		name        string
		web, gossip int
		root        string
		d           *daemon
		args        []string
	}
	rs := []*replica{{name: "selfheal-0"}, {name: "selfheal-1"}}
	for _, r := range rs {
		r.web, r.gossip, r.root = freePort(t), freePort(t), filepath.Join(dir, r.name)
		writeK8sExampleFiles(t, ex, r.root, ns, kubeconfig, amURL, secrets)
	}
	_, c := ex.deployment(t)
	files := k8sExampleFiles(t, ex)
	storage := flags(c)["storage.path"][0]
	for i, r := range rs {
		peer := rs[1-i]
		for _, a := range c.Args {
			name, value, _ := strings.Cut(a, "=")
			switch {
			case name == "--web.listen-address":
				value = fmt.Sprintf("127.0.0.1:%d", r.web)
			case name == "--cluster.listen-address":
				value = fmt.Sprintf("127.0.0.1:%d", r.gossip)
			case name == "--cluster.peer":
				value = fmt.Sprintf("127.0.0.1:%d", peer.gossip)
			case name == "--cluster.advertise-address":
				value = strings.NewReplacer("$(POD_IP)", "127.0.0.1", ":9596", fmt.Sprintf(":%d", r.gossip)).Replace(value)
			case name == "--cluster.name":
				value = strings.ReplaceAll(value, "$(POD_NAME)", r.name)
			case name == "--storage.path":
				value = r.root + storage
			case slices.Contains(files, value):
				value = r.root + value
			}
			if value != "" {
				a = name + "=" + value
			}
			r.args = append(r.args, a)
		}
	}
	for _, r := range rs {
		p := start(t, dir, r.name, selfhealBin, r.args...)
		r.d = &daemon{proc: p, url: fmt.Sprintf("http://127.0.0.1:%d", r.web), token: secrets["token"]}
	}
	for _, r := range rs {
		waitHTTP(t, r.d.url+"/-/ready", 60*time.Second)
	}
	var st struct {
		Cluster struct {
			Members []struct{ Name, State string }
		}
		Kubernetes struct {
			Problems   []string
			Namespaces []struct {
				Namespace, Error string
				Synced           bool
			}
		}
	}
	eventually(t, 30*time.Second, "a cluster of 2 with the ConfigMaps synced", func() bool {
		require.NoError(t, json.Unmarshal([]byte(rs[0].d.get(t, "/api/v1/status")), &st))
		return len(st.Cluster.Members) == 2 && len(st.Kubernetes.Namespaces) == 1 && st.Kubernetes.Namespaces[0].Synced
	})
	require.Empty(t, st.Kubernetes.Problems, "the ServiceAccount has what the watcher needs")
	require.Equal(t, ns, st.Kubernetes.Namespaces[0].Namespace)
	var names []string
	for _, p := range apiPlaybooks(t, rs[1].d).Playbooks {
		names = append(names, p.Name)
		require.True(t, strings.HasPrefix(p.Source, "configmap/"+ns+"/selfheal-playbooks/"), p.Source)
	}
	slices.Sort(names)
	var want []string
	for _, pbs := range exampleRunsOf {
		want = append(want, pbs...)
	}
	slices.Sort(want)
	require.Equal(t, slices.Compact(want), names)

	startExampleAlertmanager(t, dir, amPort, rs[0].d.url, secrets["token"])
	var disk *exampleAlert
	for _, a := range exampleRuleAlerts(t) {
		if a.Labels["alertname"] == "SparkWorkerDiskFull" {
			disk = a
		}
	}
	require.NotNil(t, disk)
	body, err := json.Marshal([]map[string]any{{"labels": disk.Labels, "annotations": disk.Annotations,
		"startsAt": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano), "generatorURL": "http://prometheus:9090/graph"}})
	require.NoError(t, err)
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	eventually(t, 30*time.Second, "Alertmanager's notification, with the token, by the example route", func() bool {
		return metric(t, rs[0].d.url, "selfheal_receiver_notifications_accepted_total", nil) == 1
	})
	for _, r := range rs {
		eventually(t, 30*time.Second, "the shadow run of clean-data-worker in "+r.name+"'s log", func() bool {
			got := runs(t, r.d)
			return len(got) == 1 && got[0].Playbook == "clean-data-worker" && got[0].State == "shadow"
		})
	}
	require.Zero(t, metric(t, rs[0].d.url, "selfheal_receiver_notifications_rejected_total", nil))
}

// startExampleAlertmanager starts Debian's Alertmanager with the example's
// alertmanager.yml, sending to selfheal at url with the token.
func startExampleAlertmanager(t *testing.T, dir string, port int, url, token string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sExampleDir, "alertmanager.yml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	route := cfg["route"].(map[string]any)["routes"].([]any)[0].(map[string]any)
	require.Equal(t, "selfheal", route["receiver"])
	route["group_wait"] = "1s"
	var hook map[string]any
	for _, r := range cfg["receivers"].([]any) {
		if r := r.(map[string]any); r["name"] == "selfheal" {
			hook = r["webhook_configs"].([]any)[0].(map[string]any)
		}
	}
	require.NotNil(t, hook)
	require.Equal(t, true, hook["send_resolved"])
	require.NotContains(t, hook, "max_alerts")
	require.Equal(t, "http://selfheal."+k8sExampleNamespace+".svc:9595/api/v1/alerts", hook["url"], "the webhook Service")
	hook["url"] = url + "/api/v1/alerts"
	auth := hook["http_config"].(map[string]any)["authorization"].(map[string]any)
	require.Equal(t, "Bearer", auth["type"])
	require.Equal(t, "/etc/alertmanager/secrets/selfheal-webhook/token", auth["credentials_file"],
		"where prometheus-operator mounts key token of Secret selfheal-webhook (spec.secrets)")
	require.Contains(t, k8sExampleSecrets["selfheal-webhook"], "token")
	auth["credentials_file"] = filepath.Join(dir, "am-token")
	writeFile(t, filepath.Join(dir, "am-token"), token+"\n")
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, "alertmanager.yml"), string(out))
	start(t, dir, "alertmanager", "prometheus-alertmanager",
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "am-data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--cluster.listen-address=")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/-/ready", port), 30*time.Second)
}

// TestKubernetesExampleChecks runs the checks the example's files must
// pass: selfheal check of the playbook ConfigMap, promtool check and test
// of the rules, amtool check-config of the Alertmanager config.
func TestKubernetesExampleChecks(t *testing.T) {
	requireE2E(t, "promtool", "amtool")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"selfheal check", []string{selfhealBin, "check", "playbooks-configmap.yaml"}, []string{
			"SUCCESS: playbooks-configmap.yaml:", "selfheal-playbooks/spark.yaml: 1 playbooks", "selfheal-playbooks/restart.yaml: 1 playbooks"}},
		{"promtool check rules", []string{"promtool", "check", "rules", "prometheus-rules.yml"}, []string{"SUCCESS: 5 rules found"}},
		{"promtool test rules", []string{"promtool", "test", "rules", "prometheus-rules.test.yml"}, []string{"SUCCESS"}},
		{"amtool check-config", []string{"amtool", "check-config", "alertmanager.yml"}, []string{"SUCCESS", "2 receivers"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(c.args[0], c.args[1:]...)
			cmd.Dir = k8sExampleDir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			for _, w := range c.want {
				require.Contains(t, string(out), w)
			}
			require.NotContains(t, string(out), "WARNING")
		})
	}
}
