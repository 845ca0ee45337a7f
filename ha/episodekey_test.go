package ha

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/selfheal/selfheal/alert"
)

// TestEpisodeTablesAreCompact: an episode costs a 16-byte key and a
// 26-byte record, and while it fires only a key more, unless a playbook
// wants its alert (KeepAlert), which reconciliation then sends back
// resolved with its labels.
func TestEpisodeTablesAreCompact(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 21, 19, 8, 21, 800e6, time.UTC)
	wanted := testAlert(alert.Firing, t0)
	other := testAlert(alert.Firing, t0)
	other.Labels = map[string]string{"alertname": "Watchdog"}
	other.Fingerprint = alert.Fingerprint(other.Labels)
	l, err := Open(dir, Options{Node: "n1", KeepAlert: func(a alert.Alert) bool { return a.Labels["alertname"] == "DiskFull" }})
	require.NoError(t, err)
	obs, err := l.ObserveAll([]alert.Alert{wanted, other})
	require.NoError(t, err)
	require.Equal(t, []Observation{New, New}, obs)

	firing, err := l.Firing()
	require.NoError(t, err)
	require.Len(t, firing, 2)
	byFP := map[string]alert.Alert{}
	for _, a := range firing {
		byFP[a.Fingerprint] = a
	}
	require.Equal(t, wanted.Labels, byFP[wanted.Fingerprint].Labels, "a wanted alert is kept whole")
	require.Equal(t, alert.Alert{Status: alert.Firing, Fingerprint: other.Fingerprint, StartsAt: t0}, byFP[other.Fingerprint],
		"of the others only the episode")

	require.NoError(t, l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEpisodes).ForEach(func(k, v []byte) error {
			require.Len(t, k, 16)
			require.Len(t, v, 26)
			return nil
		})
	}))
	require.NoError(t, l.db.View(func(tx *bolt.Tx) error {
		require.Empty(t, tx.Bucket(bucketFiring).Get(episodeKey(other.Episode())))
		return nil
	}))

	// The record says what JSON said, and a restart reads it back.
	require.NoError(t, l.Close())
	l = openLog(t, dir, func() time.Time { return t0.Add(time.Hour) })
	defer l.Close()
	obs, err = l.ObserveAll([]alert.Alert{wanted, {Status: alert.Resolved, Labels: other.Labels, Fingerprint: other.Fingerprint, StartsAt: t0}})
	require.NoError(t, err)
	require.Equal(t, []Observation{Duplicate, Ended}, obs)
	resolved, err := l.Resolved(other.Episode())
	require.NoError(t, err)
	require.True(t, resolved)
	firing, err = l.Firing()
	require.NoError(t, err)
	require.Len(t, firing, 1)
}

func TestEpisodeKeyRoundTrip(t *testing.T) {
	for _, ep := range []alert.Episode{
		{Fingerprint: "ae801e89cbc3f5a2", StartsAt: time.Date(2026, 11, 21, 19, 21, 16, 311e6, time.UTC)},
		{Fingerprint: "0000000000000000", StartsAt: time.Unix(0, 1).UTC()},
	} {
		k := episodeKey(ep)
		require.Len(t, k, 16)
		require.Equal(t, ep, episodeOfKey(k))
		require.Equal(t, k, storeKey(ep.Key()), "gossip's textual key names the same record")
	}
	// What Alertmanager never sends keeps the textual form.
	for _, fp := range []string{"AE801E89CBC3F5A2", "short", "ae801e89cbc3f5a2ff", "zz801e89cbc3f5a2"} {
		ep := alert.Episode{Fingerprint: fp, StartsAt: time.Unix(5, 0).UTC()}
		require.Equal(t, []byte(ep.Key()), episodeKey(ep), fp)
		require.Equal(t, ep, episodeOfKey(episodeKey(ep)), fp)
	}
}

// TestLogWrittenBeforeCompactEncodingIsConverted: a store whose episode
// tables have textual keys and JSON records is converted when opened, in
// several rounds, and nothing it knew is forgotten: a firing episode is a
// duplicate, a resolved one stays resolved, the kept alert is returned.
func TestLogWrittenBeforeCompactEncodingIsConverted(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 21, 19, 8, 21, 0, time.UTC)
	const n = 20003 // three rounds of 10000
	alerts := make([]alert.Alert, n)
	db, err := bolt.Open(filepath.Join(dir, "log.db"), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		eps, err := tx.CreateBucket(bucketEpisodes)
		require.NoError(t, err)
		firing, err := tx.CreateBucket(bucketFiring)
		require.NoError(t, err)
		for i := range alerts {
			labels := map[string]string{"alertname": "DiskFull", "instance": fmt.Sprint("w", i)}
			a := alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: t0, Fingerprint: alert.Fingerprint(labels)}
			alerts[i] = a
			st := episodeState{Status: alert.Firing, FirstSeen: t0, LastSeen: t0}
			if i%2 == 1 {
				st.Status, st.ResolvedAt = alert.Resolved, t0.Add(time.Minute)
			} else {
				v, _ := json.Marshal(a)
				require.NoError(t, firing.Put([]byte(a.Episode().Key()), v))
			}
			v, _ := json.Marshal(st)
			require.NoError(t, eps.Put([]byte(a.Episode().Key()), v))
		}
		return nil
	}))
	require.NoError(t, db.Close())

	l := openLog(t, dir, func() time.Time { return t0.Add(time.Hour) })
	defer l.Close()
	require.NoError(t, l.db.View(func(tx *bolt.Tx) error {
		require.Equal(t, n, tx.Bucket(bucketEpisodes).Stats().KeyN)
		require.Equal(t, (n+1)/2, tx.Bucket(bucketFiring).Stats().KeyN)
		for _, b := range [][]byte{bucketEpisodes, bucketFiring} {
			require.NoError(t, tx.Bucket(b).ForEach(func(k, _ []byte) error {
				require.Len(t, k, 16, "%s key %q not converted", b, k)
				return nil
			}))
		}
		return nil
	}))
	obs, err := l.ObserveAll(alerts[:4])
	require.NoError(t, err)
	require.Equal(t, []Observation{Duplicate, Stale, Duplicate, Stale}, obs)
	firing, err := l.Firing()
	require.NoError(t, err)
	require.Len(t, firing, (n+1)/2)
	for _, a := range firing {
		require.Equal(t, "DiskFull", a.Labels["alertname"], "the kept alert of %s", a.Fingerprint)
	}
}
