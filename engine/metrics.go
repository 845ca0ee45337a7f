package engine

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"math"

	"github.com/selfheal/selfheal/ha"
)

type metrics struct {
	episodes     *prometheus.CounterVec
	runs         *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	breakerOpen  prometheus.GaugeFunc
	breakerOpens prometheus.Counter
	stepDuration *prometheus.HistogramVec
	queued       prometheus.Gauge
	waiting      prometheus.Gauge
	storageFail  prometheus.Gauge
	storageErrs  prometheus.Counter
	takeOvers    *prometheus.CounterVec
	claimsLost   prometheus.Counter
	claimWait    prometheus.Histogram
}

// newMetrics registers the engine's metrics; breaker reads the breaker's
// state for selfheal_engine_breaker_open.
func newMetrics(reg prometheus.Registerer, breaker func() (ha.BreakerState, error)) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		episodes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_engine_episodes_total",
			Help: "Alert deliveries by what they meant for their episode: new, duplicate, stale (firing after resolved) or resolved.",
		}, []string{"kind"}),
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_engine_runs_total",
			Help: "Finished runs by playbook and outcome.",
		}, []string{"playbook", "outcome"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_engine_runs_skipped_total",
			Help: "Runs a guard did not start, by playbook and reason: rate_limited, cooldown, concurrency, limit_key.",
		}, []string{"playbook", "reason"}),
		takeOvers: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_engine_takeovers_total",
			Help: "Unfinished runs of replicas that left the cluster taken over here, by the state they were taken over in: claimed (run here), failed (interrupted mid-run, not safe to retry), verifying, skipped.",
		}, []string{"state"}),
		claimsLost: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_engine_claims_lost_total",
			Help: "Claims another replica won: it claimed the same run first (a conflict the claim protocol settled).",
		}),
		claimWait: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "selfheal_engine_claim_duration_seconds",
			Help:    "How long a claim took: on disk here, then confirmed by the other replicas.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		// Read from the log at each scrape, not set where this replica
		// opens or resets the breaker: the state is the cluster's, and a
		// replica that learns of an opening or a reset by gossip shows it.
		breakerOpen: f.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "selfheal_engine_breaker_open",
			Help: "1 while the global circuit breaker is open (on every replica, opened or reset anywhere in the cluster): every playbook is paused until POST /api/v1/breaker/reset.",
		}, func() float64 {
			st, err := breaker()
			switch {
			case err != nil:
				return math.NaN()
			case st.Open:
				return 1
			}
			return 0
		}),
		breakerOpens: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_engine_breaker_opened_total",
			Help: "Times the global circuit breaker opened.",
		}),
		stepDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "selfheal_engine_step_duration_seconds",
			Help:    "Time a step took, all attempts included, by action and outcome.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800},
		}, []string{"action", "outcome"}),
		queued: f.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_engine_runs_queued",
			Help: "Claimed runs waiting for a worker.",
		}),
		waiting: f.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_engine_runs_waiting",
			Help: "Claimed runs waiting for their delay to pass or their window to open.",
		}),
		storageFail: f.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_engine_storage_failing",
			Help: "1 while the execution log cannot be written (a full disk, say): the daemon is not ready and retries with backoff.",
		}),
		storageErrs: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_engine_storage_write_errors_total",
			Help: "Failed writes to the execution log; each is retried.",
		}),
	}
	for _, k := range []ha.Observation{ha.New, ha.Duplicate, ha.Stale, ha.Ended} {
		m.episodes.WithLabelValues(string(k))
	}
	return m
}
