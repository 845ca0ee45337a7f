package promwal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
)

// target is the alert the tests act for.
func target() actions.Target {
	a := alert.Alert{
		Status:   alert.Firing,
		Labels:   map[string]string{"alertname": "PrometheusOOMLoop", "instance": "prom-1:9090", "data": "data"},
		StartsAt: time.Date(2025, 3, 1, 10, 40, 0, 0, time.UTC),
	}
	a.Fingerprint = alert.Fingerprint(a.Labels)
	return actions.NewTarget(a, "prometheus-oom", "drop-head", "run-7")
}

// newAction builds an action for the fake data dir data from defaults
// changed by set; the data dir's basename comes from the alert's labels.
func newAction(t *testing.T, data string, d Deps, set func(p *Params)) *Action {
	t.Helper()
	p := DefaultParams()
	p.DataDir = actions.MustTemplate(filepath.Dir(data) + "/{{ .Labels.data }}")
	p.QuarantineDir = actions.MustTemplate(filepath.Join(filepath.Dir(data), "quarantine"))
	p.MinWALBytes = 64 << 10
	if set != nil {
		set(p)
	}
	if d.Now == nil {
		d.Now = func() time.Time { return testNow }
	}
	a, err := New(p, d)
	require.NoError(t, err)
	return a
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(p *Params)
		want string
	}{
		{"ok", func(*Params) {}, ""},
		{"templated paths", func(p *Params) {
			p.DataDir = actions.MustTemplate("/var/lib/prometheus/{{ .Labels.dir }}")
			p.ReadyURL = actions.MustTemplate("http://{{ .Labels.instance }}/-/ready")
		}, ""},
		{"templated path without a literal folder", func(p *Params) { p.DataDir = actions.MustTemplate("{{ .Labels.dir }}") },
			`data_dir: "{{ .Labels.dir }}": a templated path must start with a literal absolute folder`},
		{"kubernetes parameter in host mode", func(p *Params) { p.StatefulSet = actions.MustTemplate("prometheus-main") }, "statefulset: only for mode kubernetes"},
		{"unknown mode", func(p *Params) { p.Mode = "docker" }, `mode: "docker" must be host or kubernetes`},
		{"no data dir", func(p *Params) { p.DataDir = actions.Template{} }, "data_dir: must be set"},
		{"no quarantine dir", func(p *Params) { p.QuarantineDir = actions.Template{} }, "quarantine_dir: must be set"},
		{"relative data dir", func(p *Params) { p.DataDir = actions.MustTemplate("data") }, `data_dir: "data" must be an absolute path`},
		{"relative quarantine dir", func(p *Params) { p.QuarantineDir = actions.MustTemplate("q") }, `quarantine_dir: "q" must be an absolute path`},
		{"bad ready url", func(p *Params) { p.ReadyURL = actions.MustTemplate("localhost:9090/-/ready") }, "ready_url: "},
		{"negative size", func(p *Params) { p.MinWALBytes = -1 }, "min_wal_bytes: must not be negative"},
		{"zero timeout", func(p *Params) { p.ReadyTimeout = 0 }, "ready_timeout: must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			p.DataDir = actions.MustTemplate("/var/lib/prometheus/data")
			p.QuarantineDir = actions.MustTemplate("/var/lib/prometheus/quarantine")
			tc.set(p)
			err := p.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestBytes(t *testing.T) {
	for in, want := range map[string]Bytes{
		"0": 0, "100": 100, "64MiB": 64 << 20, "64mib": 64 << 20, "64MB": 64 << 20, "1 GiB": 1 << 30,
		"512KiB": 512 << 10, "2TB": 2 << 40, "7B": 7,
	} {
		got, err := ParseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "10 apples", "99999999999TiB"} {
		_, err := ParseBytes(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "64MiB", Bytes(64<<20).String())
	require.Equal(t, "1536KiB", Bytes(1536<<10).String())
	require.Equal(t, "100", Bytes(100).String())
	require.Equal(t, "0", Bytes(0).String())
}

func TestSpecDecodesStepsStrictly(t *testing.T) {
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(Spec(Deps{})))
	build := func(src string) (*Params, error) {
		var n yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(src), &n))
		_, p, err := reg.Build("pb.yaml", "steps[0].with", ID, n.Content[0])
		if err != nil {
			return nil, err
		}
		return p.(*Params), nil
	}
	p, err := build("data_dir: /d\nquarantine_dir: /q\nmin_wal_bytes: 256MiB\nready_timeout: 3m\n")
	require.NoError(t, err)
	require.Equal(t, Bytes(256<<20), p.MinWALBytes)
	require.Equal(t, model.Duration(3*time.Minute), p.ReadyTimeout)
	require.Equal(t, ModeHost, p.Mode)

	p, err = build("data_dir: /d\nquarantine_dir: /q\nmin_wal_bytes: 1048576\n")
	require.NoError(t, err)
	require.Equal(t, Bytes(1<<20), p.MinWALBytes)

	_, err = build("data_dir: /d\nquarantine_dir: /q\nmin_wal_bytes: 1.5\n")
	require.ErrorContains(t, err, "must be a whole number")
	_, err = build("data_dir: /d\nquarantine_dir: /q\nmin_wal_bytes: lots\n")
	require.ErrorContains(t, err, `"lots" is not a size`)
	_, err = build("data_dir: /d\nquarantine_dir: /q\nmode: kubernetes\n")
	require.ErrorContains(t, err, "namespace: must be set in mode kubernetes; statefulset: must be set in mode kubernetes; data_dir: only for mode host; quarantine_dir: only for mode host")
	_, err = build("mode: kubernetes\nnamespace: monitoring\nstatefulset: prometheus-main\n")
	require.ErrorContains(t, err, "prometheus.wal_cleanup: mode kubernetes: kubernetes is not configured")
	_, err = build("data_dir: /d\nquarantine_dir: /q\nmin_wal_byte: 1\n")
	require.ErrorContains(t, err, `unknown field "min_wal_byte"`)
}

func TestSpecDocumentsEveryParam(t *testing.T) {
	docs := actions.Describe(Spec(Deps{}))
	require.Len(t, docs, 14)
	for _, d := range docs {
		require.NotEmpty(t, d.Doc, d.Name)
	}
	require.Equal(t, "min_wal_bytes", docs[3].Name)
	require.Equal(t, "64MiB", docs[3].Default)
	require.Equal(t, "10m", docs[6].Default)
	require.Equal(t, "prometheus-db", docs[10].Default)
	require.Equal(t, "selfheal-quarantine", docs[11].Default)

	// The examples are valid steps.
	var steps []struct {
		With yaml.Node `yaml:"with"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(example), &steps))
	require.Len(t, steps, 2)
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(Spec(kubeDeps(fake.NewClientset()))))
	for i := range steps {
		_, _, err := reg.Build("example", "with", ID, &steps[i].With)
		require.NoError(t, err)
	}
}

// planFiles extracts the "file <path> <bytes>" lines of a plan.
func planFiles(t *testing.T, p actions.Plan) []File {
	t.Helper()
	var out []File
	for _, d := range p.Details {
		if rest, ok := strings.CutPrefix(d, "file "); ok {
			path, n, _ := strings.Cut(rest, " ")
			b, err := strconv.ParseInt(n, 10, 64)
			require.NoError(t, err, d)
			out = append(out, File{Path: path, Bytes: b})
		}
	}
	return out
}

func TestPlanListsEveryFileWithoutSideEffects(t *testing.T) {
	data := fakeTSDB(t)
	a := newAction(t, data, Deps{}, nil)
	before := snapshot(t, filepath.Dir(data))

	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, before, snapshot(t, filepath.Dir(data)), "plan changes nothing, not even the quarantine dir")

	target := filepath.Join(filepath.Dir(data), "quarantine", "data-20250301T110000Z")
	require.Equal(t, fmt.Sprintf("quarantine chunk_snapshot.000013.0000004096, chunks_head, wal, wbl of %s (10 files, 114172 bytes) into %s", data, target), plan.Summary)
	require.Equal(t, headFiles, planFiles(t, plan))
	require.Equal(t, []actions.Param{
		{Name: "mode", Value: "host"},
		{Name: "data_dir", Value: data},
		{Name: "quarantine_dir", Value: filepath.Join(filepath.Dir(data), "quarantine")},
		{Name: "min_wal_bytes", Value: "65536 (64KiB)"},
	}, plan.Params)
	text := strings.Join(plan.Details, "\n")
	for _, want := range []string{
		"step 1: take flock(LOCK_EX|LOCK_NB) on " + data + "/lock",
		"check lock: ok: " + data + "/lock exists but no process holds its flock (a killed Prometheus leaves it behind); probed with a non-blocking flock, released at once",
		"check wal_size: ok: wal/ holds 106304 bytes",
		"check same_filesystem: ok",
		"check open_files: ok",
		"loss window: samples after the newest block's maxTime 2025-03-01T08:00:00Z",
		"wal: 106304 bytes (103.8 KiB), 5 segments 00000010..00000014, checkpoint.00000009, last written 2025-03-01T10:30:00Z",
		"blocks (kept): 2, newest " + newerBlock + " up to 2025-03-01T08:00:00Z",
		"left alone: lock, queries.active, 01HQZ0000000000000000000C3.tmp-for-creation, chunk_snapshot.000014.0000000001.tmp",
		"unknown entries, left alone: notes.txt",
		"target: " + target + " (<quarantine_dir>/<basename(data_dir)>-<UTC time 20060102T150405Z>, created at run time)",
		"move wal/ -> " + target + "/wal (6 files, 106304 bytes)",
		"file wal/00000014 0",
		"total: 10 files, 114172 bytes (111.5 KiB)",
		"restore (shown, never run; only before Prometheus starts again): (cd -- " + data,
	} {
		require.Contains(t, text, want)
	}
}

func TestPlanEqualsWhatRunMoves(t *testing.T) {
	data := fakeTSDB(t)
	a := newAction(t, data, Deps{}, nil)
	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)

	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	m := readManifest(t, res.Details["manifest_path"])
	require.Equal(t, planFiles(t, plan), m.Files)
	require.Contains(t, plan.Summary, res.Details["quarantine_path"])
	require.Contains(t, plan.Details, "restore (shown, never run; only before Prometheus starts again): "+res.Details["restore_command"])
}

func readManifest(t *testing.T, path string) Manifest {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var m Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func TestPlanRefusals(t *testing.T) {
	t.Run("lock held, no unit", func(t *testing.T) {
		data := fakeTSDB(t)
		holdLock(t, data)
		plan, err := newAction(t, data, Deps{}, nil).Plan(context.Background(), target())
		require.NoError(t, err)
		require.Equal(t, "refuse to quarantine the head of "+data+": lock: "+data+"/lock is locked (flock) by another process: a Prometheus is running on this dir", plan.Summary)
		require.Contains(t, plan.Details, "check lock: FAIL: "+data+"/lock is locked (flock) by another process: a Prometheus is running on this dir")
		require.Equal(t, headFiles, planFiles(t, plan), "a refusing plan still lists what would move")
	})
	t.Run("lock held, the unit is stopped first", func(t *testing.T) {
		data := fakeTSDB(t)
		holdLock(t, data)
		a := newAction(t, data, Deps{Systemctl: "/bin/systemctl"}, func(p *Params) { p.SystemdUnit = actions.MustTemplate("prometheus.service") })
		plan, err := a.Plan(context.Background(), target())
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(plan.Summary, "stop prometheus.service, quarantine chunk_snapshot"), plan.Summary)
		require.True(t, strings.HasSuffix(plan.Summary, ", start prometheus.service"), plan.Summary)
		require.Contains(t, plan.Details, "step 1: /bin/systemctl stop prometheus.service")
		require.Contains(t, plan.Details, "step 4: /bin/systemctl start prometheus.service, also when an earlier step failed")
		require.Contains(t, strings.Join(plan.Details, "\n"), "check lock: ok: now: "+data+"/lock is locked (flock) by another process: a Prometheus is running on this dir; Run stops prometheus.service first and checks again")
	})
	t.Run("small WAL", func(t *testing.T) {
		data := fakeTSDB(t)
		plan, err := newAction(t, data, Deps{}, func(p *Params) { p.MinWALBytes = 1 << 30 }).Plan(context.Background(), target())
		require.NoError(t, err)
		require.Contains(t, plan.Summary, "wal_size: wal/ holds 106304 bytes (103.8 KiB), below the minimum 1073741824 (1GiB)")
	})
	t.Run("render error", func(t *testing.T) {
		data := fakeTSDB(t)
		a := newAction(t, data, Deps{}, func(p *Params) { p.DataDir = actions.MustTemplate("/x/{{ .Labels.nope }}") })
		_, err := a.Plan(context.Background(), target())
		require.ErrorContains(t, err, "prometheus.wal_cleanup: data_dir: render")
	})
	t.Run("rendered path outside its folder", func(t *testing.T) {
		data := fakeTSDB(t)
		a := newAction(t, data, Deps{}, func(p *Params) { p.DataDir = actions.MustTemplate("/srv/{{ .Labels.data }}/../..") })
		_, err := a.Plan(context.Background(), target())
		require.ErrorContains(t, err, `data_dir: "/srv/data/../.." leaves /srv, the folder the playbook names`)
	})
	t.Run("missing data dir", func(t *testing.T) {
		data := fakeTSDB(t)
		a := newAction(t, data, Deps{}, func(p *Params) { p.DataDir = actions.MustTemplate("/nonexistent/prometheus") })
		_, err := a.Plan(context.Background(), target())
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// fakeSystemctl writes a systemctl stand-in that appends "<verb> <unit>
// wal=<present|gone>" to a log and exits with the code in <dir>/<verb>.rc
// if that file exists. It returns the script and reads the log.
func fakeSystemctl(t *testing.T, data string) (string, func() []string, func(verb string, rc int)) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "systemctl")
	body := fmt.Sprintf(`#!/bin/sh
if [ -e %[1]q/wal ]; then w=present; else w=gone; fi
echo "$1 $2 wal=$w" >> %[2]q/calls
if [ -f %[2]q/"$1".rc ]; then echo "Job for $2 failed." >&2; exit $(cat %[2]q/"$1".rc); fi
`, data, dir)
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	calls := func() []string {
		raw, err := os.ReadFile(filepath.Join(dir, "calls"))
		if os.IsNotExist(err) {
			return nil
		}
		require.NoError(t, err)
		return strings.Split(strings.TrimSpace(string(raw)), "\n")
	}
	failWith := func(verb string, rc int) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, verb+".rc"), []byte(strconv.Itoa(rc)), 0o644))
	}
	return script, calls, failWith
}

func withUnit(p *Params) { p.SystemdUnit = actions.MustTemplate("prometheus.service") }

func TestRunStopsQuarantinesStarts(t *testing.T) {
	data := fakeTSDB(t)
	before := snapshot(t, data)
	systemctl, calls, _ := fakeSystemctl(t, data)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) < 3 {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Prometheus Server is Ready.")
	}))
	defer srv.Close()
	a := newAction(t, data, Deps{Systemctl: systemctl, ReadyInterval: 10 * time.Millisecond}, func(p *Params) {
		withUnit(p)
		p.ReadyURL = actions.MustTemplate(srv.URL + "/-/ready")
	})

	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, []string{"stop prometheus.service wal=present", "start prometheus.service wal=gone"}, calls())
	require.Equal(t, without(before, headEntries...), snapshot(t, data))

	q := filepath.Join(filepath.Dir(data), "quarantine", "data-20250301T110000Z")
	require.Equal(t, "moved chunk_snapshot.000013.0000004096, chunks_head, wal, wbl of "+data+" (10 files, 111.5 KiB) into "+q, res.Summary)
	m := readManifest(t, filepath.Join(q, ManifestName))
	require.Equal(t, q, res.Details["quarantine_path"])
	require.Equal(t, filepath.Join(q, ManifestName), res.Details["manifest_path"])
	require.Equal(t, "114172", res.Details["bytes_moved"])
	require.Equal(t, "10", res.Details["files_moved"])
	require.Equal(t, "chunk_snapshot.000013.0000004096, chunks_head, wal, wbl", res.Details["entries_moved"])
	require.Equal(t, m.LossWindow.Description, res.Details["loss_window"])
	require.Equal(t, m.RestoreCommand, res.Details["restore_command"])
	require.Equal(t, "prometheus.service stopped and started", res.Details["systemd_unit"])
	require.Contains(t, res.Details["ready"], srv.URL+"/-/ready answered 200 after ")
	require.EqualValues(t, 3, hits.Load())
	require.Contains(t, m.Evidence, `selfheal playbook "prometheus-oom" step "drop-head" run run-7`)
	require.True(t, hasPrefix(m.Evidence, `alert PrometheusOOMLoop (firing) episode `), "%v", m.Evidence)
}

func TestRunStartsTheUnitAgainWhateverHappens(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set       func(p *Params)
		prepare   func(t *testing.T, data string, fail func(string, int), ctx *context.Context)
		calls     []string
		errs      []string
		moved     bool
		isRefused bool
	}{
		{
			name:  "quarantine refused",
			set:   func(p *Params) { p.MinWALBytes = 1 << 30 },
			calls: []string{"stop prometheus.service wal=present", "start prometheus.service wal=present"},
			errs:  []string{"wal_size: wal/ holds 106304 bytes"}, isRefused: true,
		},
		{
			name:    "lock still held after stop",
			prepare: func(t *testing.T, data string, _ func(string, int), _ *context.Context) { holdLock(t, data) },
			calls:   []string{"stop prometheus.service wal=present", "start prometheus.service wal=present"},
			errs:    []string{"is locked (flock) by another process"}, isRefused: true,
		},
		{
			name:    "stop fails",
			prepare: func(_ *testing.T, _ string, fail func(string, int), _ *context.Context) { fail("stop", 1) },
			calls:   []string{"stop prometheus.service wal=present", "start prometheus.service wal=present"},
			errs:    []string{"stop prometheus.service: exit status 1: Job for prometheus.service failed."},
		},
		{
			name:    "start fails",
			prepare: func(_ *testing.T, _ string, fail func(string, int), _ *context.Context) { fail("start", 5) },
			calls:   []string{"stop prometheus.service wal=present", "start prometheus.service wal=gone"},
			errs:    []string{"start prometheus.service: exit status 5", "(the unit is left stopped)"},
			moved:   true,
		},
		{
			name: "refused and start fails",
			set:  func(p *Params) { p.MinWALBytes = 1 << 30 },
			prepare: func(_ *testing.T, _ string, fail func(string, int), _ *context.Context) {
				fail("start", 5)
			},
			calls: []string{"stop prometheus.service wal=present", "start prometheus.service wal=present"},
			errs:  []string{"wal_size: wal/ holds", "start prometheus.service: exit status 5"}, isRefused: true,
		},
		{
			name: "run cancelled",
			prepare: func(_ *testing.T, _ string, _ func(string, int), ctx *context.Context) {
				c, cancel := context.WithCancel(context.Background())
				cancel()
				*ctx = c
			},
			// systemctl stop cannot even start under a cancelled context;
			// start still runs with a context of its own.
			calls: []string{"start prometheus.service wal=present"},
			errs:  []string{"context canceled"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := fakeTSDB(t)
			before := snapshot(t, data)
			systemctl, calls, fail := fakeSystemctl(t, data)
			ctx := context.Background()
			if tc.prepare != nil {
				tc.prepare(t, data, fail, &ctx)
			}
			a := newAction(t, data, Deps{Systemctl: systemctl}, func(p *Params) {
				withUnit(p)
				if tc.set != nil {
					tc.set(p)
				}
			})
			res, err := a.Run(ctx, target())
			require.Error(t, err)
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
			require.Equal(t, tc.isRefused, isRefused(err))
			require.False(t, actions.IsRetryable(err))
			require.Equal(t, tc.calls, calls())
			if tc.moved {
				require.NotEmpty(t, res.Details["quarantine_path"], "the result still tells where the head went")
				require.Equal(t, without(before, headEntries...), snapshot(t, data))
			} else {
				require.Equal(t, before, snapshot(t, data))
			}
		})
	}
}

func isRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}

func TestRunReadyTimeout(t *testing.T) {
	data := fakeTSDB(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	a := newAction(t, data, Deps{ReadyInterval: 10 * time.Millisecond}, func(p *Params) {
		p.ReadyURL = actions.MustTemplate(srv.URL + "/-/ready")
		p.ReadyTimeout = model.Duration(time.Second) // long enough to get answers on a loaded machine
	})
	res, err := a.Run(context.Background(), target())
	require.ErrorContains(t, err, "head quarantined into ")
	require.ErrorContains(t, err, "/-/ready not ready after ")
	require.ErrorContains(t, err, "(last: status 503 Service Unavailable)")
	require.ErrorContains(t, err, "raise its memory")
	require.NotEmpty(t, res.Details["restore_command"])
	require.NoDirExists(t, filepath.Join(data, "wal"))
}
