package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

func TestStepBackoff(t *testing.T) {
	tests := []struct {
		name    string
		first   time.Duration
		retries int
		want    []time.Duration
	}{
		{name: "doubling to the cap", first: time.Second, retries: 8,
			want: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}},
		{name: "first over the cap", first: 45 * time.Second, retries: 3,
			want: []time.Duration{45 * time.Second, 30 * time.Second, 30 * time.Second}},
		{name: "one retry", first: 250 * time.Millisecond, retries: 1, want: []time.Duration{250 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := stepBackoff(tt.first, tt.retries)
			got := make([]time.Duration, tt.retries)
			for i := range got {
				got[i] = b.Step()
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// memLog is an execution log in memory: runStep only writes records.
type memLog struct {
	mu      sync.Mutex
	updates int
}

func (l *memLog) Observe(alert.Alert) (ha.Observation, error) { return ha.New, nil }
func (l *memLog) Claim(_ context.Context, rec ha.Record) (ha.Record, bool, error) {
	return rec, true, nil
}
func (l *memLog) Unfinished() ([]ha.Record, error)                       { return nil, nil }
func (l *memLog) Get(string) (ha.Record, bool, error)                    { return ha.Record{}, false, nil }
func (l *memLog) Resolved(alert.Episode) (bool, error)                   { return false, nil }
func (l *memLog) KeyRuns(string, string, time.Time) ([]ha.Record, error) { return nil, nil }
func (l *memLog) Breaker() (ha.BreakerState, error)                      { return ha.BreakerState{}, nil }
func (l *memLog) SetBreaker(ha.BreakerState) error                       { return nil }
func (l *memLog) Outcomes(time.Time) (int, int, error)                   { return 0, 0, nil }
func (l *memLog) Node() string                                           { return "n1" }
func (l *memLog) Repeats() ([]ha.Record, error)                          { return nil, nil }
func (l *memLog) RepeatDone(string) error                                { return nil }
func (l *memLog) Update(ha.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.updates++
	return nil
}

// clocked is an action that records when each call came and fails with
// err.
type clocked struct {
	mu    sync.Mutex
	calls []time.Time
	err   error
}

func (c *clocked) Plan(context.Context, actions.Target) (actions.Plan, error) {
	return actions.Plan{}, nil
}

func (c *clocked) Run(context.Context, actions.Target) (actions.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, time.Now())
	return actions.Result{}, c.err
}

// gaps returns the time between successive calls.
func (c *clocked) gaps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(c.calls); i++ {
		out = append(out, c.calls[i].Sub(c.calls[i-1]))
	}
	return out
}

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	return New(nil, &memLog{}, Options{RetryBackoff: time.Second, Registerer: prometheus.NewPedanticRegistry()})
}

func runOneStep(ctx context.Context, e *Engine, a actions.Action, retries int) ha.StepRecord {
	pb := &playbooks.Playbook{Name: "p"}
	st := playbooks.Step{Name: "s", ActionID: "clocked", Action: a, Timeout: time.Minute, Retries: retries}
	rec := ha.Record{ID: "p/run"}
	sr, _ := e.runStep(ctx, &rec, pb, st, "")
	return sr
}

// TestRunStepBacksOff: the engine is the one retry layer; a retryable
// failure waits 1s, 2s, 4s, … at most 30s before each retry (in fake time).
func TestRunStepBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &clocked{err: actions.Retryablef("503")}
		sr := runOneStep(context.Background(), newTestEngine(t), a, 7)
		require.Equal(t, ha.Failed, sr.State)
		require.Equal(t, 8, sr.Attempts)
		require.Equal(t, "503", sr.Error)
		require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 30 * time.Second, 30 * time.Second}, a.gaps())
	})
}

func TestRunStepPermanentErrorIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &clocked{err: errors.New("404 job not found")}
		sr := runOneStep(context.Background(), newTestEngine(t), a, 3)
		require.Equal(t, ha.Failed, sr.State)
		require.Equal(t, 1, sr.Attempts)
		require.Equal(t, "404 job not found", sr.Error)
	})
}

// TestRunStepCancelledDuringBackoff: a cancelled run stops waiting at once
// and keeps the last attempt's error; a run whose context is already done
// still makes its first attempt, which reports why it failed.
func TestRunStepCancelledDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &clocked{err: actions.Retryablef("503")}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1500*time.Millisecond, cancel)
		start := time.Now()
		sr := runOneStep(ctx, newTestEngine(t), a, 5)
		require.Equal(t, 1500*time.Millisecond, time.Since(start), "the wait before the third attempt is cut short")
		require.Equal(t, ha.Failed, sr.State)
		require.Equal(t, 2, sr.Attempts)
		require.Equal(t, "503", sr.Error)

		a = &clocked{err: actions.Retryablef("503")}
		sr = runOneStep(ctx, newTestEngine(t), a, 5)
		require.Equal(t, 1, sr.Attempts)
		require.Equal(t, "503", sr.Error)
	})
}
