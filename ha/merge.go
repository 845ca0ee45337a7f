package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/selfheal/selfheal/alert"
)

// The execution log is mergeable state, as Alertmanager's nflog is: every
// replica holds all of it, changes are broadcast, full states are exchanged
// (push/pull), and any two replicas that saw the same changes hold the same
// log, whatever the order they saw them in. That needs one rule that says,
// of two versions of a record, which one stands: Supersedes.

// Gossip is how a log reaches the other replicas (a *cluster.Peer). A log
// without one is a cluster of one.
type Gossip interface {
	// Broadcast sends msg to every member, best effort.
	Broadcast(msg []byte)
	// Ask sends req to every live member but this one and returns the
	// answers that arrived before ctx ended.
	Ask(ctx context.Context, req []byte) ([][]byte, error)
}

// SetGossip connects the log to its cluster; call it before the log is
// used.
func (l *Log) SetGossip(g Gossip) { l.gossip = g }

// ErrSuperseded is returned by Update when another replica took the run
// over (a later epoch): this replica's version no longer stands.
var ErrSuperseded = errors.New("run was taken over by another replica")

// finalOrder ranks the final states for Supersedes: of two final versions
// of one run (only a partition, or a take-over, makes two), the one that
// says more about what happened stands. A failure is never hidden by a
// success, so the breaker counts it on every replica.
func finalOrder(s State) int {
	switch s {
	case Failed:
		return 5
	case Unhealed:
		return 4
	case Succeeded:
		return 3
	case Shadow:
		return 2
	case Skipped:
		return 1
	}
	return 0
}

// Supersedes reports whether version a of a run stands over version b: a
// total order, so every replica picks the same version.
//   - A later epoch (a take-over) stands.
//   - Then the state further along: Claimed, Running, Verifying, final.
//   - Of two final states, failed, unhealed, succeeded, shadow, skipped.
//   - Then the earlier claim, then the smaller node name: two replicas
//     claiming one run at once agree on who has it.
//   - Then the later revision of the same claim (one more step recorded).
//   - Then, so that the order is total, the encodings compared.
func Supersedes(a, b Record) bool {
	if a.Epoch != b.Epoch {
		return a.Epoch > b.Epoch
	}
	if ra, rb := a.State.rank(), b.State.rank(); ra != rb {
		return ra > rb
	}
	if a.State.Final() && a.State != b.State {
		return finalOrder(a.State) > finalOrder(b.State)
	}
	if !a.ClaimedAt.Equal(b.ClaimedAt) {
		return a.ClaimedAt.Before(b.ClaimedAt)
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	if a.Rev != b.Rev {
		return a.Rev > b.Rev
	}
	ea, _ := json.Marshal(a)
	eb, _ := json.Marshal(b)
	return bytes.Compare(ea, eb) > 0
}

// message is what replicas gossip: one change.
type message struct {
	Record  *Record       `json:"r,omitempty"`
	Episode *episodeDelta `json:"e,omitempty"`
	Breaker *BreakerState `json:"b,omitempty"`
}

// episodeDelta is an episode's status, as gossiped.
type episodeDelta struct {
	Key        string       `json:"k"`
	Status     alert.Status `json:"s"`
	ResolvedAt time.Time    `json:"t,omitzero"`
}

// fullState is what a push/pull exchanges.
type fullState struct {
	Records  []Record       `json:"records"`
	Episodes []episodeDelta `json:"episodes"`
	Breaker  BreakerState   `json:"breaker"`
}

// FullStateRecords bounds the records a full state carries: every
// unfinished one, and the most recently claimed up to this many. A replica
// that missed more changes than that while cut off keeps missing the oldest
// of them.
const FullStateRecords = 10000

// compact is rec as gossiped after its claim: without the alert, which
// every replica got with the claim, and without what steps reported, which
// the replica that ran them keeps. It fits a gossip packet.
func compact(rec Record) Record {
	rec.Alert = alert.Alert{}
	if len(rec.Steps) > 0 {
		steps := make([]StepRecord, len(rec.Steps))
		for i, s := range rec.Steps {
			s.Details, s.Summary = nil, ""
			if len(s.Error) > 200 {
				s.Error = s.Error[:200] + "…"
			}
			steps[i] = s
		}
		rec.Steps = steps
	}
	return rec
}

func (l *Log) broadcast(m message) {
	if l.gossip == nil {
		return
	}
	data, err := json.Marshal(m)
	if err != nil {
		return // a Record always encodes
	}
	l.gossip.Broadcast(data)
}

// merge stores rec if it supersedes what tx holds for its id, keeping the
// indexes true. A compact rec (no alert) keeps the alert already held. It
// reports whether anything changed.
func (l *Log) merge(tx *bolt.Tx, rec Record) (bool, error) {
	if rec.ID == "" {
		return false, errors.New("record without an id")
	}
	if cut := l.pruned.Load(); cut != nil && rec.State.Final() && rec.ClaimedAt.Before(*cut) {
		return false, nil // pruned here already; do not bring it back
	}
	runs := tx.Bucket(bucketRuns)
	var old Record
	v := runs.Get([]byte(rec.ID))
	if v != nil {
		if err := json.Unmarshal(v, &old); err != nil {
			return false, err
		}
		if rec.Alert.Labels == nil {
			rec.Alert = old.Alert
		}
		if !Supersedes(rec, old) {
			if old.Alert.Labels == nil && rec.Alert.Labels != nil {
				// The claim, after a change that came first: its alert.
				old.Alert = rec.Alert
				return true, putJSON(runs, old.ID, old)
			}
			return false, nil
		}
		if err := unindexAll(tx, old); err != nil {
			return false, err
		}
	} else if rec.Alert.Labels == nil {
		// A change whose claim this replica never got: keep it, so limits
		// and the breaker count it; the claim fills the alert in.
		rec.Alert.Fingerprint = rec.Episode.Fingerprint
		rec.Alert.StartsAt = rec.Episode.StartsAt
	}
	if err := putJSON(runs, rec.ID, rec); err != nil {
		return false, err
	}
	return true, indexAll(tx, rec)
}

func indexAll(tx *bolt.Tx, rec Record) error {
	if err := index(tx, rec); err != nil {
		return err
	}
	if err := indexFailed(tx, rec); err != nil {
		return err
	}
	if err := indexRepeat(tx, rec); err != nil {
		return err
	}
	if err := indexUnfinished(tx, rec); err != nil {
		return err
	}
	return tx.Bucket(bucketByTime).Put(timeKey(rec.ClaimedAt, rec.ID), nil)
}

func unindexAll(tx *bolt.Tx, rec Record) error {
	if rec.LimitKey != "" {
		if err := tx.Bucket(bucketByKey).Delete(keyIndex(rec)); err != nil {
			return err
		}
	}
	if err := unindexFailed(tx, rec); err != nil {
		return err
	}
	if err := tx.Bucket(bucketRepeats).Delete([]byte(rec.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUnfinished).Delete([]byte(rec.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketByTime).Delete(timeKey(rec.ClaimedAt, rec.ID))
}

// Merge applies a change gossiped by another replica. It reports whether
// the change was news here, in which case it is relayed: a change travels
// on until every replica has it.
func (l *Log) Merge(msg []byte) (bool, error) {
	var m message
	if err := json.Unmarshal(msg, &m); err != nil {
		return false, fmt.Errorf("decode gossip: %w", err)
	}
	changed := false
	err := l.db.Update(func(tx *bolt.Tx) error {
		var err error
		var c bool
		if m.Record != nil {
			if c, err = l.merge(tx, *m.Record); err != nil {
				return err
			}
			changed = changed || c
		}
		if m.Episode != nil {
			if c, err = mergeEpisode(tx, *m.Episode, l.now().UTC()); err != nil {
				return err
			}
			changed = changed || c
		}
		if m.Breaker != nil {
			if c, err = mergeBreaker(tx, *m.Breaker); err != nil {
				return err
			}
			changed = changed || c
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("merge gossip: %w", err)
	}
	return changed, nil
}

// Answer handles another replica's claim: it is merged here, and the
// answer is the version of the run that stands here now, which is the
// claim itself unless this replica holds one that supersedes it.
func (l *Log) Answer(req []byte) ([]byte, error) {
	var rec Record
	if err := json.Unmarshal(req, &rec); err != nil {
		return nil, fmt.Errorf("decode claim: %w", err)
	}
	var stands Record
	err := l.db.Update(func(tx *bolt.Tx) error {
		if _, err := l.merge(tx, rec); err != nil {
			return err
		}
		return json.Unmarshal(tx.Bucket(bucketRuns).Get([]byte(rec.ID)), &stands)
	})
	if err != nil {
		return nil, fmt.Errorf("answer claim %s: %w", rec.ID, err)
	}
	return json.Marshal(stands)
}

// LocalState is this replica's full state, for a push/pull: the breaker,
// every unfinished run, the most recent FullStateRecords runs, and their
// episodes.
func (l *Log) LocalState() ([]byte, error) {
	var st fullState
	err := l.db.View(func(tx *bolt.Tx) error {
		runs, episodes := tx.Bucket(bucketRuns), tx.Bucket(bucketEpisodes)
		seen := map[string]bool{}
		add := func(rec Record) error {
			st.Records = append(st.Records, rec)
			key := rec.Episode.Key()
			if seen[key] {
				return nil
			}
			seen[key] = true
			if e, ok, err := getEpisode(episodes, episodeKey(rec.Episode)); err != nil {
				return err
			} else if ok {
				st.Episodes = append(st.Episodes, episodeDelta{Key: key, Status: e.Status, ResolvedAt: e.ResolvedAt})
			}
			return nil
		}
		taken := map[string]bool{}
		c := tx.Bucket(bucketByTime).Cursor()
		n := 0
		for k, _ := c.Last(); k != nil && n < FullStateRecords; k, _ = c.Prev() {
			var rec Record
			if err := json.Unmarshal(runs.Get(idOfTimeKey(k)), &rec); err != nil {
				return err
			}
			n++
			taken[rec.ID] = true
			if err := add(rec); err != nil {
				return err
			}
		}
		err := eachIn(tx, bucketUnfinished, func(rec Record) error {
			if taken[rec.ID] {
				return nil
			}
			return add(rec)
		})
		if err != nil {
			return err
		}
		if v := tx.Bucket(bucketBreaker).Get([]byte("state")); v != nil {
			return json.Unmarshal(v, &st.Breaker)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("full state: %w", err)
	}
	return json.Marshal(st)
}

// MergeState merges another replica's full state (LocalState).
func (l *Log) MergeState(data []byte) error {
	var st fullState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("decode full state: %w", err)
	}
	now := l.now().UTC()
	err := l.db.Update(func(tx *bolt.Tx) error {
		for _, rec := range st.Records {
			if _, err := l.merge(tx, rec); err != nil {
				return err
			}
		}
		for _, e := range st.Episodes {
			if _, err := mergeEpisode(tx, e, now); err != nil {
				return err
			}
		}
		_, err := mergeBreaker(tx, st.Breaker)
		return err
	})
	if err != nil {
		return fmt.Errorf("merge full state: %w", err)
	}
	return nil
}

// mergeEpisode applies an episode's gossiped status: an episode only ever
// goes from firing to resolved.
func mergeEpisode(tx *bolt.Tx, d episodeDelta, now time.Time) (bool, error) {
	if d.Key == "" || !d.Status.Valid() {
		return false, fmt.Errorf("invalid episode %q (%q)", d.Key, d.Status)
	}
	b, key := tx.Bucket(bucketEpisodes), storeKey(d.Key)
	st, seen, err := getEpisode(b, key)
	if err != nil {
		return false, err
	}
	if seen {
		if st.Status == alert.Resolved || d.Status != alert.Resolved {
			return false, nil
		}
		st.Status, st.ResolvedAt = alert.Resolved, d.ResolvedAt
		if err := tx.Bucket(bucketFiring).Delete(key); err != nil {
			return false, err
		}
	} else {
		st = episodeState{Status: d.Status, FirstSeen: now, LastSeen: now, ResolvedAt: d.ResolvedAt}
	}
	return true, b.Put(key, st.encode())
}

// mergeBreaker applies a gossiped breaker state: the one changed last
// (opened or reset) stands; an open one, when both changed at once.
func mergeBreaker(tx *bolt.Tx, in BreakerState) (bool, error) {
	if in.OpenedAt.IsZero() && in.ResetAt.IsZero() {
		return false, nil
	}
	b := tx.Bucket(bucketBreaker)
	var cur BreakerState
	if v := b.Get([]byte("state")); v != nil {
		if err := json.Unmarshal(v, &cur); err != nil {
			return false, err
		}
	}
	changed := func(s BreakerState) time.Time {
		if s.OpenedAt.After(s.ResetAt) {
			return s.OpenedAt
		}
		return s.ResetAt
	}
	ti, tc := changed(in), changed(cur)
	if ti.Before(tc) || ti.Equal(tc) && (cur.Open || !in.Open) {
		return false, nil
	}
	return true, putJSON(b, "state", in)
}

// TakeOver claims for this replica the run rec (the version held here),
// which a replica that left the cluster did not finish: a new epoch of it,
// in the state the caller set (Claimed to run it again, Failed when it must
// not be, Verifying to go on waiting), confirmed with the other replicas
// as a claim is. Every replica that sees the owner gone may try at once;
// one version stands, and the call reports whether it is this one.
func (l *Log) TakeOver(ctx context.Context, rec Record) (Record, bool, error) {
	next := rec
	next.Epoch, next.TakenOverFrom, next.Node, next.Rev = rec.Epoch+1, rec.Node, l.node, 0
	var stands Record
	err := l.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(rec.ID))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &stands); err != nil {
			return err
		}
		// First come, as for a claim: a take-over another replica
		// confirmed here already is not contested.
		if stands.Epoch > rec.Epoch {
			return nil
		}
		if _, err := l.merge(tx, next); err != nil {
			return err
		}
		return json.Unmarshal(tx.Bucket(bucketRuns).Get([]byte(rec.ID)), &stands)
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("take over run %s: %w", rec.ID, err)
	}
	if stands.Node != l.node || stands.Epoch != next.Epoch {
		return stands, false, nil
	}
	if l.gossip == nil {
		return stands, true, nil
	}
	return l.confirm(ctx, stands)
}
