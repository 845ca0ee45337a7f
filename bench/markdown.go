//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

// markdown is BENCHMARKS.md: the summary table, then each step's method
// and figures.
func (r *report) markdown(table string) string {
	var b strings.Builder
	r.mdHeader(&b, table)
	r.mdThroughput(&b)
	r.mdFixed(&b)
	r.mdAction(&b)
	r.mdFootprint(&b)
	r.mdMicro(&b)
	return b.String()
}

// mdHeader writes the machine, the times and the summary table.
func (r *report) mdHeader(b *strings.Builder, table string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	m := r.Machine
	w("# Benchmarks\n\nWritten by `make bench` (the harness is [`bench/`](bench/)) on %s, at commit %s.\n\n", m.Date, m.Commit)
	w("Machine: %s, %d cores, Linux %s, %s. ", m.CPU, m.Cores, m.Kernel, m.Go)
	w("Everything ran on 127.0.0.1, load generator and servers on the same %d cores, ", m.Cores)
	w("while other work may have been running on the machine.\n")
	if r.TotalTime > 0 {
		w("`make bench` took %s in all (the harness %s, the Go micro-benchmarks the rest).\n", r.TotalTime.Round(time.Second), r.HarnessTime.Round(time.Second))
	} else {
		w("The harness took %s.\n", r.HarnessTime.Round(time.Second))
	}
	w("\n## Summary\n\n%s", table)
}

// mdThroughput writes the A/B runs against the bare receiver.
func (r *report) mdThroughput(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("\n## Webhook throughput against the bare receiver\n\n")
	w("The bare receiver is perflab's `minserver -json std -mode decode` (`../shared/bench`): it reads the body, decodes it ")
	w("with encoding/json into the webhook struct and answers 200; nothing is stored. ")
	w("selfheal answers 202 only once the alerts are fsynced in its inbox (bbolt, group commit). ")
	w("Both are driven by the same generator (`bench/load.go`): %d keep-alive connections in a closed loop, each request a fresh payload ", r.Settings.Conns)
	w("whose alerts are all new episodes (a new `instance`, so a new fingerprint), with 8 labels, 3 annotations and a real fingerprint. ")
	w("Runs alternate selfheal and bare, %d repetitions each of %s after a %s warm-up; figures are medians of the repetitions, ", r.Settings.Reps, r.Settings.Measure, r.Settings.Warmup)
	w("ratios are of those medians. Only 2xx answers count; latencies are of 2xx answers. ")
	w("Every selfheal run starts on a fresh store. Server CPU per request is the server process' own user+system time over the run (from /proc/PID/stat), divided by the requests it answered, warm-up included in both; selfheal's includes what its engine did meanwhile (not the `/bin/true` children).\n\n")
	w("Configuration: `receiver.inbox_size: 1000000` (no run was refused for a full inbox: ")
	w("%d answers 503 at 1 alert per payload, %d at 100), `engine.workers: 4`, `engine.queue: 256`. ", r.shape("selfheal", 1).R503, r.shape("selfheal", 100).R503)
	w("In the A/B runs no playbook matches the alerts: the engine tracks each new episode (deduplication, on disk) while the load runs, on the same 2 cores; ")
	w("when a run ended it had not yet classified %.0f%% of the alerts accepted at 1 alert per payload, %.0f%% at 100. ", 100*r.shape("selfheal", 1).Behind, 100*r.shape("selfheal", 100).Behind)
	w("Then one run per size has a playbook match every alert and run `/bin/true` (rows `%s`): the engine then forks and records a run per alert and cannot keep up ", serverRuns)
	w("(%.0f%% and %.0f%% not yet classified); its own rate is bounded by the fsynced writes of each run (claim, start, each step, end) and its fork, and the backlog waits, durably, in the inbox.\n\n", 100*r.shape(serverRuns, 1).Behind, 100*r.shape(serverRuns, 100).Behind)
	w("| server | payload | rep | requests/s | alerts/s | p50 ms | p99 ms | CPU/request | 503 | engine behind |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, a := range r.Throughput {
		behind := ""
		if a.Accepted > 0 {
			behind = fmt.Sprintf("%.0f%%", 100*(1-a.EngineNew/a.Accepted))
		}
		w("| %s | %d | %d | %.0f | %.0f | %.2f | %.2f | %.0f µs | %d | %s |\n", a.Server, a.Alerts, a.Rep, a.RPS, a.AlertsPS, a.P50ms, a.P99ms, float64(a.CPUPerReq)/1e3, a.Rejected503, behind)
	}
	w("\nFor scale, perflab's own `loadgen` posting one fixed body (from `genpayload`) to the same bare receiver, same connections and duration:\n\n```\n%s\n```\n", strings.Join(r.LoadgenBare, "\n"))
}

// mdFixed writes the open-loop run at 1k requests/s.
func (r *report) mdFixed(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("\n## Webhook latency at a fixed rate\n\n")
	w("Open loop: a request is due every millisecond for 10 s (1-alert payloads, each a new episode, up to 64 connections), ")
	w("and its latency runs from when it was due, so a slow answer that holds up the next request is counted. Once with alerts no playbook matches, ")
	w("once with every alert running `/bin/true`: 1000 new runs per second is more than the engine's claim rate, so it falls behind and its backlog waits in the inbox.\n\n")
	for _, f := range r.Fixed {
		w("- `job=%q`: %d answered 2xx, %d 503; p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms; when the load stopped the engine had classified %.0f of %.0f alerts and finished %.0f runs.\n",
			f.Playbook, f.Requests, f.Rejected503, f.P50ms, f.P99ms, f.P999ms, f.Maxms, f.EngineNew, f.Accepted, f.RunsAtEnd)
	}
}

// mdAction writes the alert-to-action latencies.
func (r *report) mdAction(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("\n## Alert to action start\n\n")
	w("1-alert payloads at %d alerts/s for %s, open loop, each a new episode that a playbook matches. Its `exec` step runs ", actionRate, actionDur)
	w("`/bin/bash -c 'echo \"$EPOCHREALTIME $SELFHEAL_LABEL_INSTANCE\" >> \"$STAMPS\"'`: the latency runs from just before the POST to bash's clock ")
	w("as the step's process runs, so it includes selfheal's inbox fsync, the engine's episode write and fsynced claim, and the fork and exec of bash. ")
	w("For the cluster, 3 replicas on loopback gossip (`--cluster.listen-address=127.0.0.1:PORT`, each `--cluster.peer` the two others), ")
	w("and each payload is POSTed to all 3 at once, as an HA Alertmanager pair does; the claim protocol has one of them run it ")
	w("(its claim, and its move to running, are confirmed by the other replicas before the step starts).\n\n")
	for _, a := range r.Action {
		w("- %d node(s): %d episodes sent, %d started, %d started more than once; p50 %.2f ms, p99 %.2f ms, max %.2f ms; webhook p99 %.2f ms",
			a.Nodes, a.Sent, a.Started, a.Duplicates, a.P50ms, a.P99ms, a.Maxms, a.WebhookP99)
		if a.SettleS > 0 {
			w("; the 3 replicas were ready (settled) %.2f s after they were started", a.SettleS)
		}
		w(". Where the time goes (medians, from the run records' own times): POST to `claimedAt` %.2f ms, `claimedAt` to the step's `startedAt` %.2f ms, then to bash running %.2f ms; ",
			a.ToClaimMs, a.ToStepMs, a.ToProcessMs)
		w("starting the same bash from Go alone takes %.2f ms.\n", a.SpawnP50ms)
	}
}

// mdFootprint writes the memory, disk and start time.
func (r *report) mdFootprint(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("\n## Memory and disk per tracked episode; start time\n\n")
	w("One selfheal gets distinct episodes that no playbook matches (so each is only tracked: its episode record, 16-byte key and 26-byte value, and while it fires ")
	w("its key in `episodes_firing`, which reconciliation reads; the alert itself is kept only when a playbook matches it), as 100-alert payloads from 4 connections at full speed, ")
	w("with the default inbox (10000 alerts) and 503s retried after 5 ms, as Alertmanager retries. At each count the harness waits for the engine to have ")
	w("classified every one and the inbox to be empty, then reads VmRSS (RssAnon, RssFile) from /proc/PID/status, `go_memstats_heap_inuse_bytes`, and ")
	w("the sizes of `log.db` and `inbox.db`. The RSS includes the pages of the bbolt files it has touched (mmap, RssFile): ")
	w("page cache the kernel can reclaim, and gone after a restart (below); RssAnon is the heap and stacks. ")
	w("\"growth\" subtracts the RSS of the same daemon right after it started on an empty store (%s). ", mibOr(r.Footprint))
	w("`inbox.db` keeps the size of its peak backlog (bbolt does not shrink a file), bounded by `receiver.inbox_size`, not by the episodes. Then selfheal is stopped and started again on that store, ")
	w("and the start time runs from the process start to the first 200 of `/-/ready` (polled every 5 ms).\n\n")
	w("| episodes | time to post and process | RSS | RssAnon | RssFile | Go heap | log.db | inbox.db | RSS / episode | RSS growth / episode | RssAnon growth / episode | disk / episode |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range r.Footprint {
		n := float64(f.Episodes)
		w("| %s | %.1f s | %s | %s | %s | %s | %s | %s | %.0f B | %.0f B | %.0f B | %.0f B |\n", count(f.Episodes), f.PostS, mib(f.RSS), mib(f.RSSAnon), mib(f.RSSFile),
			mib(int64(f.HeapInuse)), mib(f.LogDB), mib(f.InboxDB), float64(f.RSS)/n, float64(f.RSS-f.RSSBase)/n, float64(f.RSSAnon-f.AnonBase)/n, float64(f.LogDB+f.InboxDB)/n)
	}
	if len(r.Buckets) > 0 && len(r.Footprint) > 0 {
		f := r.Footprint[len(r.Footprint)-1]
		w("\nWhere `log.db`'s bytes go at %s episodes (bbolt's bucket stats, read with selfheal stopped; empty buckets left out):\n\n", count(f.Episodes))
		w("| bucket | keys | bytes in use | pages allocated | in use / episode | pages / episode |\n| --- | --- | --- | --- | --- | --- |\n")
		alloc := 0
		for _, u := range r.Buckets {
			alloc += u.Alloc
			w("| `%s` | %d | %s | %s | %.0f B | %.0f B |\n", u.Name, u.Keys, mib(int64(u.Bytes)), mib(int64(u.Alloc)),
				float64(u.Bytes)/float64(f.Episodes), float64(u.Alloc)/float64(f.Episodes))
		}
		w("| free pages and meta (the rest of the file) | | | %s | | %.0f B |\n", mib(f.LogDB-int64(alloc)), float64(f.LogDB-int64(alloc))/float64(f.Episodes))
		w("\n`episodes` is the deduplication state proper; `episodes_firing` names each episode still firing, for reconciliation (with its first alert, as JSON, only when a playbook matches it: none does here).\n")
	}
	w("\nRestarted on the %s-episode store: ready in %.3f s; RSS %s, Go heap %s right after.\n", count(r.Restart.Episodes), r.Restart.ReadyS, mib(r.Restart.RSS), mib(int64(r.Restart.HeapInuse)))
}

// mdMicro writes the Go micro-benchmarks' medians and how to reproduce.
func (r *report) mdMicro(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	if r.Settings.Micro != "" {
		if s, err := microSummary(r.Settings.Micro); err == nil {
			w("\n## Go micro-benchmarks\n\n`go test -run '^$' -bench . -skip LogFootprint -benchmem -count 6 ./...` and `BenchmarkLogFootprint` once (`-benchtime 1x`); medians of the counts, from `%s`.\n\n%s", r.Settings.Micro, s)
		}
	}
	w("\n## Reproduce\n\n`make bench` (about 7 minutes on 2 cores, under 10); or only the harness: `go run ./bench` from the repository root ")
	w("(`-small` for a quick try at 1e4 and 1e5 episodes, `-only STEP` for one step; `-render results.json` writes this file again from a saved run). It needs `../shared/bench` (perflab) next to the repository. ")
	w("Raw results go to `%s` (`results.json`, every server's log; the stores are removed between steps), never into the repository.\n", r.Settings.Work)
}
