package builtin

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/jenkins"
	"github.com/selfheal/selfheal/playbooks"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func TestRegister(t *testing.T) {
	r := actions.NewRegistry()
	require.NoError(t, Register(r, Deps{}))
	require.Equal(t, []string{"alertmanager.silence", "exec", "jenkins.build", "kubernetes.restart", "kubernetes.scale", "kubernetes.set_resources", "prometheus.wal_cleanup", "webhook"}, r.IDs())

	err := Register(r, Deps{})
	require.EqualError(t, err, "register action \"alertmanager.silence\": already registered\n"+
		"register action \"exec\": already registered\n"+
		"register action \"jenkins.build\": already registered\n"+
		"register action \"kubernetes.restart\": already registered\n"+
		"register action \"kubernetes.scale\": already registered\n"+
		"register action \"kubernetes.set_resources\": already registered\n"+
		"register action \"prometheus.wal_cleanup\": already registered\n"+
		"register action \"webhook\": already registered")
}

// TestExamples loads every action's documented example as playbook steps,
// so the examples `selfheal actions` prints always load, and checks every
// parameter is documented. It is the one place examples are checked.
func TestExamples(t *testing.T) {
	r := actions.NewRegistry()
	deps := Deps{
		AlertmanagerURL: "http://127.0.0.1:9093",
		JenkinsServers:  jenkins.Servers{"default": {URL: "https://jenkins.example", User: "u", APIToken: "t"}},
		Kubernetes:      fake.NewClientset(),
		Dynamic:         dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		KubernetesImage: "registry.example/selfheal:v1",
	}
	require.NoError(t, Register(r, deps))
	for _, s := range Specs(deps) {
		t.Run(s.ID, func(t *testing.T) {
			require.NotEmpty(t, s.Summary)
			require.NotContains(t, s.Summary, "\n")
			require.NotEmpty(t, s.Example)
			steps := "    " + strings.ReplaceAll(strings.TrimRight(s.Example, "\n"), "\n", "\n    ")
			doc := "playbooks:\n  - name: example\n    match: ['a=\"b\"']\n    steps:\n" + steps + "\n"
			pbs, err := playbooks.Parse(r, s.ID+"-example.yaml", []byte(doc))
			require.NoError(t, err, doc)
			for _, st := range pbs[0].Steps {
				require.Equal(t, s.ID, st.ActionID)
			}
			for _, p := range actions.Describe(s) {
				require.NotEmpty(t, p.Doc, "parameter %s has no doc", p.Name)
			}
		})
	}
}
