package ha

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/selfheal/selfheal/alert"
)

func benchAlerts(n int, t0 time.Time) []alert.Alert {
	out := make([]alert.Alert, n)
	for i := range out {
		labels := map[string]string{
			"alertname": "CleanDataWorkerStuck", "instance": fmt.Sprintf("worker-%07d:9100", i), "job": "clean_data_worker",
			"jenkins_job": "clean_data_worker", "selfhealing": "true", "severity": "high", "team": "data", "cluster": "eu-1",
		}
		out[i] = alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: t0, Fingerprint: alert.Fingerprint(labels)}
	}
	return out
}

// BenchmarkObserve is the episode lookup of every delivered alert: a new
// episode (written, fsynced) and a duplicate (read, and its last-seen time
// written), in a log holding 100 episodes.
func BenchmarkObserve(b *testing.B) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, kind := range []string{"new", "duplicate"} {
		b.Run(kind, func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Node: "n1"})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			seed := benchAlerts(100, t0)
			for _, a := range seed[:100] {
				if _, err := l.Observe(a); err != nil {
					b.Fatal(err)
				}
			}
			fresh := benchAlerts(b.N, t0.Add(time.Hour))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				a := seed[i%100]
				if kind == "new" {
					a = fresh[i]
				}
				if _, err := l.Observe(a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClaimAppend is the log append of a decision: a claim, on disk
// (fsync) before it returns, alone (no cluster).
func BenchmarkClaimAppend(b *testing.B) {
	l, err := Open(b.TempDir(), Options{Node: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	as := benchAlerts(b.N, t0)
	b.ReportAllocs()
	b.ResetTimer()
	for _, a := range as {
		if _, won, err := l.Claim(context.Background(), Record{ID: RunID("p", a.Episode()), Playbook: "p", Episode: a.Episode(), Alert: a, LimitKey: "k"}); err != nil || !won {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserveAll observes a 100-alert batch of new episodes in one
// write, as the engine does for each accepted notification.
// BenchmarkObserveAll observes 100-alert batches of new episodes, into an
// empty episode table and into one that already holds 1e5 episodes, with
// their alerts kept (a playbook wants them) or not.
func BenchmarkObserveAll(b *testing.B) {
	for _, tc := range []struct {
		name    string
		preload int
		keep    bool
	}{{"table=0/kept", 0, true}, {"table=1e5/kept", 100_000, true}, {"table=1e5/unwanted", 100_000, false}} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Node: "n1", KeepAlert: func(alert.Alert) bool { return tc.keep }})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			for i := range tc.preload / 1000 {
				for j := range 10 {
					if _, err := l.ObserveAll(benchAlerts(100, t0.Add(-time.Duration(i*10+j+1)*time.Second))); err != nil {
						b.Fatal(err)
					}
				}
			}
			batches := make([][]alert.Alert, b.N)
			for i := range batches {
				batches[i] = benchAlerts(100, t0.Add(time.Duration(i)*time.Second))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, batch := range batches {
				if _, err := l.ObserveAll(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/alert")
		})
	}
}
