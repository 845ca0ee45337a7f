package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/selfheal/selfheal/alert"
)

var (
	bucketRuns     = []byte("runs")
	bucketByTime   = []byte("runs_by_time")
	bucketEpisodes = []byte("episodes")
	// bucketByKey indexes the runs that count against limits (see
	// Record.Counts) by playbook and limit key, then claim time.
	bucketByKey = []byte("runs_by_key")
	// bucketRepeats holds the ids of the final records whose repeat
	// (RepeatAt) is not decided yet.
	bucketRepeats = []byte("repeats_pending")
	// bucketUnfinished holds the ids of the records not final yet: what a
	// start resumes, a take-over looks at and a full state always carries,
	// read without going through the whole log.
	bucketUnfinished = []byte("runs_unfinished")
)

// ErrBackwards is returned by Update for a state change that goes back.
var ErrBackwards = errors.New("run state cannot move backwards")

// ErrNotFound is returned by Update for a run that was never claimed.
var ErrNotFound = errors.New("run not found")

// Options configure a Log.
type Options struct {
	// Node names this replica in records.
	Node string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KeepAlert says whether the first alert of a new episode is kept
	// while it fires (for reconciliation's resolved copy, which playbooks
	// with on: resolved see): serve keeps those some playbook matches.
	// Without it every alert is kept. An episode's own record is kept
	// either way.
	KeepAlert func(alert.Alert) bool
}

// Log is the execution log and episode table of one replica, on disk. It is
// safe for concurrent use. Every write is fsynced before it returns, so a
// claim is on disk before its action starts.
type Log struct {
	db     *bolt.DB
	node   string
	now    func() time.Time
	gossip Gossip
	keep   func(alert.Alert) bool
	// pruned is the last Prune's cutoff: records claimed before it are
	// not taken back from peers.
	pruned atomic.Pointer[time.Time]
}

// Open opens (or creates) the log in dir/log.db.
func Open(dir string, opts Options) (*Log, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open execution log: %w", err)
	}
	path := filepath.Join(dir, "log.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open execution log %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		build := tx.Bucket(bucketUnfinished) == nil
		for _, b := range [][]byte{bucketRuns, bucketByTime, bucketEpisodes, bucketByKey, bucketBreaker, bucketFailedByTime, bucketRepeats, bucketFiring, bucketUnfinished, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if build { // a log written before the index existed
			return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
				var rec Record
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				return indexUnfinished(tx, rec)
			})
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open execution log %s: %w", path, err)
	}
	if err := convertEpisodes(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open execution log %s: %w", path, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{db: db, node: opts.Node, now: opts.Now, keep: opts.KeepAlert}, nil
}

// Close closes the database.
func (l *Log) Close() error { return l.db.Close() }

// Node returns the name this replica writes into records.
func (l *Log) Node() string { return l.node }

// Claim stores rec as Claimed by this node unless a record with its ID
// exists. It returns the record that stands and whether it is this
// call's. A rec whose State is Skipped (a guard's decision) is stored as it
// is, in the same write: a crash can never leave it claimed, to be run
// after the restart.
//
// The claim is on disk before anything else happens. In a cluster it is
// then sent to every live replica, which merges it and answers with the
// version that stands there; Claim waits for the answers until ctx ends.
// A replica that holds a claim that supersedes this one (an earlier claim,
// or a decision further along) answers with it, and this call yields:
// whoever claims first runs, and ties break the same way everywhere.
func (l *Log) Claim(ctx context.Context, rec Record) (Record, bool, error) {
	if rec.State != Skipped {
		rec.State = Claimed
	}
	rec.Node = l.node
	if rec.ClaimedAt.IsZero() {
		rec.ClaimedAt = l.now().UTC()
	}
	if rec.State == Skipped && rec.FinishedAt.IsZero() {
		rec.FinishedAt = rec.ClaimedAt
	}
	var stored Record
	won := false
	err := l.db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		if v := runs.Get([]byte(rec.ID)); v != nil {
			if err := json.Unmarshal(v, &stored); err != nil {
				return err
			}
			if stored.Alert.Labels != nil || stored.State != Claimed && !stored.State.Final() {
				return nil
			}
			// Only a compact change of it is known: its claim is still
			// on the way. The claim protocol decides between the two.
			if Supersedes(stored, rec) {
				return nil
			}
			if err := unindexAll(tx, stored); err != nil {
				return err
			}
		}
		won, stored = true, rec
		if err := putJSON(runs, rec.ID, rec); err != nil {
			return err
		}
		return indexAll(tx, rec)
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("claim run %s: %w", rec.ID, err)
	}
	if !won || l.gossip == nil {
		return stored, won, nil
	}
	return l.confirm(ctx, rec)
}

// confirm sends the claim rec, on disk here, to the other replicas and
// merges their answers. It returns the version that stands and whether it
// is rec.
func (l *Log) confirm(ctx context.Context, rec Record) (Record, bool, error) {
	req, err := json.Marshal(rec)
	if err != nil {
		return Record{}, false, err
	}
	answers, err := l.gossip.Ask(ctx, req)
	if err != nil {
		return Record{}, false, fmt.Errorf("claim run %s: %w", rec.ID, err)
	}
	var stands Record
	err = l.db.Update(func(tx *bolt.Tx) error {
		for _, a := range answers {
			var other Record
			if err := json.Unmarshal(a, &other); err != nil || other.ID != rec.ID {
				continue // a replica that answers nonsense is no answer
			}
			if _, err := l.merge(tx, other); err != nil {
				return err
			}
		}
		return json.Unmarshal(tx.Bucket(bucketRuns).Get([]byte(rec.ID)), &stands)
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("claim run %s: %w", rec.ID, err)
	}
	mine := stands.Node == rec.Node && stands.Epoch == rec.Epoch && stands.ClaimedAt.Equal(rec.ClaimedAt)
	return stands, mine, nil
}

// Update replaces the stored record with rec. The state may stay or move
// forward, never back, and a final state is never changed.
//
// A take-over (rec.Epoch above the stored one) replaces the record, claim
// included. In a cluster, a version another replica took over is not
// overwritten (ErrSuperseded). The change is broadcast, compact; the move
// from Claimed to Running is confirmed with every replica, as the claim
// is, before Update returns, so that no replica takes a started run for
// one that never started.
func (l *Log) Update(rec Record) error {
	var stored Record
	started := false
	err := l.db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		v := runs.Get([]byte(rec.ID))
		if v == nil {
			return ErrNotFound
		}
		var old Record
		if err := json.Unmarshal(v, &old); err != nil {
			return err
		}
		if old.Epoch > rec.Epoch || old.Epoch == rec.Epoch && old.Node != rec.Node && rec.Node == l.node && l.gossip != nil {
			return fmt.Errorf("%w: %s holds it now", ErrSuperseded, old.Node)
		}
		if old.Epoch == rec.Epoch && (rec.State.rank() < old.State.rank() || (old.State.Final() && rec.State != old.State)) {
			return fmt.Errorf("%w: %s to %s", ErrBackwards, old.State, rec.State)
		}
		// What indexes the run is the claim's, whatever rec says.
		rec.LimitKey, rec.ClaimedAt = old.LimitKey, old.ClaimedAt
		rec.Rev = old.Rev + 1
		started = old.State == Claimed && rec.State == Running
		if rec.Epoch > old.Epoch {
			if err := unindexAll(tx, old); err != nil {
				return err
			}
			stored = rec
			return indexAllPut(tx, rec)
		}
		if err := index(tx, rec); err != nil {
			return err
		}
		if err := indexUnfinished(tx, rec); err != nil {
			return err
		}
		if !old.State.Final() {
			if err := indexFailed(tx, rec); err != nil {
				return err
			}
			if err := indexRepeat(tx, rec); err != nil {
				return err
			}
		}
		stored = rec
		return putJSON(runs, rec.ID, rec)
	})
	if err != nil {
		return fmt.Errorf("update run %s: %w", rec.ID, err)
	}
	if l.gossip != nil && started {
		// Confirmed like the claim: a replica that sees this run claimed
		// and its replica gone may then take it over as never started.
		stands, mine, err := l.confirm(context.Background(), compact(stored))
		if err != nil {
			return fmt.Errorf("update run %s: %w", rec.ID, err)
		}
		if !mine {
			return fmt.Errorf("update run %s: %w: %s holds it now", rec.ID, ErrSuperseded, stands.Node)
		}
		return nil
	}
	l.broadcast(message{Record: ptr(compact(stored))})
	return nil
}

func ptr[T any](v T) *T { return &v }

// indexAllPut stores rec and indexes it.
func indexAllPut(tx *bolt.Tx, rec Record) error {
	if err := putJSON(tx.Bucket(bucketRuns), rec.ID, rec); err != nil {
		return err
	}
	return indexAll(tx, rec)
}

// Get returns the record with id.
func (l *Log) Get(id string) (Record, bool, error) {
	var rec Record
	found := false
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &rec)
	})
	return rec, found, err
}

// List returns up to limit records, newest claim first.
func (l *Log) List(limit int) ([]Record, error) {
	var out []Record
	err := l.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		c := tx.Bucket(bucketByTime).Cursor()
		for k, _ := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Prev() {
			var rec Record
			if err := json.Unmarshal(runs.Get(idOfTimeKey(k)), &rec); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// Unfinished returns every record that is not final, oldest claim first:
// what a restart must resume or close. They are returned whatever node name
// wrote them: the unfinished records of a store belong to whoever opens the
// store. The default node name is the hostname, and a Deployment's pod gets
// a new one at every restart; keeping only records named like this process
// stranded every run the previous pod left open. (In a cluster the engine
// resumes only its own, and takes over those of replicas that left.)
func (l *Log) Unfinished() ([]Record, error) {
	var out []Record
	err := l.db.View(func(tx *bolt.Tx) error {
		return eachIn(tx, bucketUnfinished, func(rec Record) error {
			out = append(out, rec)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Record) int {
		if c := a.ClaimedAt.Compare(b.ClaimedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// eachIn calls fn with each record whose id is a key of the index bucket
// (the unfinished runs, the pending repeats), in id order.
func eachIn(tx *bolt.Tx, bucket []byte, fn func(Record) error) error {
	runs := tx.Bucket(bucketRuns)
	return tx.Bucket(bucket).ForEach(func(id, _ []byte) error {
		v := runs.Get(id)
		if v == nil {
			return nil
		}
		var rec Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		return fn(rec)
	})
}

// indexUnfinished keeps rec in the unfinished index while it is not final.
func indexUnfinished(tx *bolt.Tx, rec Record) error {
	b := tx.Bucket(bucketUnfinished)
	if rec.State.Final() {
		return b.Delete([]byte(rec.ID))
	}
	return b.Put([]byte(rec.ID), nil)
}

// Prune forgets resolved episodes not delivered since cutoff, then deletes
// the final records of runs claimed before cutoff whose episode is
// forgotten. An episode that has not been resolved is never forgotten, and
// neither are its runs, however old: a long-firing alert, or one whose
// deliveries paused, never runs again. It returns how many runs it deleted.
func (l *Log) Prune(cutoff time.Time) (int, error) {
	l.pruned.Store(&cutoff)
	n := 0
	err := l.db.Update(func(tx *bolt.Tx) error {
		episodes := tx.Bucket(bucketEpisodes)
		if err := pruneEpisodes(episodes, cutoff); err != nil {
			return err
		}
		runs, byTime := tx.Bucket(bucketRuns), tx.Bucket(bucketByTime)
		end := timeKey(cutoff, "")
		c := byTime.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; {
			id := idOfTimeKey(k)
			var rec Record
			if err := json.Unmarshal(runs.Get(id), &rec); err != nil {
				return err
			}
			if !rec.State.Final() || episodes.Get(episodeKey(rec.Episode)) != nil {
				k, _ = c.Next()
				continue
			}
			key := bytes.Clone(k)
			if err := runs.Delete(bytes.Clone(id)); err != nil {
				return err
			}
			if err := unindexAll(tx, rec); err != nil { // its runs_by_time key too: the cursor seeks again
				return err
			}
			n++
			k, _ = c.Seek(key)
		}
		return nil
	})
	return n, err
}

// Repeats returns the final records whose repeat is not decided yet (see
// Record.RepeatAt), in no particular order: what a start must hold again.
func (l *Log) Repeats() ([]Record, error) {
	var out []Record
	err := l.db.View(func(tx *bolt.Tx) error {
		return eachIn(tx, bucketRepeats, func(rec Record) error {
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// RepeatDone records that the repeat of the run id is decided: claimed,
// or not wanted any more (its episode resolved, its playbook changed).
func (l *Log) RepeatDone(id string) error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRepeats).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("record the repeat of run %s decided: %w", id, err)
	}
	return nil
}

// indexRepeat records rec's repeat as pending when rec is final with one.
func indexRepeat(tx *bolt.Tx, rec Record) error {
	if !rec.State.Final() || rec.RepeatAt.IsZero() {
		return nil
	}
	return tx.Bucket(bucketRepeats).Put([]byte(rec.ID), nil)
}

// KeyRuns returns the runs of playbook that count against its limits for
// key (see Record.Counts), oldest claim first: those claimed after since,
// and those not finished, however old (for concurrency). They are the runs
// the log still holds, so a limit never looks back further than
// storage.retention.
func (l *Log) KeyRuns(playbook, key string, since time.Time) ([]Record, error) {
	var out []Record
	err := l.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		seen := map[string]bool{}
		prefix := keyPrefix(playbook, key)
		c := tx.Bucket(bucketByKey).Cursor()
		for k, _ := c.Seek(append(slices.Clip(prefix), timeKey(since, "")...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			id := idOfTimeKey(k[len(prefix):])
			v := runs.Get(id)
			if v == nil {
				continue
			}
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			seen[rec.ID] = true
			out = append(out, rec)
		}
		var old []Record
		err := eachIn(tx, bucketUnfinished, func(rec Record) error {
			if !seen[rec.ID] && rec.Playbook == playbook && rec.LimitKey == key && rec.Counts() {
				old = append(old, rec)
			}
			return nil
		})
		slices.SortFunc(old, func(a, b Record) int { return a.ClaimedAt.Compare(b.ClaimedAt) })
		out = append(old, out...)
		return err
	})
	return out, err
}

// index puts rec into the limit-key index if it counts, and takes it out
// if it does not (a claimed run that ended skipped).
func index(tx *bolt.Tx, rec Record) error {
	if rec.LimitKey == "" {
		return nil
	}
	b := tx.Bucket(bucketByKey)
	if rec.Counts() {
		return b.Put(keyIndex(rec), nil)
	}
	return b.Delete(keyIndex(rec))
}

// keyPrefix is where the index entries of playbook's runs for key start.
// Neither a playbook name nor a rendered key holds a NUL byte (labels
// cannot), so the prefix is unambiguous.
func keyPrefix(playbook, key string) []byte {
	return fmt.Appendf(nil, "%s\x00%s\x00", playbook, key)
}

func keyIndex(rec Record) []byte {
	return append(keyPrefix(rec.Playbook, rec.LimitKey), timeKey(rec.ClaimedAt, rec.ID)...)
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// timeKey orders records by claim time: 20-digit Unix nanoseconds, "/", id.
func timeKey(t time.Time, id string) []byte {
	return fmt.Appendf(nil, "%020d/%s", t.UnixNano(), id)
}

func idOfTimeKey(k []byte) []byte {
	if i := bytes.IndexByte(k, '/'); i >= 0 {
		return k[i+1:]
	}
	return nil
}

// Size returns how many runs and episodes the log holds.
func (l *Log) Size() (runs, episodes int, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		runs = tx.Bucket(bucketRuns).Stats().KeyN
		episodes = tx.Bucket(bucketEpisodes).Stats().KeyN
		return nil
	})
	return runs, episodes, err
}
