package playbooks

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

func names(pbs []*Playbook) []string {
	out := make([]string, len(pbs))
	for i, pb := range pbs {
		out[i] = pb.Name
	}
	return out
}

func TestLoadFiles(t *testing.T) {
	set, err := LoadFiles(testRegistry(t), []string{"testdata/glob/*.yaml", "testdata/glob/b.yaml", "testdata/none/*.yaml"})
	require.NoError(t, err)
	require.Equal(t, 3, set.Len(), "b.yaml matched twice is loaded once; a glob matching nothing is fine")
	require.Equal(t, []string{"alpha", "mid", "zeta"}, names(set.All()))
	require.Equal(t, "testdata/glob/a.yaml", set.Get("zeta").Source)
	require.Equal(t, Position{Line: 2, Column: 11}, set.Get("zeta").Pos)
	require.Equal(t, "testdata/glob/b.yaml", set.Get("mid").Source)
	require.NotEqual(t, set.Get("zeta").Revision, set.Get("mid").Revision)
	require.Nil(t, set.Get("nope"))

	all := set.All()
	all[0] = nil
	require.Equal(t, "alpha", set.All()[0].Name, "All returns a copy")
}

func TestLoadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	pb := func(name string) string {
		return "  - name: " + name + "\n    match: [x=\"y\"]\n    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]\n"
	}
	a := write("a.yaml", "# a\n\nplaybooks:\n"+pb("x")+pb("y"))
	b := write("b.yaml", "playbooks:\n"+pb("z")+pb("x")+pb("y"))
	bad := write("c.yaml", "playbooks:\n  - name: q\n")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d.yaml"), 0o755))

	_, err := LoadFiles(testRegistry(t), []string{filepath.Join(dir, "*.yaml"), "[", a})
	require.Error(t, err)
	// Malformed globs come first, then the problems of each file in glob
	// order; the name clashes, found once every file is read, come last.
	want := `playbook files "[": syntax error in pattern` + "\n" +
		bad + `:2:5: playbooks[0]: missing required field "match"` + "\n" +
		bad + `:2:5: playbooks[0]: missing required field "steps"` + "\n" +
		"read playbook file: read " + filepath.Join(dir, "d.yaml") + ": is a directory\n" +
		`playbook "x" is defined twice: in ` + a + `:4:11 and in ` + b + ":5:11\n" +
		`playbook "y" is defined twice: in ` + a + `:7:11 and in ` + b + ":8:11"
	require.Equal(t, want, err.Error())

	set, err := LoadFiles(testRegistry(t), []string{a})
	require.NoError(t, err)
	require.Equal(t, []string{"x", "y"}, names(set.All()))
}

func TestNewSet(t *testing.T) {
	x1 := &Playbook{Name: "x", Source: "a.yaml", Pos: Position{Line: 3, Column: 11}}
	x2 := &Playbook{Name: "x", Source: "configmap/ns/pbs/b.yaml", Pos: Position{Line: 7, Column: 11}}
	x3 := &Playbook{Name: "x", Source: "built-in"}
	y := &Playbook{Name: "y", Source: "a.yaml"}
	for _, tc := range []struct {
		name  string
		in    []*Playbook
		names []string
		err   string
	}{
		{name: "empty", in: nil, names: []string{}},
		{name: "sorted", in: []*Playbook{y, x1}, names: []string{"x", "y"}},
		{
			name: "defined twice",
			in:   []*Playbook{x1, y, x2, x3},
			err: `playbook "x" is defined twice: in a.yaml:3:11 and in configmap/ns/pbs/b.yaml:7:11` + "\n" +
				`playbook "x" is defined twice: in a.yaml:3:11 and in built-in`,
		},
		{name: "nil", in: []*Playbook{x1, nil}, err: "playbook 1 is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := NewSet(tc.in)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				require.Nil(t, set)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.names, names(set.All()))
			require.Equal(t, len(tc.names), set.Len())
		})
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	require.Zero(t, s.Len())
	require.Nil(t, s.All())
	require.Nil(t, s.Get("x"))
	require.Nil(t, s.Match(alert.Alert{Status: alert.Firing}))
	require.Zero(t, (&Set{}).Len())
}

// matchSet holds three playbooks over the same labels, acting on firing or
// resolved alerts.
func matchSet(t *testing.T) *Set {
	t.Helper()
	const in = `playbooks:
  - name: clean-data-worker
    match: [selfhealing="true", jenkins_job="clean_data_worker"]
    steps: [{name: s, action: exec, with: {command: ["true"]}}]
  - name: any-selfhealing
    match: [selfhealing="true", instance=~"db-.*"]
    steps: [{name: s, action: exec, with: {command: ["true"]}}]
  - name: after-resolve
    on: resolved
    match: [selfhealing="true"]
    steps: [{name: s, action: exec, with: {command: ["true"]}}]
`
	pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(in))
	require.NoError(t, err)
	set, err := NewSet(pbs)
	require.NoError(t, err)
	return set
}

func TestMatchAndExplain(t *testing.T) {
	set := matchSet(t)
	firing := func(labels map[string]string) alert.Alert { return alert.Alert{Status: alert.Firing, Labels: labels} }
	for _, tc := range []struct {
		name  string
		alert alert.Alert
		match []string
		why   map[string]string // playbook → Explain's text
	}{
		{
			name:  "two match, in name order",
			alert: firing(map[string]string{"selfhealing": "true", "jenkins_job": "clean_data_worker", "instance": "db-1"}),
			match: []string{"any-selfhealing", "clean-data-worker"},
			why: map[string]string{
				"clean-data-worker": "acts on firing alerts and every matcher holds",
				"after-resolve":     "acts on resolved alerts; this alert is firing",
			},
		},
		{
			name:  "wrong and missing labels",
			alert: firing(map[string]string{"selfhealing": "true", "jenkins_job": "other"}),
			match: []string{},
			why: map[string]string{
				"clean-data-worker": `matcher jenkins_job="clean_data_worker" does not hold: label jenkins_job is "other"`,
				"any-selfhealing":   `matcher instance=~"db-.*" does not hold: label instance is missing`,
			},
		},
		{
			name:  "resolved",
			alert: alert.Alert{Status: alert.Resolved, Labels: map[string]string{"selfhealing": "true", "jenkins_job": "clean_data_worker"}},
			match: []string{"after-resolve"},
			why: map[string]string{
				"after-resolve":     "acts on resolved alerts and every matcher holds",
				"clean-data-worker": "acts on firing alerts; this alert is resolved",
				"any-selfhealing": `acts on firing alerts; this alert is resolved; ` +
					`matcher instance=~"db-.*" does not hold: label instance is missing`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.match, names(set.Match(tc.alert)))
			for _, pb := range set.All() {
				ok, why := pb.Explain(tc.alert)
				require.Equal(t, pb.Matches(tc.alert), ok, "Explain agrees with Matches for %s", pb.Name)
				if want, found := tc.why[pb.Name]; found {
					require.Equal(t, want, why, pb.Name)
				}
			}
		})
	}
}

func TestSetConcurrentUse(t *testing.T) {
	set := matchSet(t)
	a := alert.Alert{Status: alert.Firing, Labels: map[string]string{"selfhealing": "true", "instance": "db-2"}}
	var (
		wg  sync.WaitGroup
		bad atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if len(set.Match(a)) != 1 || len(set.All()) != 3 || set.Get("after-resolve") == nil {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, bad.Load())
}

// TestWantsLooksAtEveryStatus: an alert that only an on: resolved playbook
// matches is wanted while it fires, since its resolve will run something.
func TestWantsLooksAtEveryStatus(t *testing.T) {
	set := matchSet(t)
	a := alert.Alert{Status: alert.Firing, Labels: map[string]string{"selfhealing": "true"}}
	require.Empty(t, set.Match(a))
	require.True(t, set.Wants(a))
	require.False(t, set.Wants(alert.Alert{Status: alert.Firing, Labels: map[string]string{"selfhealing": "false"}}))
	var none *Set
	require.False(t, none.Wants(a))
}
