package ha

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/selfheal/selfheal/alert"
)

// fill writes n finished runs, each with its episode, through MergeState in
// batches (one transaction each), as a replica's log fills over time: a
// real 8-label alert per run.
func fill(b *testing.B, l *Log, n int, t0 time.Time) {
	b.Helper()
	const batch = 10000
	for start := 0; start < n; start += batch {
		var st fullState
		for i := start; i < min(start+batch, n); i++ {
			labels := map[string]string{
				"alertname": "CleanDataWorkerStuck", "instance": fmt.Sprintf("worker-%07d:9100", i), "job": "clean_data_worker",
				"jenkins_job": "clean_data_worker", "selfhealing": "true", "severity": "high", "team": "data", "cluster": "eu-1",
			}
			a := alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: t0, Fingerprint: alert.Fingerprint(labels),
				Annotations: map[string]string{"summary": "clean_data_worker is stuck"}}
			ep := a.Episode()
			at := t0.Add(time.Duration(i) * time.Millisecond)
			st.Records = append(st.Records, Record{
				ID: RunID("clean-data-worker", ep), Playbook: "clean-data-worker", Episode: ep, Alert: a, State: Succeeded,
				Node: "n1", LimitKey: "clean_data_worker", ClaimedAt: at, StartedAt: at, FinishedAt: at.Add(time.Second),
				Steps: []StepRecord{{Name: "cleanup", Action: "exec", State: Succeeded, Attempts: 1, StartedAt: at, FinishedAt: at.Add(time.Second), Summary: "ran /usr/local/bin/clean-data"}},
			})
			st.Episodes = append(st.Episodes, episodeDelta{Key: ep.Key(), Status: alert.Firing})
		}
		data, err := json.Marshal(st)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.MergeState(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogFootprint fills a log with 1e5 and 1e6 runs and reports its
// size on disk per run, the Go heap in use once it is reopened, how long
// the reopen (with the read of unfinished runs a start does) and one full
// state (push/pull) take, and what reading a minute of runs for one key
// (a limit's look-back) costs per run read. Run it once
// (make bench does: -benchtime 1x).
func BenchmarkLogFootprint(b *testing.B) {
	for _, n := range []int{1e5, 1e6} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			l, err := Open(dir, Options{Node: "n1"})
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			began := time.Now()
			fill(b, l, n, t0)
			filled := time.Since(began)
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(dir, "log.db"))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.ReportMetric(filled.Seconds(), "fill-s")
				b.ReportMetric(float64(fi.Size())/float64(n), "disk-B/run")
				opened := time.Now()
				l, err = Open(dir, Options{Node: "n1"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.Unfinished(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(opened).Seconds(), "open+unfinished-s")
				// A limit's look-back: the last hour of runs for one key.
				last := t0.Add(time.Duration(n) * time.Millisecond)
				kr := time.Now()
				runs, err := l.KeyRuns("clean-data-worker", "clean_data_worker", last.Add(-time.Minute))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(kr).Microseconds())/float64(max(len(runs), 1)), "keyruns-µs/run")
				pp := time.Now()
				st, err := l.LocalState()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(pp).Seconds(), "fullstate-s")
				b.ReportMetric(float64(len(st)), "fullstate-B")
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapInuse), "heap-inuse-B")
				l.Close()
			}
		})
	}
}
