// Package reconcile owns reconciliation from Alertmanager: on start and
// periodically it lists the alerts every configured Alertmanager holds
// (GET /api/v2/alerts), puts the firing ones in the inbox as a webhook
// would have, and puts a resolved copy of each episode the execution log
// believes firing that no Alertmanager lists any more. The engine decides
// both as it decides webhooks: an episode already seen starts nothing, a
// new one runs, a resolve ends its waits, verification and repeats. So
// alerts missed while selfheal was down, behind a full inbox or hidden by
// truncatedAlerts, and resolves that never arrived, are caught up.
//
// Every Alertmanager is asked for every alert it holds that has not ended
// (active, silenced, inhibited and unprocessed all true): a silenced or
// inhibited alert still fires, so its episode must not be resolved (the
// alertmanager.silence action silences the very alerts it remediates).
// But only the alerts some member lists as notified are put as firing:
// Alertmanager sends no webhook for a suppressed alert, and a maintenance
// silence must keep stopping remediation as it does through webhooks.
//
// It reaches the inbox and the execution log only through Inbox and
// Episodes.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/selfheal/selfheal/alert"
)

// Inbox takes batches of alerts for the engine; *receiver.Inbox is one.
// Put returns once b is stored, or an error (receiver.ErrFull) having
// stored nothing.
type Inbox interface {
	Put(ctx context.Context, b alert.Batch) (alert.Batch, error)
}

// Episodes is what the execution log knows of episodes.
type Episodes interface {
	// Firing returns, for each episode seen firing and not resolved, the
	// most recent alert delivered for it.
	Firing() ([]alert.Alert, error)
}

// Options configure a Reconciler. Zero values take the defaults of
// DefaultOptions.
type Options struct {
	// URLs are the Alertmanagers, every member of an HA pair or cluster,
	// as http(s) base URLs. A password in one is sent as basic auth and
	// never shown. Required.
	URLs []string
	// HTTPClient carries every request (TLS, auth, proxy): Prometheus'
	// config.NewClientFromConfig of alertmanager.http_config.
	HTTPClient *http.Client
	// Interval is the time from the end of one reconciliation to the
	// start of the next.
	Interval time.Duration
	// Timeout bounds each request to an Alertmanager.
	Timeout time.Duration
	// MaxBatch is the most alerts put in the inbox in one batch; more are
	// split into several.
	MaxBatch int
	// ResolveGrace is how long an Alertmanager must have been up before
	// an episode it has not listed since it started counts as resolved
	// there. Alertmanager keeps alerts in memory only: one that has just
	// restarted lists none until their sources send them again, which
	// Prometheus does every minute (resend_delay) for a firing alert.
	ResolveGrace time.Duration
	// Clock gives the time and the timers.
	Clock clock.Clock
	// Logger gets one line per reconciliation and one per problem.
	Logger *slog.Logger
	// Registerer gets the metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

// DefaultOptions returns the defaults: every minute, 30s per request,
// batches of at most 10000 alerts, a grace of 5m after an Alertmanager
// starts, http.DefaultClient, the real clock, slog's default logger. It
// has no URL.
func DefaultOptions() Options {
	return Options{
		HTTPClient:   http.DefaultClient,
		Interval:     time.Minute,
		Timeout:      30 * time.Second,
		MaxBatch:     10000,
		ResolveGrace: 5 * time.Minute,
		Clock:        clock.RealClock{},
		Logger:       slog.Default(),
	}
}

// Reconciler reconciles the execution log with what the Alertmanagers
// hold. It is safe for concurrent use; reconciliations run one at a time.
type Reconciler struct {
	inbox    Inbox
	episodes Episodes
	opts     Options
	log      *slog.Logger
	m        *metrics

	mu sync.Mutex // held by a reconciliation; guards the members' state
	// members are the Alertmanagers, in the order of Options.URLs.
	members []*member
}

// New returns a Reconciler that puts alerts in inbox and reads firing
// episodes from episodes. It fails when there is no URL or one is not an
// http(s) URL.
func New(inbox Inbox, episodes Episodes, opts Options) (*Reconciler, error) {
	d := DefaultOptions()
	if opts.HTTPClient == nil {
		opts.HTTPClient = d.HTTPClient
	}
	if opts.Interval <= 0 {
		opts.Interval = d.Interval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = d.MaxBatch
	}
	if opts.ResolveGrace <= 0 {
		opts.ResolveGrace = d.ResolveGrace
	}
	if opts.Clock == nil {
		opts.Clock = d.Clock
	}
	if opts.Logger == nil {
		opts.Logger = d.Logger
	}
	if len(opts.URLs) == 0 {
		return nil, errors.New("reconcile: no Alertmanager URL")
	}
	r := &Reconciler{inbox: inbox, episodes: episodes, opts: opts, log: opts.Logger.With("component", "reconcile")}
	var errs []error
	shown := make([]string, 0, len(opts.URLs))
	for _, u := range opts.URLs {
		m, err := newMember(u, opts.HTTPClient)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile: %w", err))
			continue
		}
		r.members = append(r.members, m)
		shown = append(shown, m.url)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.m = newMetrics(opts.Registerer, shown)
	return r, nil
}

// Run reconciles at once, then Interval after each reconciliation ends,
// until ctx is done; then it returns nil. What goes wrong is logged and
// counted by Once, and tried again at the next one.
func (r *Reconciler) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		_, _ = r.Once(ctx)
		t := r.opts.Clock.NewTimer(r.opts.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C():
		}
	}
	return nil
}

// Result counts what one reconciliation found and did.
type Result struct {
	// Fetched is how many distinct alerts (by fingerprint) the
	// Alertmanagers listed.
	Fetched int
	// Firing is how many firing alerts were put in the inbox.
	Firing int
	// Suppressed is how many listed alerts were not put because every
	// Alertmanager listing them holds back their notifications (silenced,
	// inhibited, muted): a webhook would not have delivered them. They
	// still fire: their episodes are not resolved.
	Suppressed int
	// Invalid is how many listed alerts were skipped: a fingerprint that
	// does not match the labels, or what the webhook refuses too.
	Invalid int
	// Diverged is how many fingerprints have a different startsAt at
	// different Alertmanagers; the earliest was put.
	Diverged int
	// Resolved is how many resolved copies were put in the inbox: episodes
	// firing in the log that no Alertmanager lists.
	Resolved int
	// Held is how many such episodes were not resolved yet: an
	// Alertmanager started less than ResolveGrace ago and has not listed
	// them since.
	Held int
	// Failed are the Alertmanagers (URLs without credentials) that did not
	// answer. When there is one, no episode is resolved.
	Failed []string
}

// Once reconciles once. It reads the firing episodes of the log, then
// lists the alerts of every Alertmanager (concurrently), puts the resolved
// copies and then the firing alerts in the inbox, and logs one line with
// the counts. An Alertmanager that fails, or a log that cannot be read,
// stops every resolve of the round (a failed answer must never look like
// "all resolved"), not the firing alerts that were listed.
//
// Each problem is logged where it is found (a warning per Alertmanager
// that failed); the error joins them for a caller that needs to know.
func (r *Reconciler) Once(ctx context.Context) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.opts.Clock.Now()
	var errs []error
	// The log is read before Alertmanager is asked: an episode delivered
	// after the listings were taken would look resolved.
	known, err := r.episodes.Firing()
	logRead := err == nil
	if !logRead {
		err = fmt.Errorf("read the firing episodes of the execution log: %w", err)
		r.log.Error("cannot read firing episodes; resolving none this round", "err", err)
		errs = append(errs, err)
	}
	answers := r.fetch(ctx)
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("reconcile: %w", context.Cause(ctx))
	}
	now := r.opts.Clock.Now().UTC()
	res, resolved, firing, failures := r.decide(known, logRead, answers, now)
	errs = append(errs, failures...)
	if res.Resolved, err = r.put(ctx, resolved, now); err != nil {
		errs = append(errs, err)
	}
	if res.Firing, err = r.put(ctx, firing, now); err != nil {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	r.record(res, err, now)
	r.log.Info("reconciled with alertmanager", "alertmanagers", len(r.members), "failed", len(res.Failed),
		"fetched", res.Fetched, "firing", res.Firing, "suppressed", res.Suppressed, "invalid", res.Invalid,
		"diverged", res.Diverged, "resolved", res.Resolved, "held", res.Held, "took", r.opts.Clock.Since(start))
	return res, err
}

// decide merges the answers and returns what to put: the resolved copies
// of known episodes no member lists (none when a member failed or the log
// was not read) and the firing alerts. It logs and returns the failures
// of the members, and updates their state.
func (r *Reconciler) decide(known []alert.Alert, logRead bool, answers []answer, now time.Time) (res Result, resolved, firing []alert.Alert, failures []error) {
	for i, a := range answers {
		if a.err != nil {
			m := r.members[i]
			res.Failed = append(res.Failed, m.url)
			r.m.urlErrors.WithLabelValues(m.url).Inc()
			r.log.Warn("alertmanager did not answer; resolving none this round", "url", m.url, "err", a.err)
			failures = append(failures, a.err)
		}
	}
	l := r.merge(answers)
	byKey := make(map[episodeKey]alert.Alert, len(known))
	for _, a := range known {
		byKey[keyOf(a)] = a
	}
	firing = l.firing(byKey, &res)
	r.observe(answers, l, now)
	if len(res.Failed) == 0 && logRead {
		resolved, res.Held = r.resolves(known, l, now)
	}
	r.forget(byKey, resolved, logRead, now)
	return res, resolved, firing, failures
}

// record updates the metrics after a reconciliation that ended with err.
func (r *Reconciler) record(res Result, err error, now time.Time) {
	r.m.fetched.Set(float64(res.Fetched))
	r.m.resolved.Add(float64(res.Resolved))
	if err != nil {
		r.m.runs.WithLabelValues("error").Inc()
		return
	}
	r.m.runs.WithLabelValues("success").Inc()
	r.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
}

// fetch asks every member at once and returns their answers in order.
func (r *Reconciler) fetch(ctx context.Context) []answer {
	answers := make([]answer, len(r.members))
	var wg sync.WaitGroup
	for i, m := range r.members {
		wg.Go(func() { answers[i] = m.fetch(ctx, r.opts.Timeout) })
	}
	wg.Wait()
	return answers
}

// put puts alerts in the inbox in batches of at most MaxBatch, and returns
// how many it put. It stops at the first batch refused.
func (r *Reconciler) put(ctx context.Context, alerts []alert.Alert, now time.Time) (int, error) {
	n := 0
	for len(alerts) > 0 {
		chunk := slices.Clip(alerts[:min(len(alerts), r.opts.MaxBatch)])
		if _, err := r.inbox.Put(ctx, alert.Batch{ReceivedAt: now, Alerts: chunk}); err != nil {
			err = fmt.Errorf("put %d %s alerts in the inbox (%d put before): %w", len(chunk), chunk[0].Status, n, err)
			r.log.Error("cannot put alerts in the inbox; trying again at the next reconciliation", "err", err)
			return n, err
		}
		n += len(chunk)
		alerts = alerts[len(chunk):]
	}
	return n, nil
}
