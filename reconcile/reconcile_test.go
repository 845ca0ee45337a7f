package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/selfheal/selfheal/alert"
)

// The captured answers (testdata/README.md): member a started at
// 09:33:09.127, b at 09:33:37.486; the alerts started at 09:23:18.775.
var (
	startedA  = time.Date(2026, 12, 7, 9, 33, 9, 127e6, time.UTC)
	startsAt  = time.Date(2026, 12, 7, 9, 23, 18, 775e6, time.UTC)
	afterBoth = time.Date(2026, 12, 7, 9, 33, 40, 0, time.UTC) // both up for less than ResolveGrace
	longAfter = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)  // both up for longer
)

// The fingerprints of the captured alerts.
const (
	fpDiskFull   = "30e1c1908fa30573"
	fpCleanData  = "ae801e89cbc3f5a2"
	fpNodeDown   = "c91b1ac651db4959"
	fpPodLeaking = "e6d8017e7e6c7e47"
)

// TestMergeAcrossHAPair: both members of a pair list CleanDataWorkerStuck
// and NodeDown; each is put once, NodeDown with the earlier startsAt.
// Suppressed alerts (inhibited DiskFull, silenced PodLeaking) are not
// put: Alertmanager would not have sent them.
func TestMergeAcrossHAPair(t *testing.T) {
	a, b := newFakeAM(t, "alerts-a.json", "status-a.json"), newFakeAM(t, "alerts-b.json", "status-b.json")
	g := newRig(t, afterBoth, a.serve(), b.serve())
	res, err := g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, Result{Fetched: 4, Firing: 2, Suppressed: 2, Diverged: 1}, res)

	batches := g.inbox.take()
	require.Len(t, batches, 1, "the firing alerts go as one batch")
	require.Equal(t, afterBoth, batches[0].ReceivedAt)
	require.Equal(t, []string{at(fpCleanData, startsAt, alert.Firing), at(fpNodeDown, startsAt, alert.Firing)}, fingerprints(batches[0]))
	require.Equal(t, alert.Alert{
		Status: alert.Firing,
		Labels: map[string]string{"alertname": "CleanDataWorkerStuck", "instance": "worker-01:9100", "jenkins_job": "clean_data_worker",
			"job": "clean_data_worker", "selfhealing": "true", "severity": "high"},
		Annotations:  map[string]string{"summary": "clean_data_worker is stuck on worker-01:9100"},
		StartsAt:     startsAt,
		GeneratorURL: "http://prometheus:9090/graph?g0.expr=clean_data_worker_stuck+%3D%3D+1&g0.tab=1",
		Fingerprint:  fpCleanData,
	}, batches[0].Alerts[0], "as a webhook delivers it: endsAt zero")

	for _, f := range []*fakeAM{a, b} {
		require.Equal(t, []string{"active=true&inhibited=true&silenced=true&unprocessed=true"}, f.queries)
	}
	require.Equal(t, 4.0, testutil.ToFloat64(g.r.m.fetched))
	require.Equal(t, 1.0, testutil.ToFloat64(g.r.m.runs.WithLabelValues("success")))
	require.Equal(t, float64(afterBoth.Unix()), testutil.ToFloat64(g.r.m.lastSuccess))
	require.Contains(t, g.log.String(), `level=DEBUG msg="alertmanagers list different startsAt for one alert; taking the earliest" component=reconcile fingerprint=`+fpNodeDown)
	require.Equal(t, 1, strings.Count(g.log.String(), "level=INFO"), "one line per reconciliation:\n%s", g.log)
	require.Contains(t, g.log.String(), `msg="reconciled with alertmanager" component=reconcile alertmanagers=2 failed=0 fetched=4 firing=2 suppressed=2 invalid=0 diverged=1 resolved=0 held=0`)
}

// TestActiveAtOneMemberIsPut: members of a pair may disagree for a moment
// on a silence (it is gossiped); the member that sees the alert active
// would notify, so it is put, whichever member answers first.
func TestActiveAtOneMemberIsPut(t *testing.T) {
	unsilenced := bytes.Replace(testdata(t, "alerts-a.json"),
		[]byte(`"silencedBy":["2b710d6f-659b-4364-8e1d-8fcd44ceb1fb"],"state":"suppressed"`), []byte(`"silencedBy":[],"state":"active"`), 1)
	for _, order := range []string{"silenced first", "active first"} {
		t.Run(order, func(t *testing.T) {
			silenced, active := newFakeAM(t, "alerts-a.json", "status-a.json"), newFakeAM(t, "alerts-a.json", "status-b.json")
			active.set(func(f *fakeAM) { f.alerts = unsilenced })
			urls := []string{silenced.serve(), active.serve()}
			if order == "active first" {
				urls[0], urls[1] = urls[1], urls[0]
			}
			g := newRig(t, longAfter, urls...)
			res, err := g.r.Once(t.Context())
			require.NoError(t, err)
			require.Equal(t, Result{Fetched: 4, Firing: 3, Suppressed: 1}, res)
			require.Equal(t, []string{at(fpCleanData, startsAt, alert.Firing), at(fpNodeDown, startsAt, alert.Firing),
				at(fpPodLeaking, startsAt, alert.Firing)}, fingerprints(g.inbox.take()[0]))
		})
	}
}

// TestResolveSynthesis: of the episodes the log believes firing, the one
// no member lists (NodeDown of an earlier firing) gets a resolved copy,
// put before the firing alerts; those still listed, silenced or not, do
// not. An episode the webhook gave with nanoseconds is the one the API
// lists with milliseconds: it is neither resolved nor put as new.
func TestResolveSynthesis(t *testing.T) {
	a := newFakeAM(t, "alerts-a.json", "status-a.json")
	g := newRig(t, longAfter, a.serve())
	precise := startsAt.Add(123456 * time.Nanosecond)
	earlier := startsAt.Add(-time.Hour)
	g.eps.firing = []alert.Alert{
		firing(fpCleanData, "CleanDataWorkerStuck", precise),
		firing(fpNodeDown, "NodeDown", earlier),
		firing(fpPodLeaking, "PodLeaking", startsAt),
	}
	res, err := g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, Result{Fetched: 4, Firing: 2, Suppressed: 2, Resolved: 1}, res)
	batches := g.inbox.take()
	require.Len(t, batches, 2)
	require.Equal(t, []string{at(fpNodeDown, earlier, alert.Resolved)}, fingerprints(batches[0]))
	require.Equal(t, longAfter, batches[0].Alerts[0].EndsAt, "resolved now")
	require.Equal(t, "NodeDown", batches[0].Alerts[0].Name(), "the alert the log holds")
	require.Equal(t, []string{at(fpCleanData, precise, alert.Firing), at(fpNodeDown, startsAt, alert.Firing)}, fingerprints(batches[1]),
		"the log's startsAt, to the nanosecond")
	require.Equal(t, 1.0, testutil.ToFloat64(g.r.m.resolved))
}

// TestResolveAfterAlertmanagerDropsIt follows a real resolve: a member up
// for seconds lists CleanDataWorkerStuck, then (after the POST of
// post-a-resolve.json) no longer does. It listed the episode since it
// started, so the episode is resolved at once, without waiting out
// ResolveGrace.
func TestResolveAfterAlertmanagerDropsIt(t *testing.T) {
	a := newFakeAM(t, "alerts-a.json", "status-a.json")
	g := newRig(t, afterBoth, a.serve())
	g.eps.firing = []alert.Alert{firing(fpCleanData, "CleanDataWorkerStuck", startsAt)}
	_, err := g.r.Once(t.Context())
	require.NoError(t, err)
	g.inbox.take()

	a.set(func(f *fakeAM) { f.alerts = testdata(t, "alerts-a-resolved.json") })
	g.clock.Step(time.Second)
	res, err := g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, res.Resolved)
	require.Equal(t, []string{at(fpCleanData, startsAt, alert.Resolved)}, fingerprints(g.inbox.take()[0]))
}

// TestRestartedAlertmanagerHoldsResolves: an Alertmanager that restarts
// lists nothing until Prometheus sends its alerts again. Episodes it has
// not listed since are held until it has been up for ResolveGrace; one it
// lists again is not resolved at all.
func TestRestartedAlertmanagerHoldsResolves(t *testing.T) {
	a := newFakeAM(t, "alerts-a.json", "status-a.json")
	g := newRig(t, afterBoth, a.serve())
	g.eps.firing = []alert.Alert{firing(fpCleanData, "CleanDataWorkerStuck", startsAt), firing(fpNodeDown, "NodeDown", startsAt)}
	_, err := g.r.Once(t.Context())
	require.NoError(t, err)
	g.inbox.take()

	restarted := afterBoth.Add(time.Minute)
	a.set(func(f *fakeAM) {
		f.alerts = []byte("[]\n")
		f.status = bytes.Replace(f.status, []byte(startedA.Format("2006-01-02T15:04:05.000Z")), []byte(restarted.Format("2006-01-02T15:04:05.000Z")), 1)
	})
	g.clock.SetTime(restarted.Add(10 * time.Second))
	res, err := g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, Result{Held: 2}, res, "an empty answer of a member that just started says nothing")
	require.Empty(t, g.inbox.take())

	// Prometheus has sent CleanDataWorkerStuck again; NodeDown has ended.
	cleanOnly := filterCapture(t, "alerts-a.json", fpCleanData)
	a.set(func(f *fakeAM) { f.alerts = cleanOnly })
	g.clock.SetTime(restarted.Add(time.Minute))
	res, err = g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, Result{Fetched: 1, Firing: 1, Held: 1}, res)
	g.inbox.take()

	g.clock.SetTime(restarted.Add(5 * time.Minute))
	res, err = g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, Result{Fetched: 1, Firing: 1, Resolved: 1}, res, "up for ResolveGrace: what it does not list has ended")
	require.Equal(t, []string{at(fpNodeDown, startsAt, alert.Resolved)}, fingerprints(g.inbox.take()[0]))
}

// filterCapture returns the alerts of a capture with the fingerprints fps,
// as JSON.
func filterCapture(t *testing.T, name string, fps ...string) []byte {
	var list []map[string]any
	require.NoError(t, json.Unmarshal(testdata(t, name), &list))
	var out []map[string]any
	for _, a := range list {
		for _, fp := range fps {
			if a["fingerprint"] == fp {
				out = append(out, a)
			}
		}
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return b
}

// TestFailureSuppressesResolves: when any member fails, or the log cannot
// be read, nothing is resolved (NodeDown of an earlier firing stays
// firing), but the firing alerts that were listed are still put.
func TestFailureSuppressesResolves(t *testing.T) {
	earlier := startsAt.Add(-time.Hour)
	for _, c := range []struct {
		name    string
		breakB  func(f *fakeAM)
		logErr  error
		wantErr string
		failed  bool
	}{
		{"a member answers 503", func(f *fakeAM) { f.code = http.StatusServiceUnavailable }, nil,
			"GET /api/v2/alerts: status 503 Service Unavailable: alertmanager is sad", true},
		{"a member lists, then fails its status", func(f *fakeAM) { f.statusCode = http.StatusInternalServerError }, nil,
			"GET /api/v2/status: status 500 Internal Server Error: alertmanager is sad", true},
		{"the log cannot be read", func(*fakeAM) {}, errors.New("disk on fire"),
			"read the firing episodes of the execution log: disk on fire", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newFakeAM(t, "alerts-a.json", "status-a.json"), newFakeAM(t, "alerts-b.json", "status-b.json")
			b.set(c.breakB)
			urlB := b.serve()
			g := newRig(t, longAfter, a.serve(), urlB)
			g.eps.firing, g.eps.err = []alert.Alert{firing(fpNodeDown, "NodeDown", earlier)}, c.logErr
			res, err := g.r.Once(t.Context())
			require.ErrorContains(t, err, c.wantErr)
			require.Zero(t, res.Resolved)
			require.Equal(t, 2, res.Firing, "what was listed is put")
			batches := g.inbox.take()
			require.Len(t, batches, 1)
			for _, al := range batches[0].Alerts {
				require.Equal(t, alert.Firing, al.Status)
			}
			require.Equal(t, 1.0, testutil.ToFloat64(g.r.m.runs.WithLabelValues("error")))
			require.Zero(t, testutil.ToFloat64(g.r.m.lastSuccess))
			if c.failed {
				require.Equal(t, []string{urlB}, res.Failed)
				require.ErrorContains(t, err, "alertmanager "+urlB+": ")
				require.Equal(t, 1.0, testutil.ToFloat64(g.r.m.urlErrors.WithLabelValues(urlB)))
				require.Contains(t, g.log.String(), `level=WARN msg="alertmanager did not answer; resolving none this round" component=reconcile url=`+urlB)
			}
		})
	}
}

// TestUnreachableAlertmanager: a member nothing listens at fails the
// round like one that answers an error.
func TestUnreachableAlertmanager(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g := newRig(t, longAfter, dead.URL)
	g.eps.firing = []alert.Alert{firing(fpNodeDown, "NodeDown", startsAt)}
	res, err := g.r.Once(t.Context())
	require.ErrorContains(t, err, "alertmanager "+dead.URL+": GET /api/v2/alerts: ")
	require.ErrorContains(t, err, "connection refused")
	require.Equal(t, Result{Failed: []string{dead.URL}}, res)
	require.Empty(t, g.inbox.take(), "nothing listed, nothing resolved")
}

// TestFingerprintMismatchSkipped: an alert whose fingerprint is not the
// one of its labels is logged and not put; the others are. Its episode
// still counts as listed: it is not resolved.
func TestFingerprintMismatchSkipped(t *testing.T) {
	a := newFakeAM(t, "alerts-a.json", "status-a.json")
	a.set(func(f *fakeAM) {
		f.alerts = bytes.Replace(f.alerts, []byte(`"fingerprint":"`+fpCleanData+`"`), []byte(`"fingerprint":"0123456789abcdef"`), 1)
	})
	g := newRig(t, longAfter, a.serve())
	g.eps.firing = []alert.Alert{firing(fpCleanData, "CleanDataWorkerStuck", startsAt)}
	res, err := g.r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, Result{Fetched: 3, Firing: 1, Suppressed: 2, Invalid: 1}, res)
	require.Equal(t, []string{at(fpNodeDown, startsAt, alert.Firing)}, fingerprints(g.inbox.take()[0]))
	require.Contains(t, g.log.String(), `level=WARN msg="skipping an alert listed by alertmanager" component=reconcile url=`)
	require.Contains(t, g.log.String(), `fingerprint=0123456789abcdef alertname=CleanDataWorkerStuck err="fingerprint: \"0123456789abcdef\" does not match the labels (want \"`+fpCleanData+`\")"`)
}

// TestBatchesAndFullInbox: more firing alerts than MaxBatch go in several
// batches; an inbox that refuses them fails the round, to be tried again.
func TestBatchesAndFullInbox(t *testing.T) {
	a := newFakeAM(t, "alerts-a.json", "status-a.json")
	inbox := &fakeInbox{}
	r, err := New(inbox, &fakeEpisodes{}, Options{URLs: []string{a.serve()}, MaxBatch: 1,
		Clock: clocktesting.NewFakeClock(longAfter), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	res, err := r.Once(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, res.Firing)
	batches := inbox.take()
	require.Len(t, batches, 2)
	require.Equal(t, []string{at(fpCleanData, startsAt, alert.Firing)}, fingerprints(batches[0]))
	require.Equal(t, []string{at(fpNodeDown, startsAt, alert.Firing)}, fingerprints(batches[1]))

	inbox.err = errors.New("inbox full")
	res, err = r.Once(t.Context())
	require.EqualError(t, err, "put 1 firing alerts in the inbox (0 put before): inbox full")
	require.Zero(t, res.Firing)
}

// TestRunReconcilesPeriodically: Run reconciles at once, then Interval
// after each reconciliation ends (a slow answer delays the next one), and
// returns nil when its context ends. Fake time (synctest); the API is
// served in-process, so every wait is durable.
func TestRunReconcilesPeriodically(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFakeAM(t, "alerts-a.json", "status-a.json")
		slow := time.Duration(0)
		var rounds []time.Time
		var mu sync.Mutex
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v2/alerts" {
				mu.Lock()
				rounds = append(rounds, time.Now())
				d := slow
				mu.Unlock()
				time.Sleep(d)
			}
			a.ServeHTTP(w, r)
		})
		inbox := &fakeInbox{}
		r, err := New(inbox, &fakeEpisodes{}, Options{URLs: []string{"http://am.example:9093"}, Interval: 10 * time.Second,
			HTTPClient: &http.Client{Transport: inProcess{handler}}, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		begin := time.Now()
		go func() { done <- r.Run(ctx) }()

		waitRounds := func(d time.Duration) []time.Duration {
			time.Sleep(d)
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			out := make([]time.Duration, len(rounds))
			for i, t := range rounds {
				out[i] = t.Sub(begin)
			}
			return out
		}
		require.Equal(t, []time.Duration{0}, waitRounds(0), "at once")
		require.Equal(t, []time.Duration{0}, waitRounds(10*time.Second-time.Nanosecond))
		require.Equal(t, []time.Duration{0, 10 * time.Second}, waitRounds(time.Nanosecond))
		mu.Lock()
		slow = 3 * time.Second
		mu.Unlock()
		require.Equal(t, []time.Duration{0, 10 * time.Second, 20 * time.Second}, waitRounds(10*time.Second))
		require.Len(t, waitRounds(12*time.Second), 3, "the next starts 10s after the slow one ended")
		require.Equal(t, []time.Duration{0, 10 * time.Second, 20 * time.Second, 33 * time.Second}, waitRounds(time.Second))
		waitRounds(3 * time.Second) // the fourth one ends
		require.Len(t, inbox.take(), 4, "each reconciliation puts the firing alerts")

		cancel()
		require.NoError(t, <-done)
	})
}

// TestSecretsNeverShown: a password in a URL is sent as basic auth, and
// neither it nor the basic-auth credential appears in errors, logs or
// metric labels, even when Alertmanager (or a proxy) echoes them back.
func TestSecretsNeverShown(t *testing.T) {
	const password = "am-PASSWORD-42"
	var gotUser, gotPass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(fmt.Sprintf("bad credentials: %s (%s:%s)", r.Header.Get("Authorization"), gotUser, gotPass))
	}))
	t.Cleanup(srv.Close)
	withPassword := strings.Replace(srv.URL, "http://", "http://selfheal:"+password+"@", 1) + "/am/?tenant=x"
	g := newRig(t, longAfter, withPassword)
	_, err := g.r.Once(t.Context())
	require.Equal(t, "selfheal", gotUser)
	require.Equal(t, password, gotPass)
	require.EqualError(t, err, "alertmanager "+srv.URL+"/am: GET /api/v2/alerts: status 401 Unauthorized: bad credentials: Basic <secret> (selfheal:<secret>)")
	metrics, gerr := testutil.CollectAndFormat(g.reg, expfmt.TypeTextPlain, "selfheal_reconcile_url_errors_total")
	require.NoError(t, gerr)
	require.Contains(t, string(metrics), `selfheal_reconcile_url_errors_total{url="`+srv.URL+`/am"} 1`)
	for what, out := range map[string]string{"error": err.Error(), "log": g.log.String(), "metrics": string(metrics)} {
		require.NotContains(t, out, "PASSWORD", what)
		require.NotContains(t, out, "c2VsZmhlYWw6", what, "base64 of selfheal:")
	}

	_, err = New(&fakeInbox{}, &fakeEpisodes{}, Options{URLs: []string{"ftp://selfheal:" + password + "@am"}})
	require.EqualError(t, err, `reconcile: alertmanager URL "ftp://am": want an http(s) URL like http://alertmanager:9093`)
}

func TestNewNeedsURLs(t *testing.T) {
	_, err := New(&fakeInbox{}, &fakeEpisodes{}, Options{})
	require.EqualError(t, err, "reconcile: no Alertmanager URL")
}

// TestMetricsArePedantic: the metrics pass a pedantic registry, every
// url's error counter exists at 0 and both results are exported.
func TestMetricsArePedantic(t *testing.T) {
	g := newRig(t, longAfter, "http://am-0:9093", "https://am-1:9093/")
	n, err := testutil.GatherAndCount(g.reg)
	require.NoError(t, err)
	require.Equal(t, 7, n, "runs{success,error}, fetched, resolved, last success, url_errors x2")
	require.NoError(t, testutil.GatherAndCompare(g.reg, strings.NewReader(`
# HELP selfheal_reconcile_url_errors_total Reconciliations in which this Alertmanager (its URL without credentials) did not answer.
# TYPE selfheal_reconcile_url_errors_total counter
selfheal_reconcile_url_errors_total{url="http://am-0:9093"} 0
selfheal_reconcile_url_errors_total{url="https://am-1:9093"} 0
`), "selfheal_reconcile_url_errors_total"))
}
