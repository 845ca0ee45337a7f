package builtin

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/jenkins"
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

// TestExamples builds every spec's documented example through the registry,
// so the examples `selfheal actions` prints stay valid.
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
			var steps []struct {
				Name   string    `yaml:"name"`
				Action string    `yaml:"action"`
				With   yaml.Node `yaml:"with"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(s.Example), &steps))
			require.NotEmpty(t, steps)
			for _, st := range steps {
				require.Equal(t, s.ID, st.Action)
				a, p, err := r.Build("example.yaml", "with", st.Action, &st.With)
				require.NoError(t, err)
				require.NotNil(t, a)
				require.NotNil(t, p)
			}
		})
	}
}
