package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/receiver"
)

// countingLog counts the batch observations the engine makes.
type countingLog struct {
	*ha.Log
	writes, alerts atomic.Int64
}

func (c *countingLog) ObserveAll(alerts []alert.Alert) ([]ha.Observation, error) {
	c.writes.Add(1)
	c.alerts.Add(int64(len(alerts)))
	return c.Log.ObserveAll(alerts)
}

// TestBacklogIsRecordedInOneWrite: batches waiting in the inbox when the
// engine gets to them are observed together, in one write, and their HA
// copies still run once: the copy of an episode in a later batch of the
// same write is a duplicate.
func TestBacklogIsRecordedInOneWrite(t *testing.T) {
	dir := t.TempDir()
	in, err := receiver.OpenInbox(dir, 1000)
	require.NoError(t, err)
	for _, p := range []string{"ha-dup-a", "ha-dup-b", "multi-firing"} {
		data, err := os.ReadFile(filepath.Join("..", "receiver", "testdata", "alertmanager", p+".json"))
		require.NoError(t, err)
		n, err := receiver.Decode(bytes.NewReader(data))
		require.NoError(t, err)
		_, err = in.Put(context.Background(), alert.Batch{Alerts: n.Alerts})
		require.NoError(t, err)
	}
	require.NoError(t, in.Close())

	var counted *countingLog
	f := newFixtureWith(t, dir, firingAndResolved, engine.Options{}, func(l *ha.Log) engine.Log {
		counted = &countingLog{Log: l}
		return counted
	})
	f.settle(t)
	require.EqualValues(t, 1, counted.writes.Load(), "three waiting batches, one write")
	require.EqualValues(t, 7, counted.alerts.Load())
	require.Equal(t, 6, f.rec.count(), "the HA pair's copies of one episode run once, and the 5 others once each")
	require.EqualValues(t, 1, f.episodes(ha.Duplicate))
	require.EqualValues(t, 6, f.episodes(ha.New))
}

// TestLabellessResolveMatchesNothing: reconciliation resolves an episode
// whose alert was not kept with only its fingerprint and startsAt. It is
// recorded resolved, and a playbook whose only matcher is negative, which
// empty labels would satisfy, does not run for it.
func TestLabellessResolveMatchesNothing(t *testing.T) {
	f := newFixture(t, t.TempDir(), `playbooks:
  - name: after-resolve
    on: resolved
    match: ['alertname!="Watchdog"']
    steps: [{name: s, action: record}]
`, engine.Options{})
	t0 := time.Date(2026, 11, 21, 19, 8, 21, 0, time.UTC)
	bare := alert.Alert{Status: alert.Resolved, Fingerprint: "ae801e89cbc3f5a2", StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	labels := map[string]string{"alertname": "DiskFull"}
	full := alert.Alert{Status: alert.Resolved, Labels: labels, Fingerprint: alert.Fingerprint(labels), StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	for _, a := range []alert.Alert{bare, full} {
		_, err := f.inbox.Put(context.Background(), alert.Batch{Alerts: []alert.Alert{a}})
		require.NoError(t, err)
	}
	f.settle(t)
	require.Equal(t, 1, f.rec.count(), "only the resolve with labels runs")
	resolved, err := f.log.Resolved(bare.Episode())
	require.NoError(t, err)
	require.True(t, resolved)
}
