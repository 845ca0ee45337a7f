package reconcile

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/selfheal/selfheal/alert"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// fakeAM serves GET /api/v2/alerts and /api/v2/status from captured
// bodies. Safe for concurrent use.
type fakeAM struct {
	t      *testing.T
	mu     sync.Mutex
	alerts []byte
	status []byte
	code   int // non-zero: every request answers this, with a JSON message
	// statusCode non-zero: only /api/v2/status answers it.
	statusCode int
	queries    []string
}

func newFakeAM(t *testing.T, alerts, status string) *fakeAM {
	return &fakeAM{t: t, alerts: testdata(t, alerts), status: testdata(t, status)}
}

func (f *fakeAM) set(fn func(f *fakeAM)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	code, body := f.code, []byte(`"alertmanager is sad"`)
	switch r.URL.Path {
	case "/api/v2/alerts":
		f.queries = append(f.queries, r.URL.RawQuery)
		if code == 0 {
			code, body = http.StatusOK, f.alerts
		}
	case "/api/v2/status":
		if code == 0 && f.statusCode != 0 {
			code = f.statusCode
		}
		if code == 0 {
			code, body = http.StatusOK, f.status
		}
	default:
		code, body = http.StatusNotFound, []byte(`"not found"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func (f *fakeAM) serve() string {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// fakeInbox keeps the batches put. err, when set, refuses them.
type fakeInbox struct {
	mu      sync.Mutex
	batches []alert.Batch
	err     error
}

func (in *fakeInbox) Put(_ context.Context, b alert.Batch) (alert.Batch, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err != nil {
		return alert.Batch{}, in.err
	}
	b.Seq = uint64(len(in.batches) + 1)
	in.batches = append(in.batches, b)
	return b, nil
}

func (in *fakeInbox) take() []alert.Batch {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.batches
	in.batches = nil
	return out
}

type fakeEpisodes struct {
	firing []alert.Alert
	err    error
}

func (e *fakeEpisodes) Firing() ([]alert.Alert, error) { return e.firing, e.err }

// rig is a Reconciler over fakes, with its log and metrics.
type rig struct {
	r     *Reconciler
	inbox *fakeInbox
	eps   *fakeEpisodes
	clock *clocktesting.FakeClock
	reg   *prometheus.Registry
	log   *bytes.Buffer
}

func newRig(t *testing.T, now time.Time, urls ...string) *rig {
	t.Helper()
	g := &rig{inbox: &fakeInbox{}, eps: &fakeEpisodes{}, clock: clocktesting.NewFakeClock(now),
		reg: prometheus.NewPedanticRegistry(), log: &bytes.Buffer{}}
	var err error
	g.r, err = New(g.inbox, g.eps, Options{URLs: urls, Clock: g.clock, Registerer: g.reg,
		Logger: slog.New(slog.NewTextHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	return g
}

// firing is the alert as the engine got it from a webhook: startsAt to
// the nanosecond.
func firing(fp, name string, starts time.Time) alert.Alert {
	return alert.Alert{Status: alert.Firing, Labels: map[string]string{"alertname": name}, StartsAt: starts, Fingerprint: fp}
}

func fingerprints(b alert.Batch) []string {
	out := make([]string, len(b.Alerts))
	for i, a := range b.Alerts {
		out[i] = a.Fingerprint + "@" + a.StartsAt.Format(time.RFC3339Nano) + " " + string(a.Status)
	}
	return out
}

func at(fp string, starts time.Time, status alert.Status) string {
	return fp + "@" + starts.Format(time.RFC3339Nano) + " " + string(status)
}

// inProcess serves requests with a handler, without a network.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, r)
	return w.Result(), nil
}
