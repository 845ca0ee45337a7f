package ha

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	// bucketBreaker holds the circuit breaker's state under "state".
	bucketBreaker = []byte("breaker")
	// bucketFailedByTime indexes the runs that ended failed or unhealed by
	// when they ended, for the breaker.
	bucketFailedByTime = []byte("failed_by_time")
)

// BreakerState is the global circuit breaker's state, kept in the log so
// that an open breaker stays open across restarts.
type BreakerState struct {
	Open     bool      `json:"open"`
	OpenedAt time.Time `json:"openedAt,omitzero"`
	// Reason says why it opened, in words.
	Reason string `json:"reason,omitempty"`
	// ResetAt is when it was last reset: runs before it no longer count.
	ResetAt time.Time `json:"resetAt,omitzero"`
}

// Breaker returns the breaker's state; the zero state (closed) when it
// never opened.
func (l *Log) Breaker() (BreakerState, error) {
	var st BreakerState
	err := l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBreaker).Get([]byte("state")); v != nil {
			return json.Unmarshal(v, &st)
		}
		return nil
	})
	return st, err
}

// SetBreaker stores the breaker's state.
func (l *Log) SetBreaker(st BreakerState) error {
	err := l.db.Update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketBreaker), "state", st) })
	if err != nil {
		return fmt.Errorf("record the circuit breaker: %w", err)
	}
	l.broadcast(message{Breaker: &st})
	return nil
}

// Outcomes counts, since t, the runs started (claimed, not skipped, not dry
// runs) and the runs that ended failed or unhealed.
func (l *Log) Outcomes(since time.Time) (started, failed int, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		from := timeKey(since, "\xff") // after since itself
		c := tx.Bucket(bucketByTime).Cursor()
		for k, _ := c.Seek(from); k != nil; k, _ = c.Next() {
			var rec Record
			if err := json.Unmarshal(runs.Get(idOfTimeKey(k)), &rec); err != nil {
				return err
			}
			if rec.State != Skipped && !rec.DryRun {
				started++
			}
		}
		f := tx.Bucket(bucketFailedByTime).Cursor()
		for k, _ := f.Seek(from); k != nil; k, _ = f.Next() {
			failed++
		}
		return nil
	})
	return started, failed, err
}

// indexFailed records rec in the failure index once it ended failed or
// unhealed.
func indexFailed(tx *bolt.Tx, rec Record) error {
	if rec.State != Failed && rec.State != Unhealed || rec.FinishedAt.IsZero() {
		return nil
	}
	return tx.Bucket(bucketFailedByTime).Put(timeKey(rec.FinishedAt, rec.ID), nil)
}

// unindexFailed removes a pruned rec from the failure index.
func unindexFailed(tx *bolt.Tx, rec Record) error {
	if rec.FinishedAt.IsZero() {
		return nil
	}
	return tx.Bucket(bucketFailedByTime).Delete(timeKey(rec.FinishedAt, rec.ID))
}
