package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
)

// history is a History in memory: the runs per key, oldest first.
type history map[string][]ha.Record

func (h history) KeyRuns(_, key string, _ time.Time) ([]ha.Record, error) { return h[key], nil }
func (history) Breaker() (ha.BreakerState, error)                         { return ha.BreakerState{}, nil }

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

func ran(at time.Duration, state ha.State) ha.Record {
	return ha.Record{State: state, ClaimedAt: t0.Add(at)}
}

func limited(l playbooks.Limits) *playbooks.Playbook {
	return &playbooks.Playbook{Name: "clean", Limits: &l}
}

func instance(name string) alert.Alert {
	return alert.Alert{Status: alert.Firing, Labels: map[string]string{"alertname": "DiskFull", "instance": name}, StartsAt: t0}
}

func TestDecideRateLimitBoundaries(t *testing.T) {
	pb := limited(playbooks.Limits{MaxRuns: 3, Per: time.Hour})
	three := history{"clean": {ran(0, ha.Succeeded), ran(10*time.Minute, ha.Failed), ran(20*time.Minute, ha.Succeeded)}}
	for _, tc := range []struct {
		name string
		h    history
		at   time.Duration
		want Decision
	}{
		{"no runs yet", history{}, 0, Decision{Verdict: Run, Key: "clean"}},
		{"two in the window", history{"clean": three["clean"][:2]}, 30 * time.Minute, Decision{Verdict: Run, Key: "clean"}},
		{"three in the window", three, 30 * time.Minute, Decision{Verdict: Skip, Reason: ReasonRateLimited, Key: "clean",
			NextAllowed: t0.Add(time.Hour),
			Explain:     "rate limited: 3 runs for this key in the last 1h (max_runs: 3); next allowed at 2026-12-07T10:00:00Z"}},
		{"a nanosecond before the oldest leaves", three, time.Hour - 1, Decision{Verdict: Skip, Reason: ReasonRateLimited, Key: "clean",
			NextAllowed: t0.Add(time.Hour),
			Explain:     "rate limited: 3 runs for this key in the last 1h (max_runs: 3); next allowed at 2026-12-07T10:00:00Z"}},
		{"the oldest claimed exactly per ago has left", three, time.Hour, Decision{Verdict: Run, Key: "clean"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(t0.Add(tc.at), tc.h, instance("w1"), pb)
			require.NoError(t, err)
			require.Equal(t, tc.want, d)
		})
	}
}

func TestDecideCooldownPerKey(t *testing.T) {
	pb := limited(playbooks.Limits{Key: actions.MustTemplate("{{ .Labels.instance }}"), Cooldown: 15 * time.Minute})
	h := history{"w1": {ran(0, ha.Succeeded)}}
	d, err := Decide(t0.Add(5*time.Minute), h, instance("w1"), pb)
	require.NoError(t, err)
	require.Equal(t, Decision{Verdict: Skip, Reason: ReasonCooldown, Key: "w1", NextAllowed: t0.Add(15 * time.Minute),
		Explain: "cooldown: the last run for this key was claimed 5m ago (cooldown: 15m); next allowed at 2026-12-07T09:15:00Z"}, d)

	d, err = Decide(t0.Add(5*time.Minute), h, instance("w2"), pb)
	require.NoError(t, err)
	require.Equal(t, Decision{Verdict: Run, Key: "w2"}, d, "another key has its own cooldown")

	d, err = Decide(t0.Add(15*time.Minute), h, instance("w1"), pb)
	require.NoError(t, err)
	require.Equal(t, Decision{Verdict: Run, Key: "w1"}, d, "allowed again once the cooldown has passed")
}

func TestDecideConcurrency(t *testing.T) {
	pb := limited(playbooks.Limits{Concurrency: 1, MaxRuns: 1, Per: time.Minute})
	d, err := Decide(t0.Add(time.Hour), history{"clean": {ran(0, ha.Running)}}, instance("w1"), pb)
	require.NoError(t, err)
	require.Equal(t, Decision{Verdict: Skip, Reason: ReasonConcurrency, Key: "clean",
		Explain: "concurrency: 1 of at most 1 runs for this key are in flight"}, d,
		"a run still in flight an hour later holds its slot; concurrency is checked first")

	d, err = Decide(t0.Add(time.Hour), history{"clean": {ran(0, ha.Failed)}}, instance("w1"), pb)
	require.NoError(t, err)
	require.Equal(t, Decision{Verdict: Run, Key: "clean"}, d)
}

func TestDecideWithoutLimitsOrKey(t *testing.T) {
	d, err := Decide(t0, errHistory{}, instance("w1"), &playbooks.Playbook{Name: "free"})
	require.NoError(t, err)
	require.Equal(t, Decision{Verdict: Run}, d, "no limits: nothing is read")

	pb := limited(playbooks.Limits{Key: actions.MustTemplate("{{ .Labels.pod }}"), Cooldown: time.Minute})
	d, err = Decide(t0, history{}, instance("w1"), pb)
	require.NoError(t, err)
	require.Equal(t, Skip, d.Verdict)
	require.Equal(t, ReasonLimitKey, d.Reason)
	require.Contains(t, d.Explain, `limits.key: render "{{ .Labels.pod }}"`)

	_, err = Decide(t0, errHistory{}, instance("w1"), limited(playbooks.Limits{Cooldown: time.Minute}))
	require.ErrorContains(t, err, "read the runs of clean for limit key \"clean\": disk on fire")
}

type errHistory struct{}

func (errHistory) KeyRuns(string, string, time.Time) ([]ha.Record, error) {
	return nil, errors.New("disk on fire")
}
func (errHistory) Breaker() (ha.BreakerState, error) { return ha.BreakerState{}, nil }

type openBreaker struct{ history }

func (openBreaker) Breaker() (ha.BreakerState, error) {
	return ha.BreakerState{Open: true, OpenedAt: t0, Reason: "5 runs failed or unhealed in the last 10m (max_failures: 5)"}, nil
}

func TestDecideBreakerPausesEveryPlaybook(t *testing.T) {
	for _, pb := range []*playbooks.Playbook{{Name: "free"}, limited(playbooks.Limits{Cooldown: time.Minute})} {
		d, err := Decide(t0.Add(time.Hour), openBreaker{}, instance("w1"), pb)
		require.NoError(t, err)
		require.Equal(t, Decision{Verdict: Skip, Reason: ReasonBreakerOpen,
			Explain: "circuit breaker open since 2026-12-07T09:00:00Z (5 runs failed or unhealed in the last 10m (max_failures: 5)): all automation is paused until POST /api/v1/breaker/reset"}, d, pb.Name)
	}
}
