package engine_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
)

// members is a cluster in which the replicas in gone left at a time.
type members struct {
	mu   sync.Mutex
	gone map[string]time.Time
}

func (m *members) Gone(name string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.gone[name]
	return at, ok
}

func (m *members) PeerTimeout() time.Duration { return 15 * time.Second }

// TestFailoverTakesOverTheRunsOfAGoneReplica: runs another replica left
// unfinished are taken over once it has been gone for peer_timeout: one
// that had not started runs here; one that was running runs again only if
// every step is safe_to_retry, else it is recorded failed (interrupted);
// a start does not touch another replica's runs.
func TestFailoverTakesOverTheRunsOfAGoneReplica(t *testing.T) {
	const pbs = `playbooks:
  - name: plain
    match: ['alertname="DiskFull"']
    steps: [{name: s, action: record}]
  - name: idempotent
    match: ['alertname="DiskFull"']
    steps: [{name: s, action: record, safe_to_retry: true}]
  - name: again
    match: ['alertname="Again"']
    repeat_after: 1h
    steps: [{name: s, action: record}]
`
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		// What replica "other" left in this store's replicated log.
		log, err := ha.Open(dir, ha.Options{Node: "other"})
		require.NoError(t, err)
		eps := episodesOf("w1", 3, time.Now())
		claim := func(pb string, a alert.Alert, running bool) string {
			rec, _, err := log.Claim(context.Background(), ha.Record{ID: ha.RunID(pb, a.Episode()), Playbook: pb, Episode: a.Episode(), Alert: a, LimitKey: pb})
			require.NoError(t, err)
			if running {
				rec.State, rec.StartedAt = ha.Running, time.Now()
				rec.Steps = []ha.StepRecord{{Name: "s", Action: "record", State: ha.Running, StartedAt: time.Now()}}
				require.NoError(t, log.Update(rec))
			}
			return rec.ID
		}
		notStarted := claim("plain", eps[0], false)
		cutOff := claim("plain", eps[1], true)
		retried := claim("idempotent", eps[2], true)
		require.NoError(t, log.Close())

		m := &members{gone: map[string]time.Time{}}
		f := newFixture(t, dir, pbs, engine.Options{Cluster: m})
		synctest.Wait()
		// Gossip brings a finished run of "other" whose repeat is pending,
		// due in a minute.
		rep := episodesOf("w9", 1, time.Now())[0]
		rep.Labels = map[string]string{"alertname": "Again"}
		rep.Fingerprint = alert.Fingerprint(rep.Labels)
		done := ha.Record{ID: ha.RunID("again", rep.Episode()), Playbook: "again", Episode: rep.Episode(), Alert: rep,
			Node: "other", State: ha.Succeeded, ClaimedAt: time.Now(), FinishedAt: time.Now(), RepeatAt: time.Now().Add(time.Minute)}
		full, err := json.Marshal(map[string]any{"records": []ha.Record{done}})
		require.NoError(t, err)
		require.NoError(t, f.log.MergeState(full))
		require.Zero(t, f.rec.count(), "another replica's runs are not resumed at a start")
		m.mu.Lock()
		m.gone["other"] = time.Now()
		m.mu.Unlock()
		time.Sleep(14 * time.Second)
		synctest.Wait()
		require.Zero(t, f.rec.count(), "not before peer_timeout")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		f.settle(t)
		require.Equal(t, 2, f.rec.count(), "the run not started and the safe_to_retry one ran here")
		get := func(id string) ha.Record {
			rec, _, err := f.log.Get(id)
			require.NoError(t, err)
			return rec
		}
		for _, id := range []string{notStarted, retried} {
			rec := get(id)
			require.Equal(t, ha.Succeeded, rec.State, id)
			require.Equal(t, "n1", rec.Node)
			require.Equal(t, "other", rec.TakenOverFrom)
			require.Equal(t, 1, rec.Epoch)
		}
		rec := get(cutOff)
		require.Equal(t, ha.Failed, rec.State)
		require.Contains(t, rec.Reason, "interrupted: replica other, which left the cluster, stopped during step \"s\"")
		require.Contains(t, rec.Reason, "not every step is safe_to_retry")
		_, failed, err := f.log.Outcomes(time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, failed, "the breaker counts the interrupted run")

		require.Equal(t, 2, f.rec.count(), "the repeat is not due yet")
		time.Sleep(time.Minute)
		synctest.Wait()
		f.settle(t)
		require.Equal(t, 3, f.rec.count(), "the gone replica's pending repeat ran here")
		require.Equal(t, "n1", get(ha.RepeatID("again", rep.Episode(), 1)).Node)
	})
}
