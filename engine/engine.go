// Package engine turns accepted alerts into runs: it classifies each
// delivery against its episode, matches playbooks, claims each run in the
// execution log before anything starts, runs the steps with timeouts and
// retries on a bounded worker pool, and records the outcome.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// Source hands the engine accepted batches in order. A batch is handed out
// again after a restart until it is acknowledged.
type Source interface {
	Next(ctx context.Context) (alert.Batch, error)
	Ack(seq uint64) error
}

// Log is the execution log the engine records into (an *ha.Log).
type Log interface {
	Observe(a alert.Alert) (ha.Observation, error)
	Claim(ctx context.Context, rec ha.Record) (ha.Record, bool, error)
	Update(rec ha.Record) error
	Unfinished() ([]ha.Record, error)
	Get(id string) (ha.Record, bool, error)
	Resolved(ep alert.Episode) (bool, error)
	// Repeats returns the final records whose repeat is pending;
	// RepeatDone records one decided.
	Repeats() ([]ha.Record, error)
	RepeatDone(id string) error
	History
	BreakerLog
	// Node is the name this replica writes into records.
	Node() string
}

// Options configure an Engine.
type Options struct {
	// Workers is how many runs execute at once; 0 means 4.
	Workers int
	// Queue is how many claimed runs may wait for a worker; 0 means 256.
	// When it is full the engine stops taking batches, the inbox fills,
	// and the webhook answers 503: backpressure, never loss.
	Queue int
	// DryRun records what would run for every playbook and runs nothing.
	DryRun bool
	// ShutdownGrace is how long runs in flight may finish after the engine
	// is told to stop; then their contexts are cancelled. 0 means 30s.
	ShutdownGrace time.Duration
	// RetryBackoff is the first wait between attempts of a step; it
	// doubles, up to 30s. 0 means 1s.
	RetryBackoff time.Duration
	// Breaker is the global circuit breaker; the zero value has none.
	Breaker Breaker
	// Cluster is the cluster this replica is a member of; nil: alone.
	// In a cluster a start resumes only this replica's runs, and the runs
	// of replicas that left are taken over (failover).
	Cluster    Members
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Clock gives the engine's timers (waits, backoffs) and, unless Now is
	// set, its time; nil means the real clock. `selfheal test` passes a
	// fake one to run playbook tests on simulated time.
	Clock clock.Clock
	Now   func() time.Time
	// Notifier, if set, is told of every run that ends.
	Notifier Notifier
}

// Notifier is told of every run that ends, with its final record (a
// *kubeevents.Recorder posts a Kubernetes Event on each object the run's
// steps touched, actions.TouchedKey). It is called once the outcome is
// written, on the goroutine that ended the run (a worker, or the start and
// take-over loops): it must bound its own time, and whatever fails in it
// is its own to report; the run's outcome stands.
type Notifier interface {
	RunFinished(rec ha.Record)
}

// Engine runs playbooks for alerts. Create it with New, give it playbooks
// with SetPlaybooks and start it with Run.
type Engine struct {
	src  Source
	log  Log
	opts Options
	lg   *slog.Logger
	m    *metrics

	breakerMu  sync.Mutex // serialises opening and resetting the breaker
	breakerPB  *playbooks.Playbook
	playbooks  atomic.Pointer[playbooks.Set]
	queue      chan job
	waiting    waiting
	storageErr atomic.Pointer[error]
}

type job struct {
	rec ha.Record
	pb  *playbooks.Playbook
}

// New returns an engine reading from src and recording into log.
func New(src Source, log Log, opts Options) *Engine {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Now == nil {
		opts.Now = opts.Clock.Now
	}
	e := &Engine{
		src:       src,
		log:       log,
		opts:      opts,
		lg:        opts.Logger.With("component", "engine"),
		m:         newMetrics(opts.Registerer, log.Breaker),
		queue:     make(chan job, opts.Queue),
		waiting:   waiting{jobs: map[string]job{}, wake: make(chan struct{}, 1)},
		breakerPB: breakerPlaybook(opts.Breaker),
	}
	e.playbooks.Store(&playbooks.Set{})
	// An open breaker stays open across restarts: say so at once. (Were
	// the read to fail, the first decision would read it again.)
	if st, err := e.log.Breaker(); err == nil && st.Open {
		e.lg.Error("CIRCUIT BREAKER OPEN since before this start: all automation is paused until POST /api/v1/breaker/reset",
			"opened_at", st.OpenedAt, "reason", st.Reason)
	}
	return e
}

// SetPlaybooks swaps the active playbooks atomically. Runs already claimed
// keep the playbook version they were claimed with.
func (e *Engine) SetPlaybooks(s *playbooks.Set) { e.playbooks.Store(s) }

// Playbooks returns the active playbooks.
func (e *Engine) Playbooks() *playbooks.Set { return e.playbooks.Load() }

// Run resumes what a previous process left unfinished, then processes
// batches until ctx is done. Runs in flight then get ShutdownGrace to
// finish. It returns nil after a clean stop.
func (e *Engine) Run(ctx context.Context) error {
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	var workers sync.WaitGroup
	for range e.opts.Workers {
		workers.Go(func() {
			for j := range e.queue {
				e.m.queued.Dec()
				if ctx.Err() != nil {
					continue // stays claimed on disk; resumed at the next start
				}
				e.execute(runCtx, j)
			}
		})
	}
	schedCtx, stopSchedule := context.WithCancel(ctx)
	scheduled := make(chan error, 2)
	go func() { scheduled <- e.schedule(schedCtx) }()
	go func() { scheduled <- e.failover(schedCtx) }()
	err := e.resume(ctx)
	if err == nil {
		err = e.dispatch(ctx)
	}
	stopSchedule()
	for range 2 {
		if serr := <-scheduled; err == nil || errors.Is(err, context.Canceled) {
			err = errors.Join(err, serr)
		}
	}
	close(e.queue)
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.opts.ShutdownGrace):
		e.lg.Warn("runs still in flight after the shutdown grace; cancelling them", "grace", e.opts.ShutdownGrace)
		cancelRuns()
		<-done
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// resume deals with the records a previous process left open in this
// store, under whatever node name it ran: a claimed run never started, so
// it runs now; a running one may have had effects, so it is closed as
// failed rather than run twice.
func (e *Engine) resume(ctx context.Context) error {
	recs, err := e.log.Unfinished()
	if err != nil {
		return fmt.Errorf("read unfinished runs: %w", err)
	}
	for _, rec := range recs {
		if e.opts.Cluster != nil && rec.Node != e.log.Node() {
			continue // another replica's, or taken over once its replica is gone (failover)
		}
		if rec.Node != e.log.Node() {
			e.lg.Info("taking over an unfinished run recorded under another node name in this store",
				"run", rec.ID, "state", rec.State, "recorded_node", rec.Node)
			rec.Node = e.log.Node()
		}
		pb := e.playbook(rec.Playbook)
		if rec.State == ha.Running {
			e.interrupted(&rec, pb, "the daemon")
			rec.RepeatAt = e.nextRepeat(rec)
			if err := e.write(ctx, "record interrupted run", func() error { return e.log.Update(rec) }); err != nil {
				return err
			}
			e.finished(rec)
			continue
		}
		if pb == nil && rec.State == ha.Claimed {
			e.skip(rec, fmt.Sprintf("playbook %q is no longer loaded", rec.Playbook))
			continue
		}
		e.lg.Info("resuming claimed run", "run", rec.ID, "playbook", rec.Playbook, "episode", rec.Episode.String())
		if err := e.claimedOrWaiting(ctx, job{rec: rec, pb: pb}); err != nil {
			return err
		}
	}
	if err := e.resumeRepeats(ctx); err != nil {
		return fmt.Errorf("read pending repeats: %w", err)
	}
	return nil
}

// interrupted closes a run a previous process left Running: the step it
// was in is failed, with what its action says may be left behind, and the
// steps before it keep their records. who says what stopped: "the daemon"
// after a restart, a replica that left the cluster on a take-over.
func (e *Engine) interrupted(rec *ha.Record, pb *playbooks.Playbook, who string) {
	const notAgain = "not run again because its steps may have had effects"
	now := e.opts.Now().UTC()
	rec.State, rec.FinishedAt = ha.Failed, now
	rec.Reason = "interrupted: " + who + " stopped while the run was in progress; " + notAgain
	if len(rec.Steps) == 0 || rec.Steps[len(rec.Steps)-1].State.Final() {
		return // it stopped before the first step or between two steps
	}
	last := &rec.Steps[len(rec.Steps)-1]
	last.State, last.FinishedAt = ha.Failed, now
	last.Error = "interrupted: " + who + " stopped during this step"
	if st, ok := pb.Step(last.Name); ok {
		if in, ok := st.Action.(actions.Interrupter); ok {
			if left := in.Interrupted(last.Details); left != "" {
				last.Error += "; " + left
			}
		}
	}
	rec.Reason = fmt.Sprintf("interrupted: %s stopped during step %q; %s", who, last.Name, notAgain)
}

// MultiSource is a Source that also hands out its backlog at once (an
// *receiver.Inbox), so that a backlog is recorded in a few big writes
// rather than one write per webhook request.
type MultiSource interface {
	// Pending returns, without waiting, the next batches not handed out:
	// those that fit in maxAlerts, and at least one if there is one.
	Pending(maxAlerts int) ([]alert.Batch, error)
	AckAll(seqs []uint64) error
}

// maxHandleAlerts bounds the alerts the engine records in one write.
const maxHandleAlerts = 1000

func (e *Engine) dispatch(ctx context.Context) error {
	for {
		b, err := e.src.Next(ctx)
		if err != nil {
			return err
		}
		batches := []alert.Batch{b}
		ms, multi := e.src.(MultiSource)
		if multi && len(b.Alerts) < maxHandleAlerts {
			more, err := ms.Pending(maxHandleAlerts - len(b.Alerts))
			if err != nil {
				return err
			}
			batches = append(batches, more...)
		}
		alerts := b.Alerts
		if len(batches) > 1 {
			alerts = nil
			for _, b := range batches {
				alerts = append(alerts, b.Alerts...)
			}
		}
		// Until the batches are acknowledged they stay in the inbox, so a
		// failing write is retried on the same alerts: Observe and Claim
		// are idempotent for them.
		if err := e.write(ctx, "record batch", func() error { return e.handle(ctx, alerts) }); err != nil {
			return err
		}
		ack := func() error { return e.src.Ack(b.Seq) }
		if multi {
			seqs := make([]uint64, len(batches))
			for i, b := range batches {
				seqs[i] = b.Seq
			}
			ack = func() error { return ms.AckAll(seqs) }
		}
		if err := e.write(ctx, "acknowledge batch", ack); err != nil {
			return err
		}
	}
}

// handle classifies alerts and claims the runs they call for. When it
// returns nil, every decision is on disk and their batches may be
// acknowledged.
func (e *Engine) handle(ctx context.Context, alerts []alert.Alert) error {
	set := e.Playbooks()
	all, err := e.observeAll(alerts)
	if err != nil {
		return err
	}
	for i, a := range alerts {
		obs := all[i]
		e.m.episodes.WithLabelValues(string(obs)).Inc()
		if obs == ha.Ended {
			e.cancelWaiting(ctx, a.Episode())
		}
		if obs == ha.Stale {
			e.lg.Info("ignoring stale firing alert for an episode already resolved",
				"episode", a.Episode().String(), "alertname", a.Name())
			continue
		}
		if len(a.Labels) == 0 {
			// Reconciliation's resolved copy of an episode whose alert
			// no playbook matched when it fired (ha.Options.KeepAlert):
			// recorded resolved above, it has no labels to match, and a
			// negative matcher must not take the emptiness for a match.
			continue
		}
		for _, pb := range set.Match(a) {
			if err := e.claim(ctx, a, pb, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// claim decides pb for a (Decide) and records the decision: a claimed run,
// queued for a worker, or a skipped one with its reason. It is the episode's
// first run, or with repeat > 0 that repeat of it (repeat_after). A run
// already recorded is not decided again.
func (e *Engine) claim(ctx context.Context, a alert.Alert, pb *playbooks.Playbook, repeat int) error {
	id := ha.RepeatID(pb.Name, a.Episode(), repeat)
	if old, found, err := e.log.Get(id); err != nil {
		return err
	} else if found {
		e.lg.Debug("run already recorded for this episode", "run", id, "state", old.State, "node", old.Node)
		return nil
	}
	if err := e.checkBreaker(); err != nil {
		return err
	}
	now := e.opts.Now().UTC()
	d, err := Decide(now, e.log, a, pb)
	if err != nil {
		return err
	}
	rec := ha.Record{
		ID:        id,
		Playbook:  pb.Name,
		Source:    pb.Source,
		Revision:  pb.Revision,
		Episode:   a.Episode(),
		Alert:     a,
		DryRun:    e.opts.DryRun || pb.DryRun,
		LimitKey:  d.Key,
		ClaimedAt: now,
		Repeat:    repeat,
	}
	switch d.Verdict {
	case Skip:
		rec.State, rec.SkipReason, rec.Reason, rec.NextAllowedAt = ha.Skipped, d.Reason, d.Explain, d.NextAllowed
		rec.RepeatAt = e.nextRepeat(rec)
	case Defer:
		rec.NotBefore, rec.Waiting = d.NotBefore, d.Explain
	}
	began := time.Now()
	stored, won, err := e.log.Claim(ctx, rec)
	e.m.claimWait.Observe(time.Since(began).Seconds())
	if err != nil {
		return err
	}
	if !won && stored.Node != e.log.Node() {
		e.m.claimsLost.Inc()
	}
	if !won {
		e.lg.Debug("run already recorded for this episode", "run", stored.ID, "state", stored.State, "node", stored.Node)
		return nil
	}
	if stored.State == ha.Skipped {
		e.m.skipped.WithLabelValues(pb.Name, stored.SkipReason).Inc()
		e.finished(stored)
		return nil
	}
	e.lg.Info("run claimed", "run", stored.ID, "playbook", pb.Name, "episode", stored.Episode.String(), "alertname", a.Name())
	return e.claimedOrWaiting(ctx, job{rec: stored, pb: pb})
}

// BatchObserver observes a batch in one write (an *ha.Log).
type BatchObserver interface {
	ObserveAll(alerts []alert.Alert) ([]ha.Observation, error)
}

// observeAll observes every alert of a batch: in one write when the log
// can, else one by one.
func (e *Engine) observeAll(alerts []alert.Alert) ([]ha.Observation, error) {
	if bo, ok := e.log.(BatchObserver); ok {
		return bo.ObserveAll(alerts)
	}
	out := make([]ha.Observation, len(alerts))
	for i, a := range alerts {
		obs, err := e.log.Observe(a)
		if err != nil {
			return nil, err
		}
		out[i] = obs
	}
	return out, nil
}

func (e *Engine) enqueue(ctx context.Context, j job) error {
	select {
	case e.queue <- j:
		e.m.queued.Inc()
		return nil
	case <-ctx.Done():
		// The claim is on disk; resume starts it after the restart.
		return ctx.Err()
	}
}

func (e *Engine) skip(rec ha.Record, reason string) {
	rec.State, rec.Reason = ha.Skipped, reason
	rec.FinishedAt = e.opts.Now().UTC()
	rec.RepeatAt = e.nextRepeat(rec)
	if err := e.log.Update(rec); err != nil {
		e.lg.Error("record skipped run", "run", rec.ID, "err", err)
		return
	}
	e.finished(rec)
}
