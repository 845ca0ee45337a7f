package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// settleTimeout bounds, in real time, how long the engine may take to
// finish what a step of simulated time gave it. Stubbed steps take no time,
// so only a hang gets near it.
const settleTimeout = 10 * time.Second

// feed is the engine's Source in a test: batches handed over in order, and
// the last acknowledged sequence number. It is safe for concurrent use.
type feed struct {
	ch    chan alert.Batch
	mu    sync.Mutex
	acked uint64
}

func (f *feed) Next(ctx context.Context) (alert.Batch, error) {
	select {
	case b := <-f.ch:
		return b, nil
	case <-ctx.Done():
		return alert.Batch{}, ctx.Err()
	}
}

func (f *feed) Ack(seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = max(f.acked, seq)
	return nil
}

func (f *feed) ackedUpTo() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acked
}

// planned stands in for a step's action: Run asks the real action's Plan
// and reports it as done, so a test runs nothing. A step named in
// fail_steps fails instead, after its plan.
type planned struct {
	action actions.Action
	fail   bool
}

func (p planned) Plan(ctx context.Context, t actions.Target) (actions.Plan, error) {
	return p.action.Plan(ctx, t)
}

func (p planned) Run(ctx context.Context, t actions.Target) (actions.Result, error) {
	plan, err := p.action.Plan(ctx, t)
	if err != nil {
		return actions.Result{}, err
	}
	if p.fail {
		return actions.Result{}, errors.New("failed by the test (fail_steps): would " + plan.Summary)
	}
	return actions.Result{Summary: "planned: " + plan.Summary}, nil
}

// stubbed returns set, and the breaker's on_open steps, with every step's
// action replaced by a planned one. fail_steps names an on_open step as
// breaker.on_open/<step>.
func stubbed(set *playbooks.Set, onOpen []playbooks.Step, failSteps []string) (*playbooks.Set, []playbooks.Step, error) {
	wrap := func(pb string, steps []playbooks.Step) []playbooks.Step {
		out := slices.Clone(steps)
		for i := range out {
			out[i].Action = planned{action: out[i].Action, fail: slices.Contains(failSteps, pb+"/"+out[i].Name)}
		}
		return out
	}
	var pbs []*playbooks.Playbook
	known := map[string]bool{}
	for _, pb := range set.All() {
		c := *pb
		c.Steps, c.OnFailure = wrap(pb.Name, pb.Steps), wrap(pb.Name, pb.OnFailure)
		for _, st := range slices.Concat(pb.Steps, pb.OnFailure) {
			known[pb.Name+"/"+st.Name] = true
		}
		pbs = append(pbs, &c)
	}
	for _, st := range onOpen {
		known[engine.BreakerOnOpen+"/"+st.Name] = true
	}
	for _, s := range failSteps {
		if !known[s] {
			return nil, nil, fmt.Errorf("fail_steps: no step %q (want playbook/step)", s)
		}
	}
	stubs, err := playbooks.NewSet(pbs)
	if err != nil {
		return nil, nil, err
	}
	if len(onOpen) > 0 {
		onOpen = wrap(engine.BreakerOnOpen, onOpen)
	}
	return stubs, onOpen, nil
}

// simulation is one test's engine on a fake clock, with its own log.
type simulation struct {
	clock  *clocktesting.FakeClock
	log    *ha.Log
	src    *feed
	seq    uint64
	cancel context.CancelFunc
	done   chan error
}

func startSimulation(dir string, start time.Time, set *playbooks.Set, opts engine.Options) (*simulation, error) {
	s := &simulation{clock: clocktesting.NewFakeClock(start), src: &feed{ch: make(chan alert.Batch)}, done: make(chan error, 1)}
	lg, err := ha.Open(dir, ha.Options{Node: "test", Now: s.clock.Now})
	if err != nil {
		return nil, err
	}
	s.log = lg
	opts.Clock, opts.Workers, opts.ShutdownGrace = s.clock, 1, time.Second
	e := engine.New(s.src, lg, opts)
	e.SetPlaybooks(set)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- e.Run(ctx) }()
	return s, nil
}

func (s *simulation) stop() error {
	s.cancel()
	err := <-s.done
	return errors.Join(err, s.log.Close())
}

func (s *simulation) now() time.Time { return s.clock.Now() }

// send hands the engine one batch and waits until it has settled.
func (s *simulation) send(alerts []alert.Alert) error {
	s.seq++
	b := alert.Batch{Seq: s.seq, ReceivedAt: s.now(), Alerts: alerts}
	select {
	case s.src.ch <- b:
	case err := <-s.done:
		return fmt.Errorf("engine stopped: %v", err)
	case <-time.After(settleTimeout):
		return errors.New("engine did not take the batch")
	}
	return s.settle()
}

// advance moves the clock to t, stopping at every time a held run falls
// due on the way, so that each runs at its own time.
func (s *simulation) advance(t time.Time) error {
	for {
		next, ok, err := s.nextDue()
		if err != nil {
			return err
		}
		if !ok || !next.Before(t) {
			break
		}
		s.clock.SetTime(next)
		if err := s.settle(); err != nil {
			return err
		}
	}
	s.clock.SetTime(t)
	return s.settle()
}

// pending returns the runs that need the engine at some time: those not
// finished, and the finished ones whose repeat (repeat_after) is pending.
func (s *simulation) pending() ([]ha.Record, error) {
	recs, err := s.log.Unfinished()
	if err != nil {
		return nil, err
	}
	repeats, err := s.log.Repeats()
	return append(recs, repeats...), err
}

// nextDue is the earliest time after now a run waits for.
func (s *simulation) nextDue() (time.Time, bool, error) {
	recs, err := s.pending()
	if err != nil {
		return time.Time{}, false, err
	}
	var first time.Time
	for _, r := range recs {
		if at := r.DueAt(); at.After(s.now()) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero(), nil
}

// settle waits, polling in real time, until the engine has acknowledged
// every batch and no run is running or due: what is left waits for a later
// time. The clock is set again at each poll, to fire the timers the engine
// made for "now" after it was set. The state must hold on a few polls in a
// row, so that a timer being rearmed is not taken for rest.
func (s *simulation) settle() error {
	deadline := time.Now().Add(settleTimeout)
	calm := 0
	for calm < 3 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the engine did not settle within %s (real time)", settleTimeout)
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("engine stopped: %v", err)
		case <-time.After(time.Millisecond):
		}
		s.clock.SetTime(s.now())
		busy, err := s.busy()
		if err != nil {
			return err
		}
		if busy {
			calm = 0
		} else {
			calm++
		}
	}
	return nil
}

func (s *simulation) busy() (bool, error) {
	if s.src.ackedUpTo() < s.seq {
		return true, nil
	}
	recs, err := s.pending()
	if err != nil {
		return false, err
	}
	now := s.now()
	for _, r := range recs {
		if r.State == ha.Running || !r.DueAt().After(now) {
			return true, nil
		}
	}
	return false, nil
}

// records returns every run in the log, oldest claim first.
func (s *simulation) records() ([]ha.Record, error) {
	recs, err := s.log.List(0)
	slices.Reverse(recs)
	return recs, err
}
