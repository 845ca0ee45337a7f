package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	runs        *prometheus.CounterVec
	fetched     prometheus.Gauge
	resolved    prometheus.Counter
	lastSuccess prometheus.Gauge
	urlErrors   *prometheus.CounterVec
}

// newMetrics registers the metrics on reg (nil: nowhere). Each of urls
// (without credentials) gets its error counter at 0, so a rate over it is
// defined before the first error.
func newMetrics(reg prometheus.Registerer, urls []string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_reconcile_runs_total",
			Help: "Reconciliations with Alertmanager by result: success, or error (an Alertmanager did not answer, or the log or the inbox failed).",
		}, []string{"result"}),
		fetched: f.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_reconcile_alerts_fetched",
			Help: "Distinct alerts (by fingerprint) the Alertmanagers listed at the last reconciliation.",
		}),
		resolved: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_reconcile_resolved_total",
			Help: "Episodes recorded resolved by reconciliation: firing in the log, listed by no Alertmanager.",
		}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_reconcile_last_success_timestamp_seconds",
			Help: "When a reconciliation last succeeded, in Unix seconds; 0 before the first.",
		}),
		urlErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_reconcile_url_errors_total",
			Help: "Reconciliations in which this Alertmanager (its URL without credentials) did not answer.",
		}, []string{"url"}),
	}
	for _, r := range []string{"success", "error"} {
		m.runs.WithLabelValues(r)
	}
	for _, u := range urls {
		m.urlErrors.WithLabelValues(u)
	}
	return m
}
