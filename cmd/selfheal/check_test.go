package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// positions returns the 1-based line:column of every line's first
// occurrence of s in the file, so tests state positions counted from the
// fixture itself.
func positions(t *testing.T, file, s string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		if c := strings.Index(line, s); c >= 0 {
			out = append(out, fmt.Sprintf("%d:%d", i+1, c+1))
		}
	}
	return out
}

// position returns the line:column of the first occurrence of s.
func position(t *testing.T, file, s string) string {
	t.Helper()
	all := positions(t, file, s)
	require.NotEmpty(t, all, "%q not in %s", s, file)
	return all[0]
}

// TestCheckManifest checks a manifest with one good and one broken
// ConfigMap: exit 1, each error at its line in the manifest.
func TestCheckManifest(t *testing.T) {
	const file = "testdata/configmaps.yaml"
	code, stdout, stderr := runCLI(t, "", "check", file)
	require.Equal(t, 1, code)
	require.Equal(t, "SUCCESS: testdata/configmaps.yaml:10:3: configmap/ops/disk/disk.yaml: 2 playbooks\n", stdout)
	golden(t, "check-configmaps.stderr", stderr)

	// The unknown field "comand" is on line 47 of the manifest, at column 15.
	require.Equal(t, "47:15", position(t, file, "comand:"))
	require.Contains(t, stderr, "  testdata/configmaps.yaml:47:15: playbooks[0].steps[0].with: unknown field \"comand\"\n")
	// The YAML syntax error (a second ": " in a plain value) is on line 51;
	// the column is the YAML parser's choice.
	require.Equal(t, "51:9", position(t, file, "description: Restart: it is stuck"))
	require.Regexp(t, `(?m)^  testdata/configmaps\.yaml:51(:\d+)?: syntax error: mapping values? (is|are) not allowed in this context$`, stderr)
}

// TestCheckKubectlList checks what `kubectl get configmaps -o yaml` prints.
func TestCheckKubectlList(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "check", "testdata/kubectl-list.yaml")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	golden(t, "check-kubectl-list.stdout", stdout)
}

// TestCheckUnlabelledConfigMap checks that a ConfigMap the daemon would not
// load is validated all the same, with a warning, and that the selector is
// the config's when it sets one.
func TestCheckUnlabelledConfigMap(t *testing.T) {
	const file = "testdata/unlabelled.yaml"
	code, stdout, stderr := runCLI(t, "", "check", file)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "WARNING: testdata/unlabelled.yaml:10:3: configmap/ops/forgotten/forgotten.yaml: not loaded by selfheal: labels do not match selfheal.io/playbook=true\n"+
		"SUCCESS: testdata/unlabelled.yaml:10:3: configmap/ops/forgotten/forgotten.yaml: 1 playbooks\n", stdout)

	// Still validated: break it and the check fails.
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	broken := filepath.Join(t.TempDir(), "unlabelled.yaml")
	require.NoError(t, os.WriteFile(broken, []byte(strings.Replace(string(data), "command:", "comand:", 1)), 0o644))
	code, _, stderr = runCLI(t, "", "check", broken)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `unknown field "comand"`)

	cfg := filepath.Join(t.TempDir(), "selfheal.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("receiver: {insecure: true}\nplaybooks:\n  kubernetes: {enabled: true, label_selector: app=ops-tools}\n"), 0o644))
	code, stdout, stderr = runCLI(t, "", "check", "--config.file="+cfg, file)
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout, "WARNING")
	require.Contains(t, stdout, "SUCCESS: testdata/unlabelled.yaml:10:3: configmap/ops/forgotten/forgotten.yaml: 1 playbooks\n")
}

// TestCheckManifestNameClash checks that a name defined in two ConfigMaps
// is reported at both places in the manifest.
func TestCheckManifestNameClash(t *testing.T) {
	const file = "testdata/clash.yaml"
	code, _, stderr := runCLI(t, "", "check", file)
	require.Equal(t, 1, code)
	require.Equal(t, []string{"11:15", "25:15"}, positions(t, file, "restart-consumer"))
	require.Equal(t, "FAILED: playbooks across files\n"+
		"  playbook \"restart-consumer\" is defined twice: in testdata/clash.yaml:11:15 and in testdata/clash.yaml:25:15\n", stderr)
}

// TestCheckManifestQuotedValue checks the rendering of an error in a value
// that is not a literal block: the value's position in the manifest, then
// the position inside the value.
func TestCheckManifestQuotedValue(t *testing.T) {
	const file = "testdata/quoted.yaml"
	code, stdout, stderr := runCLI(t, "", "check", file)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "9:16", position(t, file, `"playbooks:`))
	require.Equal(t, "FAILED: testdata/quoted.yaml:9:3: configmap/ops/quoted/quoted.yaml\n"+
		"  testdata/quoted.yaml:9:16: configmap/ops/quoted/quoted.yaml:5:62: playbooks[0].steps[0].with: unknown field \"comand\"\n", stderr)
}

// TestCheckPlaybookFilesAndManifests checks that playbooks of files and of
// manifests share one namespace.
func TestCheckPlaybookFilesAndManifests(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "check", "testdata/playbooks.yaml", "testdata/kubectl-list.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "SUCCESS: testdata/playbooks.yaml: 4 playbooks\n")
	require.Contains(t, stderr, `playbook "clean-data-worker" is defined twice: in testdata/playbooks.yaml:`)
	require.Contains(t, stderr, " and in testdata/kubectl-list.yaml:7:17\n")
}

// TestCheckExampleConfigMap keeps the shipped ConfigMap example valid.
func TestCheckExampleConfigMap(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "check", "../../examples/kubernetes/playbooks-configmap.yaml")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "configmap/monitoring/selfheal-playbooks/prometheus.yaml: 1 playbooks")
}

// TestCheckRefusesWhatLabelsCouldSteer: a credential URL with a templated
// host, a templated path without a literal folder and a label templated
// into shell code are reported each at its parameter, in playbook files and
// in ConfigMap manifests.
func TestCheckRefusesWhatLabelsCouldSteer(t *testing.T) {
	const file = "testdata/steer.yaml"
	code, stdout, stderr := runCLI(t, "", "check", file)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "FAILED: "+file+"\n"+
		"  "+file+":"+position(t, file, "'http://")+`: playbooks[0].steps[0].with.url: the request carries a bearer token (bearer_token_file), so the URL's scheme, host and port must be literal: a template may only follow "scheme://host[:port]/"`+"\n"+
		"  "+file+":"+position(t, file, "'{{ .Labels.prom }}'")+`: playbooks[1].steps[0].with.data_dir: "{{ .Labels.prom }}": a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path`+"\n"+
		"  "+file+":"+position(t, file, "'rm -rf /data/")+`: playbooks[2].steps[0].with.command[2]: /bin/sh runs this as shell code, so a label could become a command: {{.Labels.instance}} must end in "| shellquote", or pass the value after the script and use "$1"`+"\n"+
		"  "+file+":"+position(t, file, "'/usr/lib/")+`: playbooks[2].steps[0].with.env.LD_PRELOAD: a template may not set a variable that decides which code runs (PATH, LD_*, BASH_ENV, ...); write its value literally`+"\n",
		stderr)

	const manifest = "testdata/steer-configmap.yaml"
	code, stdout, stderr = runCLI(t, "", "check", manifest)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "FAILED: "+manifest+":9:3: configmap/ops/steer/steer.yaml\n"+
		"  "+manifest+":"+position(t, manifest, "'touch")+`: playbooks[0].steps[0].with.command[2]: /bin/bash runs this as shell code, so a label could become a command: {{.Labels.instance}} must end in "| shellquote", or pass the value after the script and use "$1"`+"\n",
		stderr)
}

// TestCheckConfigReportsEveryError checks a config file with an error in
// each of several sections: all are listed, in file order, each at its
// position, and no URL's password is shown.
func TestCheckConfigReportsEveryError(t *testing.T) {
	const file = "testdata/bad-config.yml"
	code, stdout, stderr := runCLI(t, "", "check", "--config.file="+file)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "FAILED: "+file+"\n"+
		"  "+file+":"+position(t, file, "bearer_tokn")+`: receiver: unknown field "bearer_tokn"`+"\n"+
		"  "+file+":"+position(t, file, `"ftp://`)+`: alertmanager.url: want an http(s) URL like http://alertmanager:9093, got "ftp://selfheal:<secret>@am.example"`+"\n"+
		"  "+file+":"+position(t, file, "insecure_skip_verfy")+`: alertmanager.http_config.tls_config: unknown field "insecure_skip_verfy"`+"\n"+
		"  "+file+":"+position(t, file, "soon")+`: jenkins.default.timeout: not a valid duration string: "soon"`+"\n"+
		"  "+file+":"+position(t, file, "1h")+`: storage.retention: 1h is below the 24h floor: a record must outlive Alertmanager's repeat_interval and its retries, or a re-delivered alert runs its playbook again`+"\n",
		stderr)
	require.NotContains(t, stderr, "PASSWORD")
}

// TestCheckBreakerOnOpen: the steps of limits.breaker.on_open are checked
// like a playbook's, each error at its position in the config file, with
// no secret in the output.
func TestCheckBreakerOnOpen(t *testing.T) {
	const file = "testdata/bad-on-open.yml"
	code, stdout, stderr := runCLI(t, "", "check", "--config.file="+file)
	require.Equal(t, 1, code)
	require.Equal(t, "SUCCESS: "+file+" is a valid config file\n", stdout)
	require.Contains(t, stderr, "FAILED: "+file+"\n")
	require.Contains(t, stderr, "  "+file+":"+position(t, file, "'https://")+": limits.breaker.on_open[0].with.url: ")
	require.Contains(t, stderr, "  "+file+":"+positions(t, file, "page")[1]+`: limits.breaker.on_open[1].name: step "page" is already defined at `+file+":"+position(t, file, "page"))
	require.Contains(t, stderr, "  "+file+":"+position(t, file, "exce")+`: limits.breaker.on_open[1].action: unknown action "exce"`)
	require.NotContains(t, stderr, "s3cret")
}
