package playbooks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// benchSet is 100 playbooks, each on its own alertname with two more
// matchers, as a large team's catalog looks; a few match on labels only.
func benchSet(b testing.TB) *Set {
	b.Helper()
	var src strings.Builder
	src.WriteString("playbooks:\n")
	for i := range 100 {
		if i%10 == 9 { // no alertname: matched on other labels
			fmt.Fprintf(&src, "  - name: p%03d\n    match: ['team=\"t%d\"', 'severity=~\"high|critical\"']\n    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]\n", i, i)
			continue
		}
		fmt.Fprintf(&src, "  - name: p%03d\n    match: ['alertname=\"Alert%03d\"', 'selfhealing=\"true\"', 'instance=~\"worker-.*\"']\n    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]\n", i, i)
	}
	pbs, err := Parse(testRegistry(b), "bench.yaml", []byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	set, err := NewSet(pbs)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

func benchAlert(name string) alert.Alert {
	labels := map[string]string{
		"alertname": name, "instance": "worker-01:9100", "job": "clean_data_worker", "jenkins_job": "clean_data_worker",
		"selfhealing": "true", "severity": "high", "team": "data", "cluster": "eu-1",
	}
	return alert.Alert{Status: alert.Firing, Labels: labels, Fingerprint: alert.Fingerprint(labels)}
}

// BenchmarkMatch matches an 8-label alert against 100 playbooks: one that
// matches one playbook, and one that matches none.
func BenchmarkMatch(b *testing.B) {
	set := benchSet(b)
	for _, tc := range []struct{ name, alertname string }{{"one-match", "Alert042"}, {"no-match", "Unrelated"}} {
		b.Run(tc.name, func(b *testing.B) {
			a := benchAlert(tc.alertname)
			b.ReportAllocs()
			for b.Loop() {
				if got := set.Match(a); tc.name == "one-match" && len(got) != 1 {
					b.Fatalf("matched %d", len(got))
				}
			}
		})
	}
}

// TestMatchIndexAgreesWithEveryMatcher: the alertname index picks exactly
// the playbooks that checking each one would, in name order.
func TestMatchIndexAgreesWithEveryMatcher(t *testing.T) {
	set := benchSet(t)
	for _, name := range []string{"Alert000", "Alert042", "Alert099", "Alert009", "Unrelated", ""} {
		for _, team := range []string{"data", "t9", "t19"} {
			a := benchAlert(name)
			a.Labels["team"] = team
			var want []*Playbook
			wants := false
			for _, pb := range set.All() {
				if pb.matches(a.Status, a.LabelSet()) {
					want = append(want, pb)
				}
				wants = wants || pb.Matchers.Matches(a.LabelSet())
			}
			require.Equal(t, want, set.Match(a), "%s %s", name, team)
			require.Equal(t, wants, set.Wants(a), "Wants %s %s", name, team)
			resolved := a
			resolved.Status = alert.Resolved
			require.Equal(t, wants, set.Wants(resolved), "Wants ignores the status: %s %s", name, team)
		}
	}
}
