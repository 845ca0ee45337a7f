package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	members        prometheus.Gauge
	settled        prometheus.Gauge
	sent           *prometheus.CounterVec
	received       *prometheus.CounterVec
	askDuration    prometheus.Histogram
	askTimeouts    prometheus.Counter
	pushPulls      prometheus.Counter
	fullStateBytes prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_cluster_members", Help: "Members of the cluster this replica sees alive or suspect, itself included."}),
		settled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_cluster_settled", Help: "1 once this replica has exchanged full state with a member (or has no peers, or waited the settle timeout)."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_cluster_messages_sent_total", Help: "Messages sent to members, by type: gossip (a change), request (a claim), answer."}, []string{"type"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_cluster_messages_received_total", Help: "Messages received from members, by type."}, []string{"type"}),
		askDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "selfheal_cluster_claim_wait_seconds", Help: "How long a claim waited for the other members' answers.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		askTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_cluster_claim_timeouts_total", Help: "Claims that went on without every member's answer (one did not answer within the ask timeout)."}),
		pushPulls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_cluster_full_state_merges_total", Help: "Full states merged from members (push/pull)."}),
		fullStateBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "selfheal_cluster_full_state_bytes", Help: "Size of the last full state this replica sent."}),
	}
	if reg != nil {
		reg.MustRegister(m.members, m.settled, m.sent, m.received, m.askDuration, m.askTimeouts, m.pushPulls, m.fullStateBytes)
	}
	return m
}
