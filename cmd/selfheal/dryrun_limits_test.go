package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

// TestDryRunAppliesLimits: dry-run decides with engine.Decide, as the
// daemon does, so a storm in one notification shows the runs the limits
// allow and the skips, with the reason the daemon would record.
func TestDryRunAppliesLimits(t *testing.T) {
	reg, err := newRegistry(nil, nil)
	require.NoError(t, err)
	pbs, err := playbooks.Parse(reg, "limits.yaml", []byte(`playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    limits: {key: '{{ .Labels.instance }}', max_runs: 2, per: 1h}
    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]
`))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	n := &receiver.Notification{}
	for i := range 4 {
		labels := map[string]string{"alertname": "DiskFull", "instance": "w1"}
		n.Alerts = append(n.Alerts, alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: now.Add(time.Duration(i) * time.Minute), Fingerprint: alert.Fingerprint(labels)})
	}
	rep := report(context.Background(), set, n, now)
	var verdicts []string
	for _, a := range rep.Alerts {
		d := a.Playbooks[0].Decision
		require.NotNil(t, d)
		verdicts = append(verdicts, fmt.Sprintf("%s %s", d.Verdict, d.Reason))
	}
	require.Equal(t, []string{"run ", "run ", "skip rate_limited", "skip rate_limited"}, verdicts)

	var out strings.Builder
	printReport(&out, rep)
	require.Contains(t, out.String(), "  playbook clean: would be recorded skipped (rate_limited) as clean/"+n.Alerts[2].Episode().Key()+
		": rate limited: 2 runs for this key in the last 1h (max_runs: 2); next allowed at 2026-12-07T10:00:00Z\n"+
		"    limits: at most 2 per 1h, per {{ .Labels.instance }}; key \"w1\"\n")
	require.Contains(t, out.String(), "Limits count only the runs this notification would start")
	require.Equal(t, engine.Skip, rep.Alerts[3].Playbooks[0].Decision.Verdict)
}

// TestDryRunShowsWaits: a delay that has not passed shows as a wait, with
// when the run would be due and why.
func TestDryRunShowsWaits(t *testing.T) {
	reg, err := newRegistry(nil, nil)
	require.NoError(t, err)
	pbs, err := playbooks.Parse(reg, "delay.yaml", []byte(`playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    delay: 5m
    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]
`))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	labels := map[string]string{"alertname": "DiskFull"}
	n := &receiver.Notification{Alerts: []alert.Alert{{Status: alert.Firing, Labels: labels, StartsAt: now.Add(-time.Minute), Fingerprint: alert.Fingerprint(labels)}}}
	var out strings.Builder
	printReport(&out, report(context.Background(), set, n, now))
	require.Contains(t, out.String(), "    waits until 2026-12-07T09:04:00Z (delay): delay: acts at 2026-12-07T09:04:00Z, 5m after the alert started firing, if it is still firing then\n")
}

// TestShadowRecordsWhatDryRunPrints: the same alerts through dry-run and
// through the daemon's engine in shadow mode (global dry_run) give the
// same decisions: each run dry-run prints is recorded shadow, each skip is
// recorded skipped with the reason dry-run printed.
func TestShadowRecordsWhatDryRunPrints(t *testing.T) {
	reg, err := newRegistry(nil, nil)
	require.NoError(t, err)
	pbs, err := playbooks.Parse(reg, "limits.yaml", []byte(`playbooks:
  - name: clean
    match: ['alertname="DiskFull"']
    limits: {key: '{{ .Labels.instance }}', max_runs: 2, per: 1h}
    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]
  - name: weekdays
    match: ['alertname="DiskFull"']
    blackouts: [{schedule: "0 0 * * MON", duration: 24h}]
    steps: [{name: s, action: exec, with: {command: [/bin/true]}}]
`))
	require.NoError(t, err)
	set, err := playbooks.NewSet(pbs)
	require.NoError(t, err)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // a Monday
	n := &receiver.Notification{}
	for i := range 4 {
		labels := map[string]string{"alertname": "DiskFull", "instance": "w1", "n": fmt.Sprint(i)}
		n.Alerts = append(n.Alerts, alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: now.Add(time.Duration(i) * time.Second), Fingerprint: alert.Fingerprint(labels)})
	}
	printed := map[string]string{}
	for i, a := range report(context.Background(), set, n, now).Alerts {
		for _, p := range a.Playbooks {
			want := "shadow"
			if p.Decision.Verdict == engine.Skip {
				want = "skipped " + p.Decision.Reason
			}
			printed[p.Name+"/"+n.Alerts[i].Episode().Key()] = want
		}
	}

	stubs, _, err := stubbed(set, nil, nil)
	require.NoError(t, err)
	sim, err := startSimulation(t.TempDir(), now, stubs, engine.Options{DryRun: true})
	require.NoError(t, err)
	require.NoError(t, sim.send(n.Alerts))
	recs, err := sim.records()
	require.NoError(t, err)
	require.NoError(t, sim.stop())
	recorded := map[string]string{}
	for _, r := range recs {
		got := string(r.State)
		if r.SkipReason != "" {
			got += " " + r.SkipReason
		}
		recorded[r.ID] = got
	}
	require.Len(t, printed, 8)
	require.Equal(t, printed, recorded)
	require.Contains(t, printed, "clean/"+n.Alerts[2].Episode().Key())
	require.Equal(t, "skipped rate_limited", printed["clean/"+n.Alerts[2].Episode().Key()])
	require.Equal(t, "skipped blackout", printed["weekdays/"+n.Alerts[0].Episode().Key()])
}
