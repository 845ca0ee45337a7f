package jenkins

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// TestHostileLabelsInTheJobName: a label may pick a job on the configured
// server, never another server nor a path outside the job tree. The server
// is a literal name from the daemon config; the job's segments are checked
// and escaped.
func TestHostileLabelsInTheJobName(t *testing.T) {
	a, _, err := build(t, exampleServers(), nil, "job: 'spark/{{ .Labels.x }}'\nparameters: {HOST: '{{ .Labels.x }}'}")
	require.NoError(t, err)
	for _, tc := range []struct{ x, wantErr string }{
		{"../victim", `jenkins.build: job: "spark/../victim": ".." is not a job or folder name`},
		{"a/../../script", `jenkins.build: job: "spark/a/../../script": ".." is not a job or folder name`},
		{"x; touch PWNED", `jenkins.build: job: "spark/x; touch PWNED": Jenkins does not allow ";" in a name`},
		{"evil.example:80", `jenkins.build: job: "spark/evil.example:80": Jenkins does not allow ":" in a name`},
		{"a\x00", `jenkins.build: job: "spark/a\x00": "a\x00" contains a control character`},
		{"a\nb", `jenkins.build: job: "spark/a\nb": "a\nb" contains a control character`},
	} {
		t.Run(tc.x, func(t *testing.T) {
			tgt := target()
			tgt.Labels = map[string]string{"x": tc.x}
			_, err := a.Plan(context.Background(), tgt)
			require.EqualError(t, err, tc.wantErr)
		})
	}
	t.Run("a label that looks like an option is a plain job name and parameter", func(t *testing.T) {
		tgt := target()
		tgt.Labels = map[string]string{"x": "-rf"}
		plan, err := a.Plan(context.Background(), tgt)
		require.NoError(t, err)
		require.Contains(t, plan.Params, actions.Param{Name: "server_url", Value: "https://jenkins.example"})
		require.Contains(t, plan.Params, actions.Param{Name: "job", Value: "spark/-rf"})
	})
}
