package playbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
)

var update = flag.Bool("update", false, "rewrite testdata/*.err from the errors Parse returns")

func TestParseValid(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.yaml")
	require.NoError(t, err)
	pbs, err := Parse(testRegistry(t), "testdata/valid.yaml", data)
	require.NoError(t, err)
	require.Len(t, pbs, 2)

	sum := sha256.Sum256(data)
	rev := hex.EncodeToString(sum[:])[:12]

	clean := pbs[0]
	require.Equal(t, "clean-data-worker", clean.Name)
	require.Equal(t, "Free disk on a Spark worker.", clean.Description)
	require.Equal(t, `{selfhealing="true",jenkins_job=~"clean_.*"}`, clean.Matchers.String())
	require.Equal(t, alert.Resolved, clean.On)
	require.True(t, clean.DryRun)
	require.Equal(t, "testdata/valid.yaml", clean.Source)
	require.Equal(t, rev, clean.Revision)
	require.Len(t, rev, 12)
	require.Equal(t, Position{Line: 3, Column: 11}, clean.Pos)
	require.Len(t, clean.Steps, 2)

	cleanup := clean.Steps[0]
	require.Equal(t, "cleanup", cleanup.Name)
	require.Equal(t, "exec", cleanup.ActionID)
	require.Equal(t, 20*time.Minute, cleanup.Timeout)
	require.Equal(t, 2, cleanup.Retries)
	require.IsType(t, &testAction{}, cleanup.Action)
	params, ok := cleanup.Params.(*testParams)
	require.True(t, ok)
	require.Equal(t, "/tmp", params.Dir)
	require.Len(t, params.Command, 3)
	require.Equal(t, "{{ .Labels.instance }}", params.Command[2].String())

	report := clean.Steps[1]
	require.Equal(t, "report", report.Name)
	require.Equal(t, DefaultStepTimeout, report.Timeout)
	require.Zero(t, report.Retries)
	require.Equal(t, "/", report.Params.(*testParams).Dir, "defaults of the params struct are kept")

	db := pbs[1]
	require.Equal(t, "restart-db", db.Name)
	require.Empty(t, db.Description)
	require.Equal(t, alert.Firing, db.On, "on defaults to firing")
	require.False(t, db.DryRun)
	require.Equal(t, Position{Line: 24, Column: 11}, db.Pos)
	require.Len(t, db.Steps, 1)
}

func TestParseNoPlaybooks(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"comments only":  "# nothing here\n",
		"empty document": "---\n",
		"null list":      "playbooks:\n",
		"empty list":     "playbooks: []\n",
		"trailing ---":   "playbooks: []\n---\n",
	} {
		t.Run(name, func(t *testing.T) {
			pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(in))
			require.NoError(t, err)
			require.Empty(t, pbs)
		})
	}
}

// TestParseGolden checks files whose every error is listed, in order, in
// the .err file next to them. Run with -update to rewrite the .err files,
// then review the diff.
func TestParseGolden(t *testing.T) {
	for _, name := range []string{"multi"} {
		t.Run(name, func(t *testing.T) {
			src := "testdata/" + name + ".yaml"
			data, err := os.ReadFile(src)
			require.NoError(t, err)
			pbs, err := Parse(testRegistry(t), src, data)
			require.Error(t, err)
			require.Nil(t, pbs)
			golden := "testdata/" + name + ".err"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644))
			}
			want, rerr := os.ReadFile(golden)
			require.NoError(t, rerr)
			require.Equal(t, strings.TrimSuffix(string(want), "\n"), err.Error())
		})
	}
}

// TestParseTiming checks delay, repeat_after, verify and on_failure.
func TestParseTiming(t *testing.T) {
	const head = "playbooks:\n  - name: a\n    match: [x=\"y\"]\n    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]\n"
	for _, tc := range []struct {
		field string
		value string
		err   string // "" when accepted
	}{
		{"delay", "0s", ""},
		{"delay", "2m", ""},
		{"delay", "-1m", `pb.yaml:5:12: playbooks[0].delay: not a valid duration string: "-1m"`},
		{"delay", "soon", `pb.yaml:5:12: playbooks[0].delay: not a valid duration string: "soon"`},
		{"repeat_after", "0s", ""},
		{"repeat_after", "", ""},
		{"repeat_after", "1h", ""},
		{"on", "resolved\n    repeat_after: 1h", "pb.yaml:6:19: playbooks[0].repeat_after: applies to playbooks that act on firing alerts; a resolved alert does not go on resolving"},
		{"on", "resolved\n    delay: 1m", "pb.yaml:6:12: playbooks[0].delay: applies to playbooks that act on firing alerts; a resolved alert has nothing left to wait for"},
		{"repeat_after", "30s", "pb.yaml:5:19: playbooks[0].repeat_after: must be 0 (once per episode) or at least 1m, got 30s"},
		{"verify", "{}", `pb.yaml:5:13: playbooks[0].verify: missing required field "resolved_within"`},
		{"verify", "{resolved_within: 15m}", ""},
		{"verify", "{resolved_within: 0s}", "pb.yaml:5:31: playbooks[0].verify.resolved_within: must be greater than 0"},
		{"verify", "{resolved_within: 15m, within: 1m}", `pb.yaml:5:36: playbooks[0].verify: unknown field "within"`},
		{"on_failure", "[]", ""},
		{"on_failure", "[{name: page, action: exec, with: {command: [\"true\"]}}]", ""},
		{"on_failure", "[{name: page, action: exec}]", "pb.yaml:5:18: playbooks[0].on_failure[0].with: command: required"},
		{"on_failure", "false", `pb.yaml:5:17: playbooks[0].on_failure: expected a list, got "false"`},
	} {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			in := head + "    " + tc.field + ": " + tc.value + "\n"
			pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(in))
			if tc.err == "" {
				require.NoError(t, err)
				require.Len(t, pbs, 1)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}
}

func TestParseLimits(t *testing.T) {
	const head = "playbooks:\n  - name: a\n    match: [x=\"y\"]\n    steps: [{name: s, action: exec, with: {command: [\"true\"]}}]\n    limits: "
	for _, tc := range []struct {
		value string
		want  *Limits
		err   string
	}{
		{"{}", nil, ""},
		{"{key: '{{ .Labels.instance }}', max_runs: 3, per: 1h, cooldown: 15m, concurrency: 1}",
			&Limits{Key: actions.MustTemplate("{{ .Labels.instance }}"), MaxRuns: 3, Per: time.Hour, Cooldown: 15 * time.Minute, Concurrency: 1}, ""},
		{"{cooldown: 10m}", &Limits{Cooldown: 10 * time.Minute}, ""},
		{"{max_runs: 3}", nil, "pb.yaml:5:24: playbooks[0].limits.max_runs: needs per: the window it counts runs in, like per: 1h"},
		{"{per: 1h}", nil, "pb.yaml:5:19: playbooks[0].limits.per: needs max_runs: how many runs per 1h"},
		{"{key: x}", nil, "pb.yaml:5:13: playbooks[0].limits: set max_runs with per, cooldown or concurrency: a key alone limits nothing"},
		{"{max_runs: 0, per: 0s, cooldown: -1m, concurrency: 1.5, key: '{{ .Labels.x'}", nil,
			"pb.yaml:5:24: playbooks[0].limits.max_runs: must be at least 1, got 0\n" +
				"pb.yaml:5:32: playbooks[0].limits.per: must be greater than 0\n" +
				`pb.yaml:5:46: playbooks[0].limits.cooldown: not a valid duration string: "-1m"` + "\n" +
				`pb.yaml:5:64: playbooks[0].limits.concurrency: must be a whole number, got "1.5"` + "\n" +
				`pb.yaml:5:74: playbooks[0].limits.key: template "{{ .Labels.x": template: :1: unclosed action`},
		{"{max_runs: 3, per: 1h, burst: 2}", nil, `pb.yaml:5:36: playbooks[0].limits: unknown field "burst"`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(head+tc.value+"\n"))
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, pbs, 1)
			if tc.want == nil {
				require.Nil(t, pbs[0].Limits)
				return
			}
			require.Equal(t, tc.want.Key.String(), pbs[0].Limits.Key.String())
			got := *pbs[0].Limits
			got.Key, tc.want.Key = actions.Template{}, actions.Template{}
			require.Equal(t, *tc.want, got)
		})
	}
}
