package kubernetes

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHostileLabelsInObjectNames: namespaces and names a label fills in
// must be DNS names, so a label can pick an object of the kind the step
// names, never a path, an option or another API.
func TestHostileLabelsInObjectNames(t *testing.T) {
	c := newFake()
	restart := mustBuild(t, c, RestartID, "mode: delete")
	scale := mustBuild(t, c, ScaleID, "kind: Deployment\nname: '{{ .Labels.pod }}'\nreplicas: 2")
	for _, tc := range []struct{ ns, pod, wantNS, wantPod string }{
		{"../victim", "web-1", `namespace: "../victim" is not a valid namespace name`, ""},
		{"web", "../victim", "", `"../victim" is not a valid object name`},
		{"web", "-rf", "", `"-rf" is not a valid object name`},
		{"web", "a; touch PWNED", "", `"a; touch PWNED" is not a valid object name`},
		{"web", "evil.example:80", "", `"evil.example:80" is not a valid object name`},
		{"web\x00", "web-1", `namespace: "web\x00" is not a valid namespace name`, ""},
		{"web", "a\nb", "", `"a\nb" is not a valid object name`},
	} {
		t.Run(tc.ns+"/"+tc.pod, func(t *testing.T) {
			want := tc.wantNS
			if want == "" {
				want = tc.wantPod
			}
			_, err := restart.Run(context.Background(), target(tc.ns, tc.pod))
			require.ErrorContains(t, err, want)
			_, err = scale.Plan(context.Background(), target(tc.ns, tc.pod))
			require.ErrorContains(t, err, want)
		})
	}
	require.Empty(t, writes(c), "nothing was written")
}
