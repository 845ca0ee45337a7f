package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/ha"
)

// Members is what the engine needs of the cluster (a *cluster.Peer): who
// has gone, and how long to wait for one that went.
type Members interface {
	// Gone reports whether no member is named name, and since when.
	Gone(name string) (time.Time, bool)
	PeerTimeout() time.Duration
}

// TakeOverLog is what a take-over writes (an *ha.Log).
type TakeOverLog interface {
	TakeOver(ctx context.Context, rec ha.Record) (ha.Record, bool, error)
}

// failover takes over, every so often, the unfinished runs of replicas
// that have been gone for PeerTimeout: a run not started yet is run here;
// one that was running is run again only if every step of its playbook is
// safe_to_retry, else it is recorded failed (interrupted), which the
// breaker counts; one verifying goes on waiting here. Every replica may
// try at once; the log lets one version stand (ha.Log.TakeOver), and only
// the replica whose version stands acts. It returns when ctx ends.
func (e *Engine) failover(ctx context.Context) error {
	if e.opts.Cluster == nil {
		return nil
	}
	every := max(e.opts.Cluster.PeerTimeout()/3, 200*time.Millisecond)
	for {
		t := e.opts.Clock.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		recs, err := e.log.Unfinished()
		if err != nil {
			e.lg.Error("read unfinished runs for take-over", "err", err)
			continue
		}
		for _, rec := range recs {
			since, gone := e.opts.Cluster.Gone(rec.Node)
			if !gone || e.opts.Now().Sub(since) < e.opts.Cluster.PeerTimeout() {
				continue
			}
			if err := e.takeOver(ctx, rec, since); err != nil {
				return err
			}
		}
		e.adoptRepeats()
	}
}

// adoptRepeats holds here the pending repeats of replicas gone for
// PeerTimeout: when one falls due, its claim decides which replica runs it.
func (e *Engine) adoptRepeats() {
	recs, err := e.log.Repeats()
	if err != nil {
		e.lg.Error("read pending repeats for take-over", "err", err)
		return
	}
	for _, rec := range recs {
		since, gone := e.opts.Cluster.Gone(rec.Node)
		if !gone || e.opts.Now().Sub(since) < e.opts.Cluster.PeerTimeout() || e.held(rec.ID) {
			continue
		}
		e.lg.Info("holding the pending repeat of a replica that left", "run", rec.ID, "from", rec.Node, "at", rec.RepeatAt)
		e.hold(job{rec: rec, pb: e.playbook(rec.Playbook)})
	}
}

func (e *Engine) takeOver(ctx context.Context, rec ha.Record, since time.Time) error {
	tl, ok := e.log.(TakeOverLog)
	if !ok {
		return nil
	}
	pb := e.playbook(rec.Playbook)
	now := e.opts.Now().UTC()
	gone := fmt.Sprintf("replica %s left the cluster %s ago", rec.Node, model.Duration(now.Sub(since).Round(time.Second)))
	e.lg.Info("taking over a run", "run", rec.ID, "state", rec.State, "why", gone)
	next := rec
	switch {
	case rec.State == ha.Running && pb.SafeToRetry():
		next.State, next.Steps, next.StartedAt = ha.Claimed, nil, time.Time{}
		next.Reason = gone + " during the run; every step is safe_to_retry, so it runs again here"
	case rec.State == ha.Running:
		e.interrupted(&next, pb, "replica "+rec.Node+", which left the cluster,")
		next.Reason += " (not every step is safe_to_retry)"
	case pb == nil && rec.State == ha.Claimed:
		next.State, next.FinishedAt = ha.Skipped, now
		next.Reason = gone + " before the run started, and playbook " + rec.Playbook + " is no longer loaded"
	default: // claimed (maybe waiting), or verifying: nothing of it ran here yet
		next.Reason = gone + " before the run finished; taken over here"
	}
	stands, won, err := tl.TakeOver(ctx, next)
	if err != nil {
		e.lg.Error("take over a run", "run", rec.ID, "from", rec.Node, "err", err)
		return nil
	}
	if !won {
		e.lg.Debug("another replica took the run over", "run", rec.ID, "by", stands.Node)
		return nil
	}
	e.m.takeOvers.WithLabelValues(string(stands.State)).Inc()
	e.lg.Warn("took over a run of a replica that left", "run", stands.ID, "from", rec.Node, "state", stands.State, "reason", stands.Reason)
	if stands.State.Final() {
		e.finished(stands)
		return nil
	}
	return e.claimedOrWaiting(ctx, job{rec: stands, pb: pb})
}
