package silence

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHostileLabelsAreMatcherValues: label values become the values of
// equality matchers, never regular expressions, and the silence goes to the
// Alertmanager of the daemon config whatever a label holds.
func TestHostileLabelsAreMatcherValues(t *testing.T) {
	am := newFakeAM(t, "")
	a := newAction(t, am.URL, func(p *Params) { p.Matchers = []string{"alertname", "instance"} })
	tgt := target()
	tgt.Labels = map[string]string{"alertname": ".*", "instance": "evil.example:80/../victim; touch PWNED\n$(id)"}
	_, err := a.Run(context.Background(), tgt)
	require.NoError(t, err)
	reqs := am.requests()
	require.Len(t, reqs, 1)
	var got struct {
		Matchers []struct {
			Name, Value      string
			IsRegex, IsEqual bool
		}
	}
	require.NoError(t, json.Unmarshal([]byte(reqs[0].Body), &got))
	require.Len(t, got.Matchers, 2)
	for _, m := range got.Matchers {
		require.Equal(t, tgt.Labels[m.Name], m.Value)
		require.False(t, m.IsRegex, m.Name)
		require.True(t, m.IsEqual, m.Name)
	}
}
