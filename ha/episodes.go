package ha

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/selfheal/selfheal/alert"
)

// Observation is what a delivered alert means for its episode.
type Observation string

// The observations Observe returns.
const (
	// New: the first "firing" seen for the episode.
	New Observation = "new"
	// Duplicate: a repeat, retry or HA copy of what was already seen.
	Duplicate Observation = "duplicate"
	// Stale: a "firing" for an episode already seen resolved (a late HA
	// copy); it must not start anything.
	Stale Observation = "stale"
	// Ended: the first "resolved" seen for the episode.
	Ended Observation = "resolved"
)

// bucketFiring holds, by episode, the first alert delivered for each
// episode seen firing here and not resolved: what reconciliation compares
// with Alertmanager's alerts.
var bucketFiring = []byte("episodes_firing")

// Firing returns, for each episode seen firing here and not resolved, the
// first alert delivered for it; for an episode whose alert no playbook
// matched when it was delivered (Options.KeepAlert), only its fingerprint
// and startsAt, without labels.
func (l *Log) Firing() ([]alert.Alert, error) {
	var out []alert.Alert
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiring).ForEach(func(k, v []byte) error {
			if len(v) == 0 {
				ep := episodeOfKey(k)
				out = append(out, alert.Alert{Status: alert.Firing, Fingerprint: ep.Fingerprint, StartsAt: ep.StartsAt})
				return nil
			}
			var a alert.Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

type episodeState struct {
	Status     alert.Status `json:"status"`
	FirstSeen  time.Time    `json:"firstSeen"`
	LastSeen   time.Time    `json:"lastSeen"`
	ResolvedAt time.Time    `json:"resolvedAt,omitzero"`
}

// Observe records that a was delivered and classifies the delivery. The
// episode table is on disk, so a restart keeps knowing which episodes ended.
func (l *Log) Observe(a alert.Alert) (Observation, error) {
	obs, err := l.ObserveAll([]alert.Alert{a})
	if err != nil {
		return "", err
	}
	return obs[0], nil
}

// lastSeenEvery is how stale an episode's last-seen time may get before a
// duplicate delivery writes it again: it only says when a resolved episode
// may be forgotten (Prune), so a burst of duplicates need not write at all.
const lastSeenEvery = time.Minute

// ObserveAll is Observe for a batch of alerts, in one write (one fsync),
// or none when every alert is a duplicate seen lately.
func (l *Log) ObserveAll(alerts []alert.Alert) ([]Observation, error) {
	now := l.now().UTC()
	out := make([]Observation, len(alerts))
	keys := make([][]byte, len(alerts))
	for i, a := range alerts {
		keys[i] = episodeKey(a.Episode())
	}
	// Most deliveries are repeats: classify them without a write first.
	write := false
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEpisodes)
		for i, a := range alerts {
			st, seen, err := getEpisode(b, keys[i])
			if err != nil {
				return err
			}
			if !seen {
				write = true
				return nil
			}
			out[i] = classify(true, st.Status, a.Status)
			if out[i] != Duplicate || now.Sub(st.LastSeen) >= lastSeenEvery {
				write = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observe episodes: %w", err)
	}
	if !write {
		return out, nil
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEpisodes)
		for i, a := range alerts {
			key := keys[i]
			st, seen, err := getEpisode(b, key)
			if err != nil {
				return err
			}
			obs := classify(seen, st.Status, a.Status)
			out[i] = obs
			if obs == Duplicate && now.Sub(st.LastSeen) < lastSeenEvery {
				continue
			}
			if !seen {
				st.FirstSeen = now
			}
			st.LastSeen = now
			if a.Status == alert.Resolved && st.Status != alert.Resolved {
				st.Status, st.ResolvedAt = alert.Resolved, now
			} else if !seen {
				st.Status = a.Status
			}
			switch obs {
			case New:
				// The alert is kept for reconciliation, which sends a
				// resolved copy of it when Alertmanager no longer lists
				// it; one no playbook wants needs only its key.
				var v []byte
				if l.keep == nil || l.keep(a) {
					if v, err = json.Marshal(a); err != nil {
						return err
					}
				}
				if err := tx.Bucket(bucketFiring).Put(key, v); err != nil {
					return err
				}
			case Ended:
				if err := tx.Bucket(bucketFiring).Delete(key); err != nil {
					return err
				}
			}
			if err := b.Put(key, st.encode()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observe episodes: %w", err)
	}
	for i, obs := range out {
		switch obs {
		case New:
			l.broadcast(message{Episode: &episodeDelta{Key: alerts[i].Episode().Key(), Status: alert.Firing}})
		case Ended:
			l.broadcast(message{Episode: &episodeDelta{Key: alerts[i].Episode().Key(), Status: alert.Resolved, ResolvedAt: now}})
		}
	}
	return out, nil
}

func classify(seen bool, was, now alert.Status) Observation {
	switch {
	case now == alert.Firing && !seen:
		return New
	case now == alert.Firing && was == alert.Resolved:
		return Stale
	case now == alert.Resolved && (!seen || was == alert.Firing):
		return Ended
	default:
		return Duplicate
	}
}

func pruneEpisodes(b *bolt.Bucket, cutoff time.Time) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		st, err := decodeEpisode(v)
		if err != nil {
			return err
		}
		// An unresolved episode is never forgotten, however long since its
		// last delivery: the next one would be "new" and run again.
		if st.Status == alert.Resolved && st.LastSeen.Before(cutoff) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Resolved reports whether a "resolved" was seen for ep.
func (l *Log) Resolved(ep alert.Episode) (bool, error) {
	var st episodeState
	err := l.db.View(func(tx *bolt.Tx) (err error) {
		st, _, err = getEpisode(tx.Bucket(bucketEpisodes), episodeKey(ep))
		return err
	})
	return st.Status == alert.Resolved, err
}
