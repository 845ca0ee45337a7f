//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is a webhook endpoint on the loopback interface.
type target struct {
	url   string
	token string // sent as a bearer token when set
}

// client is a keep-alive HTTP client with at most conns connections to
// the one host. It refuses any target that is not on the loopback.
func client(t target, conns int) (*http.Client, error) {
	u, err := url.Parse(t.url)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("refusing non-loopback target %q", t.url)
	}
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// outcome is how one request ended.
type outcome int

const (
	ok2xx outcome = iota
	full503
	failed
)

// post sends body and returns its outcome; any status but 2xx and 503 is
// a failure (a 400 would mean the payload is wrong, so the run is void).
func post(ctx context.Context, c *http.Client, t target, body []byte) (outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return failed, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return failed, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return ok2xx, nil
	case resp.StatusCode == http.StatusServiceUnavailable:
		return full503, nil
	default:
		return failed, fmt.Errorf("%s: %s: %s", t.url, resp.Status, bytes.TrimSpace(msg))
	}
}

// loadResult is what one load run measured. Latencies are of 2xx answers only.
type loadResult struct {
	OK, Rejected503, Failed int
	Elapsed                 time.Duration
	Lat                     []time.Duration // sorted
	FirstErr                string
}

// rps is the rate of 2xx answers.
func (r loadResult) rps() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// pct is the p-th quantile of the latencies (nearest rank).
func (r loadResult) pct(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	return r.Lat[int(p*float64(len(r.Lat)-1)+0.5)]
}

// tally collects outcomes from many goroutines.
type tally struct {
	mu       sync.Mutex
	res      loadResult
	failures atomic.Int64
}

func (t *tally) add(o outcome, lat time.Duration, err error, record bool) {
	if !record {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch o {
	case ok2xx:
		t.res.OK++
		t.res.Lat = append(t.res.Lat, lat)
	case full503:
		t.res.Rejected503++
	default:
		t.res.Failed++
		if t.res.FirstErr == "" && err != nil {
			t.res.FirstErr = err.Error()
		}
	}
}

// closedLoop runs conns connections, each posting a fresh payload of n
// alerts as soon as the previous answer came, for warmup (not recorded)
// then d, and at most maxReq requests in all.
// With retry set, a payload answered 503 is posted again after 5 ms, as
// Alertmanager retries a full receiver (it backs off longer), and counts
// once, by its final answer.
func closedLoop(t target, g *Generator, n, conns int, warmup, d time.Duration, maxReq int64, retry bool) (loadResult, error) {
	c, err := client(t, conns)
	if err != nil {
		return loadResult{}, err
	}
	defer c.CloseIdleConnections()
	var issued atomic.Int64
	run := func(d time.Duration, record bool) loadResult {
		var tl tally
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		start := time.Now()
		deadline := start.Add(d)
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				var buf []byte
				for time.Now().Before(deadline) && issued.Add(1) <= maxReq {
					buf, _ = g.Payload(buf[:0], n)
					t0 := time.Now()
					o, err := post(ctx, c, t, buf)
					for retry && o == full503 && ctx.Err() == nil {
						time.Sleep(5 * time.Millisecond)
						o, err = post(ctx, c, t, buf)
					}
					tl.add(o, time.Since(t0), err, record)
					if o == failed && tl.failures.Add(1) > 100 {
						return
					}
				}
			})
		}
		wg.Wait()
		tl.res.Elapsed = time.Since(start)
		slices.Sort(tl.res.Lat)
		return tl.res
	}
	if warmup > 0 {
		run(warmup, false)
	}
	issued.Store(0)
	return run(d, true), nil
}

// openLoop posts a fresh payload of one alert at a fixed rate for d,
// whatever the answers, through at most conns connections. Latency runs
// from when a request was due, not when it went out, so a slow answer
// that delays the next request is counted (no coordinated omission).
// onSend, when set, is called with the instance label of each request's
// alert just before it is posted to every target.
func openLoop(ts []target, g *Generator, rate float64, d time.Duration, conns int, onSend func(string, time.Time)) (loadResult, error) {
	clients := make([]*http.Client, len(ts))
	for i, t := range ts {
		c, err := client(t, conns)
		if err != nil {
			return loadResult{}, err
		}
		defer c.CloseIdleConnections()
		clients[i] = c
	}
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, total)
	var tl tally
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			var buf []byte
			for at := range due {
				var inst string
				buf, inst = g.Payload(buf[:0], 1)
				if onSend != nil {
					onSend(inst, time.Now())
				}
				var wgPost sync.WaitGroup
				for i := range ts {
					wgPost.Go(func() {
						o, err := post(ctx, clients[i], ts[i], buf)
						tl.add(o, time.Since(at), err, true)
					})
				}
				wgPost.Wait()
			}
		})
	}
	start := time.Now()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		due <- at
	}
	close(due)
	wg.Wait()
	tl.res.Elapsed = time.Since(start)
	slices.Sort(tl.res.Lat)
	return tl.res, nil
}
