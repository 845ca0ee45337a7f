package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
)

// touchParams configure the "touch" test action: it changes pod Pod of
// namespace shop, then fails if Fail.
type touchParams struct {
	Pod  string `yaml:"pod"`
	Fail bool   `yaml:"fail"`
}

func (touchParams) Validate() error { return nil }

type touch struct{ p *touchParams }

func (a touch) Plan(context.Context, actions.Target) (actions.Plan, error) {
	return actions.Plan{Summary: "touch pod " + a.p.Pod}, nil
}

func (a touch) Run(context.Context, actions.Target) (actions.Result, error) {
	res := actions.Result{Summary: "touched pod " + a.p.Pod, Touched: []actions.ObjectRef{touchedPod(a.p.Pod)}}
	if a.p.Fail {
		return res, errors.New("failed after the change")
	}
	return res, nil
}

func touchedPod(name string) actions.ObjectRef {
	return actions.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: name, UID: "uid-" + name}
}

// notified is a Notifier that keeps the records it is told of.
type notified struct {
	mu   sync.Mutex
	recs []ha.Record
}

func (n *notified) RunFinished(rec ha.Record) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recs = append(n.recs, rec)
}

func (n *notified) all() []ha.Record {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ha.Record(nil), n.recs...)
}

// newTouchFixture runs an engine, with n as its Notifier, over a real inbox
// and log in dir, with the playbooks in yaml using the "touch" action.
func newTouchFixture(t *testing.T, dir, yaml string, n engine.Notifier) *fixture {
	t.Helper()
	reg := actions.NewRegistry()
	require.NoError(t, reg.Register(actions.Typed("touch", "touches a pod", "",
		func() *touchParams { return &touchParams{} },
		func(p *touchParams) (actions.Action, error) { return touch{p}, nil })))
	return newFixtureActions(t, dir, yaml, engine.Options{Notifier: n}, reg, &recorder{}, nil)
}

// touchedOf is what the steps of rec recorded under actions.TouchedKey.
func touchedOf(t *testing.T, rec ha.Record) []actions.ObjectRef {
	t.Helper()
	var out []actions.ObjectRef
	for _, st := range rec.Steps {
		refs, err := actions.ParseTouched(st.Details[actions.TouchedKey])
		require.NoError(t, err)
		out = append(out, refs...)
	}
	return out
}

// TestNotifierToldOfFinishedRuns: the Notifier is told once of each run
// that ends, with its final record, in which every step that touched an
// object recorded it, a step that failed after its change too.
func TestNotifierToldOfFinishedRuns(t *testing.T) {
	n := &notified{}
	f := newTouchFixture(t, t.TempDir(), `playbooks:
  - name: fix
    match: ['alertname="DiskFull"']
    steps:
      - {name: a, action: touch, with: {pod: web-a}}
      - {name: b, action: touch, with: {pod: web-b}}
  - name: broken
    match: ['alertname="DiskFull"']
    steps:
      - {name: a, action: touch, with: {pod: db-0}}
      - {name: b, action: touch, with: {pod: db-1, fail: true}}
      - {name: c, action: touch, with: {pod: db-2}}
`, n)
	a := episodesOf("w1", 1, time.Now())
	f.put(t, a)
	f.settle(t)
	// The notifier is told once the outcome is on disk, so settle (which
	// reads the disk) can see both runs ended before it is told of both.
	require.Eventually(t, func() bool { return len(n.all()) >= 2 }, 10*time.Second, time.Millisecond)

	got := map[string]ha.Record{}
	for _, rec := range n.all() {
		require.NotContains(t, got, rec.Playbook, "told once per run")
		got[rec.Playbook] = rec
	}
	require.Len(t, got, 2)
	fix := got["fix"]
	require.Equal(t, ha.Succeeded, fix.State)
	require.Equal(t, ha.RunID("fix", a[0].Episode()), fix.ID)
	require.False(t, fix.FinishedAt.IsZero(), "the final record")
	require.Equal(t, []actions.ObjectRef{touchedPod("web-a"), touchedPod("web-b")}, touchedOf(t, fix))
	require.Equal(t, "v1 Pod shop/web-a uid-web-a", fix.Steps[0].Details[actions.TouchedKey])

	broken := got["broken"]
	require.Equal(t, ha.Failed, broken.State)
	require.Len(t, broken.Steps, 2, "c never ran")
	require.Equal(t, ha.Failed, broken.Steps[1].State)
	require.Equal(t, []actions.ObjectRef{touchedPod("db-0"), touchedPod("db-1")}, touchedOf(t, broken))

	onDisk, _, err := f.log.Get(broken.ID)
	require.NoError(t, err)
	require.Equal(t, touchedOf(t, broken), touchedOf(t, onDisk), "the record on disk keeps them")
}

// TestNotifierAfterVerifyAcrossRestart: a run that verifies is told of
// only when it ends, and a restart in between keeps what its steps
// touched: it comes from the record on disk, not from memory.
func TestNotifierAfterVerifyAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		const yaml = `playbooks:
  - name: restart-web
    match: ['alertname="DiskFull"']
    steps: [{name: restart, action: touch, with: {pod: web-a}}]
    verify: {resolved_within: 15m}
`
		first := &notified{}
		f := newTouchFixture(t, dir, yaml, first)
		a := episodesOf("w1", 1, time.Now())
		f.put(t, a)
		synctest.Wait()
		id := ha.RunID("restart-web", a[0].Episode())
		rec, _, err := f.log.Get(id)
		require.NoError(t, err)
		require.Equal(t, ha.Verifying, rec.State)
		require.Empty(t, first.all(), "not ended yet")
		f.stop()

		second := &notified{}
		newTouchFixture(t, dir, yaml, second)
		time.Sleep(15 * time.Minute)
		synctest.Wait()
		recs := second.all()
		require.Len(t, recs, 1)
		require.Equal(t, id, recs[0].ID)
		require.Equal(t, ha.Unhealed, recs[0].State)
		require.Equal(t, []actions.ObjectRef{touchedPod("web-a")}, touchedOf(t, recs[0]))
	})
}
