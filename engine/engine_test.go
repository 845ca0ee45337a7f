package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

// recorder is a test action that records every call and fails as told.
type recorder struct {
	mu    sync.Mutex
	calls []actions.Target
	plans int
	// fail returns the error of call n (0-based), nil for success.
	fail func(n int) error
	// block, if set, makes Run wait for it or ctx.
	block chan struct{}
}

type recParams struct {
	Note string `yaml:"note"`
}

func (recParams) Validate() error { return nil }

func (r *recorder) Plan(context.Context, actions.Target) (actions.Plan, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plans++
	return actions.Plan{Summary: "record the call"}, nil
}

func (r *recorder) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	r.mu.Lock()
	n := len(r.calls)
	r.calls = append(r.calls, t)
	fail, block := r.fail, r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return actions.Result{}, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(n); err != nil {
			return actions.Result{}, err
		}
	}
	return actions.Result{Summary: "recorded"}, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

type fixture struct {
	rec   *recorder
	log   *ha.Log
	inbox *receiver.Inbox
	eng   *engine.Engine
	reg   *prometheus.Registry
	stop  func()
	done  <-chan error // Run's result
}

// newFixture runs an engine over a real inbox and execution log in dir,
// with the playbooks in yaml using the "record" action.
func newFixture(t *testing.T, dir, yaml string, opts engine.Options) *fixture {
	t.Helper()
	return newFixtureWith(t, dir, yaml, opts, nil)
}

// newFixtureWith is newFixture with the engine recording through
// wrap(log) instead of the log itself, when wrap is not nil.
func newFixtureWith(t *testing.T, dir, yaml string, opts engine.Options, wrap func(*ha.Log) engine.Log) *fixture {
	t.Helper()
	return newFixtureRec(t, dir, yaml, opts, &recorder{}, wrap)
}

// recording returns a registry whose one action, "record", is rec.
func recording(t *testing.T, rec *recorder) *actions.Registry {
	t.Helper()
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(actions.Typed("record", "records calls", "",
		func() *recParams { return &recParams{} },
		func(*recParams) (actions.Action, error) { return rec, nil })))
	return reg
}

// newFixtureRec is newFixtureWith with the "record" action being rec.
func newFixtureRec(t *testing.T, dir, yaml string, opts engine.Options, rec *recorder, wrap func(*ha.Log) engine.Log) *fixture {
	t.Helper()
	return newFixtureActions(t, dir, yaml, opts, recording(t, rec), rec, wrap)
}

// newFixtureActions is newFixtureRec with the actions of reg.
func newFixtureActions(t *testing.T, dir, yaml string, opts engine.Options, reg *actions.Registry, rec *recorder, wrap func(*ha.Log) engine.Log) *fixture {
	t.Helper()
	f := &fixture{rec: rec, reg: prometheus.NewPedanticRegistry()}
	pbs, err := playbooks.Parse(reg, "test.yaml", []byte(yaml))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	f.log, err = ha.Open(dir, ha.Options{Node: "n1"})
	require.NoError(t, err)
	f.inbox, err = receiver.OpenInbox(dir, 1000)
	require.NoError(t, err)
	opts.Registerer = f.reg
	opts.RetryBackoff = time.Millisecond
	var log engine.Log = f.log
	if wrap != nil {
		log = wrap(f.log)
	}
	f.eng = engine.New(f.inbox, log, opts)
	f.eng.SetPlaybooks(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f.done = done
	go func() { done <- f.eng.Run(ctx) }()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, f.inbox.Close())
			require.NoError(t, f.log.Close())
		})
	}
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) deliver(t *testing.T, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		data, err := os.ReadFile(filepath.Join("..", "receiver", "testdata", "alertmanager", p+".json"))
		require.NoError(t, err)
		n, err := receiver.Decode(bytes.NewReader(data))
		require.NoError(t, err)
		_, err = f.inbox.Put(context.Background(), alert.Batch{Alerts: n.Alerts})
		require.NoError(t, err)
	}
}

// settle waits until the inbox is drained and no run is unfinished. The
// order matters: a batch is acknowledged only once its claims are on disk,
// so once the depth reads 0 every run is in the log, and an empty
// Unfinished read after that means they all ended. Read the other way
// round, a batch claimed between the two reads looks settled.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		if f.inbox.Depth() != 0 {
			return false
		}
		un, err := f.log.Unfinished()
		return err == nil && len(un) == 0
	}, 10*time.Second, 5*time.Millisecond)
}

// gauge returns the value of the unlabelled gauge name.
func (f *fixture) gauge(name string) float64 {
	families, err := f.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, fam := range families {
		if fam.GetName() == name {
			return fam.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func (f *fixture) episodes(kind ha.Observation) float64 {
	families, err := f.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, fam := range families {
		if fam.GetName() != "selfheal_engine_episodes_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if m.GetLabel()[0].GetValue() == string(kind) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

const firingAndResolved = `playbooks:
  - name: on-fire
    match: ['selfhealing="true"']
    steps: [{name: s, action: record}]
  - name: on-resolve
    match: ['selfhealing="true"']
    on: resolved
    steps: [{name: s, action: record}]
`

// TestRealSequencesRunOncePerEpisode feeds captured Alertmanager payloads
// in the order they arrived and counts runs per episode.
func TestRealSequencesRunOncePerEpisode(t *testing.T) {
	cases := []struct {
		name          string
		payloads      []string
		runs          int
		new, dup, end float64
		stale         float64
	}{
		{"repeat is a duplicate", []string{"single-firing", "repeat"}, 1, 1, 1, 0, 0},
		{"HA copies are duplicates", []string{"ha-dup-a", "ha-dup-b"}, 1, 1, 1, 0, 0},
		{"resolve then re-fire", []string{"single-firing", "repeat", "resolved", "refire-same-fingerprint"}, 3, 2, 1, 1, 0},
		{"stale firing after resolved", []string{"single-firing", "resolved", "repeat"}, 2, 1, 0, 1, 1},
		{"multi alert group", []string{"multi-firing", "multi-partial-resolved", "multi-after-partial-repeat", "multi-all-resolved"}, 10, 5, 6, 5, 0},
		{"resolved twice", []string{"ha-firing-b", "ha-resolved-b", "ha-resolved-b"}, 2, 1, 1, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, t.TempDir(), firingAndResolved, engine.Options{})
			f.deliver(t, c.payloads...)
			f.settle(t)
			require.Equal(t, c.runs, f.rec.count(), "runs")
			require.Equal(t, c.new, f.episodes(ha.New), "new")
			require.Equal(t, c.dup, f.episodes(ha.Duplicate), "duplicate")
			require.Equal(t, c.end, f.episodes(ha.Ended), "resolved")
			require.Equal(t, c.stale, f.episodes(ha.Stale), "stale")
		})
	}
}

func TestResolvedStartsNothingForFiringPlaybook(t *testing.T) {
	f := newFixture(t, t.TempDir(), `playbooks:
  - name: on-fire
    match: ['selfhealing="true"']
    steps: [{name: s, action: record}]
`, engine.Options{})
	f.deliver(t, "resolved", "ha-resolved-b")
	f.settle(t)
	require.Zero(t, f.rec.count())
}

func TestRestartDoesNotRunAgain(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir, firingAndResolved, engine.Options{})
	f.deliver(t, "single-firing")
	f.settle(t)
	require.Equal(t, 1, f.rec.count())
	f.stop()

	f = newFixture(t, dir, firingAndResolved, engine.Options{})
	f.deliver(t, "repeat", "single-firing")
	f.settle(t)
	require.Zero(t, f.rec.count(), "the episode ran before the restart")
}

func TestStepRetriesOnlyRetryableErrors(t *testing.T) {
	yaml := `playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps: [{name: s, action: record, retries: 2}]
`
	cases := []struct {
		name  string
		fail  func(int) error
		calls int
		state ha.State
	}{
		{"retryable then success", func(n int) error {
			if n < 2 {
				return actions.Retryablef("503 from upstream")
			}
			return nil
		}, 3, ha.Succeeded},
		{"retryable every time", func(int) error { return actions.Retryablef("503") }, 3, ha.Failed},
		{"permanent", func(int) error { return errors.New("404 job not found") }, 1, ha.Failed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, t.TempDir(), yaml, engine.Options{})
			f.rec.fail = c.fail
			f.deliver(t, "single-firing")
			f.settle(t)
			require.Equal(t, c.calls, f.rec.count())
			recs, err := f.log.List(0)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			require.Equal(t, c.state, recs[0].State)
			require.Equal(t, c.calls, recs[0].Steps[0].Attempts)
		})
	}
}

func TestStepTimeout(t *testing.T) {
	f := newFixture(t, t.TempDir(), `playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps: [{name: s, action: record, timeout: 50ms}]
`, engine.Options{})
	f.rec.block = make(chan struct{}) // never closed
	f.deliver(t, "single-firing")
	f.settle(t)
	recs, err := f.log.List(0)
	require.NoError(t, err)
	require.Equal(t, ha.Failed, recs[0].State)
	require.Contains(t, recs[0].Steps[0].Error, "timed out after 50ms")
}

func TestDryRunRecordsPlanAndRunsNothing(t *testing.T) {
	for _, c := range []struct {
		name   string
		global bool
		yaml   string
	}{
		{"global", true, firingAndResolved},
		{"playbook", false, `playbooks:
  - name: p
    match: ['selfhealing="true"']
    dry_run: true
    steps: [{name: s, action: record}]
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, t.TempDir(), c.yaml, engine.Options{DryRun: c.global})
			f.deliver(t, "single-firing", "repeat")
			f.settle(t)
			require.Zero(t, f.rec.count())
			require.Equal(t, 1, f.rec.plans)
			recs, err := f.log.List(0)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			require.Equal(t, ha.Shadow, recs[0].State)
			require.True(t, recs[0].DryRun)
			require.Equal(t, "would record the call", recs[0].Steps[0].Summary)
		})
	}
}

// TestResumeAfterCrash writes what a killed process leaves behind, a
// claimed run and a running one, and starts an engine on it.
func TestResumeAfterCrash(t *testing.T) {
	for _, node := range []string{"n1", "selfheal-7d9f8-abcde"} {
		t.Run("previous node "+node, func(t *testing.T) { testResumeAfterCrash(t, node) })
	}
}

// testResumeAfterCrash leaves the records under node; the engine restarts
// as n1. A Deployment pod gets a new hostname at every restart, so the
// store's records belong to whoever opens it, whatever name wrote them.
func testResumeAfterCrash(t *testing.T, node string) {
	dir := t.TempDir()
	log, err := ha.Open(dir, ha.Options{Node: node})
	require.NoError(t, err)
	mk := func(name string, state ha.State) {
		labels := map[string]string{"alertname": name, "selfhealing": "true"}
		a := alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: time.Unix(10, 0).UTC(), Fingerprint: alert.Fingerprint(labels)}
		rec, _, err := log.Claim(context.Background(), ha.Record{ID: ha.RunID("p", a.Episode()), Playbook: "p", Episode: a.Episode(), Alert: a})
		require.NoError(t, err)
		if state != ha.Claimed {
			rec.State = state
			require.NoError(t, log.Update(rec))
		}
	}
	mk("claimed", ha.Claimed)
	mk("running", ha.Running)
	require.NoError(t, log.Close())

	f := newFixture(t, dir, `playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps: [{name: s, action: record}]
`, engine.Options{})
	f.settle(t)
	require.Equal(t, 1, f.rec.count(), "only the claimed run starts")
	require.Equal(t, "claimed", f.rec.calls[0].Labels["alertname"])
	recs, err := f.log.List(0)
	require.NoError(t, err)
	states := map[string]ha.Record{}
	for _, r := range recs {
		states[r.Alert.Labels["alertname"]] = r
	}
	require.Equal(t, ha.Succeeded, states["claimed"].State)
	require.Equal(t, "n1", states["claimed"].Node, "the node that resumed the run ran it")
	require.Equal(t, ha.Failed, states["running"].State)
	require.Contains(t, states["running"].Reason, "interrupted")
	un, err := f.log.Unfinished()
	require.NoError(t, err)
	require.Empty(t, un, "nothing stranded")
}

func TestRunsInFlightKeepTheirPlaybookVersion(t *testing.T) {
	f := newFixture(t, t.TempDir(), `playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps: [{name: first, action: record}, {name: second, action: record}]
`, engine.Options{})
	f.rec.block = make(chan struct{})
	f.deliver(t, "single-firing")
	require.Eventually(t, func() bool { return f.rec.count() == 1 }, 5*time.Second, time.Millisecond)
	f.eng.SetPlaybooks(&playbooks.Set{}) // the playbook is removed mid-run
	close(f.rec.block)
	f.settle(t)
	require.Equal(t, 2, f.rec.count(), "the run finishes with the version it started with")
	require.Equal(t, "second", f.rec.calls[1].Step)
}

func TestTemplateTargetNamesTheRun(t *testing.T) {
	f := newFixture(t, t.TempDir(), firingAndResolved, engine.Options{})
	f.deliver(t, "single-firing")
	f.settle(t)
	got := f.rec.calls[0]
	require.Equal(t, "on-fire", got.Playbook)
	require.Equal(t, "s", got.Step)
	require.Equal(t, fmt.Sprintf("on-fire/%s", got.Fingerprint+"/"+fmt.Sprintf("%020d", got.StartsAt.UnixNano())), got.Run)
	require.Equal(t, "ae801e89cbc3f5a2@2026-11-21T19:08:21.8Z", got.Episode)
}

// finishing is a recorder that also closes what it opened.
type finishing struct {
	*recorder
	finished []actions.Result
}

func (f *finishing) Finish(_ context.Context, _ actions.Target, res actions.Result) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = append(f.finished, res)
	return errors.New("expire failed")
}

func TestFinishRunsForSucceededStepsWhateverTheOutcome(t *testing.T) {
	dir := t.TempDir()
	fin := &finishing{recorder: &recorder{}}
	failing := &recorder{fail: func(int) error { return errors.New("boom") }}
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(actions.Typed("open", "", "", func() *recParams { return &recParams{} },
		func(*recParams) (actions.Action, error) { return fin, nil })))
	require.NoError(t, reg.Register(actions.Typed("fail", "", "", func() *recParams { return &recParams{} },
		func(*recParams) (actions.Action, error) { return failing, nil })))
	pbs, err := playbooks.Parse(reg, "t.yaml", []byte(`playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps: [{name: open, action: open}, {name: then-fail, action: fail}]
`))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	log, err := ha.Open(dir, ha.Options{Node: "n1"})
	require.NoError(t, err)
	defer log.Close()
	inbox, err := receiver.OpenInbox(dir, 10)
	require.NoError(t, err)
	defer inbox.Close()
	eng := engine.New(inbox, log, engine.Options{Registerer: prometheus.NewPedanticRegistry()})
	eng.SetPlaybooks(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	data, err := os.ReadFile("../receiver/testdata/alertmanager/single-firing.json")
	require.NoError(t, err)
	n, err := receiver.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	_, err = inbox.Put(ctx, alert.Batch{Alerts: n.Alerts})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		recs, _ := log.List(0)
		return len(recs) == 1 && recs[0].State.Final()
	}, 10*time.Second, 5*time.Millisecond)
	recs, err := log.List(0)
	require.NoError(t, err)
	require.Equal(t, ha.Failed, recs[0].State)
	fin.mu.Lock()
	defer fin.mu.Unlock()
	require.Equal(t, []actions.Result{{Summary: "recorded"}}, fin.finished, "the step that succeeded is finished even though the run failed")
	require.Equal(t, "expire failed", recs[0].Steps[0].Details["finish_error"])
}

// TestStepRecordsReachDiskAsTheyHappen blocks the second of three steps
// and reads the store: what a kill -9 at that moment leaves behind must
// already say that step 1 succeeded and step 2 started. A restart then
// closes the run as interrupted and keeps those steps.
func TestStepRecordsReachDiskAsTheyHappen(t *testing.T) {
	dir := t.TempDir()
	yaml := `playbooks:
  - name: p
    match: ['selfhealing="true"']
    steps: [{name: one, action: record}, {name: two, action: record}, {name: three, action: record}]
`
	f := newFixture(t, dir, yaml, engine.Options{ShutdownGrace: time.Millisecond})
	block := make(chan struct{})
	var unblock sync.Once
	release := func() { unblock.Do(func() { close(block) }) }
	t.Cleanup(release) // before f.stop, which waits for the blocked step
	f.rec.fail = func(n int) error {
		if n == 1 {
			<-block
			return errors.New("cancelled")
		}
		return nil
	}
	f.deliver(t, "single-firing")
	require.Eventually(t, func() bool { return f.rec.count() == 2 }, 10*time.Second, time.Millisecond)
	recs, err := f.log.List(0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	onDisk := recs[0]
	require.Equal(t, ha.Running, onDisk.State)
	require.Len(t, onDisk.Steps, 2, "step records are written as each step starts and ends")
	require.Equal(t, ha.Succeeded, onDisk.Steps[0].State)
	require.Equal(t, "recorded", onDisk.Steps[0].Summary)
	require.Equal(t, ha.Running, onDisk.Steps[1].State)
	require.False(t, onDisk.Steps[1].StartedAt.IsZero())

	// Leave the store as a kill -9 would: this record, still running.
	crashed := t.TempDir()
	log, err := ha.Open(crashed, ha.Options{Node: "n0"})
	require.NoError(t, err)
	claimed, _, err := log.Claim(context.Background(), onDisk)
	require.NoError(t, err)
	claimed.State, claimed.Steps, claimed.StartedAt = ha.Running, onDisk.Steps, onDisk.StartedAt
	require.NoError(t, log.Update(claimed))
	require.NoError(t, log.Close())
	release()

	g := newFixture(t, crashed, yaml, engine.Options{})
	g.settle(t)
	require.Zero(t, g.rec.count(), "an interrupted run is not run again")
	got, ok, err := g.log.Get(onDisk.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ha.Failed, got.State)
	require.Contains(t, got.Reason, "interrupted")
	require.Contains(t, got.Reason, `step "two"`)
	require.Len(t, got.Steps, 2)
	require.Equal(t, ha.Succeeded, got.Steps[0].State, "step 1's success is kept")
	require.Equal(t, ha.Failed, got.Steps[1].State)
	require.Contains(t, got.Steps[1].Error, "interrupted")
	require.False(t, got.Steps[1].FinishedAt.IsZero())
}
