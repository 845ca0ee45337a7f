package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/playbooks/kube"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// exec plans list the variables inherited from the daemon; pin them so
	// golden files do not depend on the machine.
	for k, v := range map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "TZ": "UTC"} {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code = realMainIO(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckReportsEveryErrorWithPosition(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "check", "testdata/playbooks.yaml", "testdata/broken.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "SUCCESS: testdata/playbooks.yaml: 4 playbooks")
	golden(t, "check-broken.stderr", stderr)
}

func TestCheckConfig(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "check", "--config.file=../../examples/local/selfheal.yml")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "SUCCESS: ../../examples/local/selfheal.yml is a valid config file")
	require.Contains(t, stdout, "demo.yaml: 2 playbooks")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("receiver: {insecure: true, extra: 1}\n"), 0o644))
	code, _, stderr = runCLI(t, "", "check", "--config.file="+cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, cfg+`:1:28: receiver: unknown field "extra"`)
}

func TestCheckNeedsInput(t *testing.T) {
	code, _, stderr := runCLI(t, "", "check")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "give --config.file, playbook files, or both")
}

func TestDryRunText(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "dry-run", "--playbooks=testdata/playbooks.yaml",
		"--alerts=../../receiver/testdata/alertmanager/multi-partial-resolved.json")
	require.Equal(t, 0, code, stderr)
	golden(t, "dry-run.txt", stdout)
}

func TestDryRunJSONFromStdin(t *testing.T) {
	payload, err := os.ReadFile("../../receiver/testdata/alertmanager/single-firing.json")
	require.NoError(t, err)
	code, stdout, stderr := runCLI(t, string(payload), "dry-run", "--playbooks=testdata/playbooks.yaml", "--alerts=-", "--output=json")
	require.Equal(t, 0, code, stderr)
	var rep dryReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	golden(t, "dry-run.json", stdout)
	require.NotContains(t, stdout, "chat-token-value")
}

func TestDryRunBadPayload(t *testing.T) {
	code, _, stderr := runCLI(t, `{"version":"3","alerts":[]}`, "dry-run", "--playbooks=testdata/playbooks.yaml", "--alerts=-")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `version: "3" is not supported`)
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "version")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "selfheal, version")
}

// TestActionsListsEveryType checks `selfheal actions` names every
// registered type (actions/builtin checks the examples themselves).
func TestActionsListsEveryType(t *testing.T) {
	reg, err := newRegistry(nil, nil)
	require.NoError(t, err)
	code, stdout, _ := runCLI(t, "", "actions")
	require.Equal(t, 0, code)
	for _, id := range reg.IDs() {
		require.Contains(t, stdout, id+": ")
	}
}

// TestReadmePlaybooksAreValid checks every playbook example in README.md, so
// the manual never shows one that does not load.
func TestReadmePlaybooksAreValid(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks := strings.Split(string(data), "```yaml\n")[1:]
	reg, err := newRegistry(nil, nil)
	require.NoError(t, err)
	n, manifests := 0, 0
	for i, b := range blocks {
		doc, _, _ := strings.Cut(b, "```")
		name := fmt.Sprintf("README.md block %d", i+1)
		switch {
		case strings.HasPrefix(doc, "playbooks:"):
			n++
			_, err := playbooks.Parse(reg, name, []byte(doc))
			require.NoError(t, err)
		case kube.IsManifest([]byte(doc)):
			manifests++
			m, err := kube.ParseManifest(reg, name, []byte(doc), nil)
			require.NoError(t, err)
			require.NotEmpty(t, m.Files, name)
			for _, f := range m.Files {
				require.NoError(t, f.Err, name)
			}
		}
	}
	require.GreaterOrEqual(t, n, 5)
	require.GreaterOrEqual(t, manifests, 1, "the ConfigMap example")
}
