package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryExampleChecks: every playbook file and daemon config under
// examples/ passes `selfheal check`, every playbook test passes `selfheal
// test`, and the local demo's Alertmanager config passes `amtool
// check-config`. (examples/kubernetes has its own, TestKubernetesExampleChecks;
// examples/mixin runs promtool in its package.)
func TestEveryExampleChecks(t *testing.T) {
	requireE2E(t, "amtool")
	glob := func(pattern string) []string {
		files, err := filepath.Glob(filepath.Join("..", "examples", pattern))
		require.NoError(t, err)
		require.NotEmpty(t, files, pattern)
		return files
	}
	var playbooks []string
	for _, p := range []string{"local/playbooks/*.yaml", "tests/playbooks/*.yaml", "kubernetes/playbooks-configmap.yaml"} {
		playbooks = append(playbooks, glob(p)...)
	}
	type check struct {
		name string
		args []string
		want string
	}
	var checks []check
	for _, f := range playbooks { // one at a time: each is its own set
		checks = append(checks, check{"playbooks " + filepath.Base(f), []string{selfhealBin, "check", f}, "SUCCESS"})
	}
	checks = append(checks, []check{
		{"tests", append([]string{selfhealBin, "test"}, glob("tests/*.yaml")...), "SUCCESS"},
		{"alertmanager", []string{"amtool", "check-config", filepath.Join("..", "examples", "alertmanager", "alertmanager.yml")}, "SUCCESS"},
	}...)
	for _, cfg := range []string{"local/selfheal.yml", "tests/breaker.yml"} {
		checks = append(checks, check{"config " + cfg, []string{selfhealBin, "check", "--config.file=" + glob(cfg)[0]}, "SUCCESS"})
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(c.args[0], c.args[1:]...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), c.want)
			require.NotContains(t, string(out), "FAIL")
		})
	}
}
