package promwal

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/selfheal/selfheal/actions"
)

// withLabel is target() with the label x set to v.
func withLabel(v string) actions.Target {
	t := target()
	labels := map[string]string{"x": v}
	for k, l := range t.Labels {
		labels[k] = l
	}
	t.Labels = labels
	return t
}

// TestTemplatedPathsNeedALiteralFolder: a templated data_dir or
// quarantine_dir without a literal absolute folder before its first
// template is a load error at its position.
func TestTemplatedPathsNeedALiteralFolder(t *testing.T) {
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(Spec(Deps{})))
	build := func(src string) error {
		var n yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(src), &n))
		_, _, err := reg.Build("pb.yaml", "steps[0].with", ID, n.Content[0])
		return err
	}
	const rule = `: a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path`
	require.EqualError(t, build("data_dir: '{{ .Labels.dir }}'\nquarantine_dir: /q"),
		`pb.yaml:1:11: steps[0].with.data_dir: "{{ .Labels.dir }}"`+rule)
	require.EqualError(t, build("data_dir: /d\nquarantine_dir: 'q/{{ .Labels.dir }}'"),
		`pb.yaml:2:17: steps[0].with.quarantine_dir: "q/{{ .Labels.dir }}"`+rule)
	require.NoError(t, build("data_dir: '/var/lib/prometheus/{{ .Labels.dir }}'\nquarantine_dir: '/var/lib/quarantine/{{ .Labels.dir }}'"))
}

// TestHostileLabelsCannotLeaveTheDataFolder: a label that walks out of the
// literal folder of data_dir is refused by Plan and Run, and the TSDB it
// points at is left as it was.
func TestHostileLabelsCannotLeaveTheDataFolder(t *testing.T) {
	victim := fakeTSDB(t) // <tmp>/prometheus/data
	before := snapshot(t, victim)
	root := filepath.Dir(victim)
	require.NoError(t, os.Mkdir(filepath.Join(root, "proms"), 0o755))
	a := newAction(t, victim, Deps{}, func(p *Params) {
		p.DataDir = actions.MustTemplate(root + "/proms/{{ .Labels.x }}")
	})
	for _, tc := range []struct{ x, wantErr string }{
		{"../data", `prometheus.wal_cleanup: data_dir: "` + root + `/proms/../data" leaves ` + root + `/proms, the folder the playbook names`},
		{"../../prometheus/data", `prometheus.wal_cleanup: data_dir: "` + root + `/proms/../../prometheus/data" leaves ` + root + `/proms, the folder the playbook names`},
		{"", `prometheus.wal_cleanup: data_dir: "` + root + `/proms/" leaves ` + root + `/proms, the folder the playbook names`},
		{"a\x00", `prometheus.wal_cleanup: data_dir: "` + root + `/proms/a\x00" contains a NUL or another control character`},
		{"a\nb", `prometheus.wal_cleanup: data_dir: "` + root + `/proms/a\nb" contains a NUL or another control character`},
	} {
		t.Run(tc.x, func(t *testing.T) {
			_, err := a.Run(context.Background(), withLabel(tc.x))
			require.Equal(t, before, snapshot(t, victim), "the victim's WAL was touched")
			require.EqualError(t, err, tc.wantErr)
			require.False(t, actions.IsRetryable(err))
			_, err = a.Plan(context.Background(), withLabel(tc.x))
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

// TestHostileLabelsInUnitAndReadyURL: a unit name and a readiness URL a
// label fills in are checked before anything runs.
func TestHostileLabelsInUnitAndReadyURL(t *testing.T) {
	data := fakeTSDB(t)
	for _, tc := range []struct {
		name    string
		set     func(p *Params)
		x       string
		wantErr string
	}{
		{"unit with a semicolon", func(p *Params) { p.SystemdUnit = actions.MustTemplate("prometheus@{{ .Labels.x }}.service") },
			"a; touch PWNED", `prometheus.wal_cleanup: systemd_unit: "prometheus@a; touch PWNED.service" is not a unit name`},
		{"unit that is an option", func(p *Params) { p.SystemdUnit = actions.MustTemplate("{{ .Labels.x }}") },
			"--all", `prometheus.wal_cleanup: systemd_unit: "--all" is not a unit name`},
		{"unit with NUL", func(p *Params) { p.SystemdUnit = actions.MustTemplate("prometheus@{{ .Labels.x }}.service") },
			"a\x00", `prometheus.wal_cleanup: systemd_unit: "prometheus@a\x00.service" is not a unit name`},
		{"user and password from a label", func(p *Params) { p.ReadyURL = actions.MustTemplate("http://{{ .Labels.x }}:9090/-/ready") },
			"u:p@evil.example", `prometheus.wal_cleanup: ready_url: "http://u:xxxxx@evil.example:9090/-/ready": a label may not add a user and password to the URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAction(t, data, Deps{Systemctl: "/bin/false"}, tc.set)
			_, err := a.Plan(context.Background(), withLabel(tc.x))
			require.EqualError(t, err, tc.wantErr)
		})
	}
}
