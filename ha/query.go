package ha

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// States are every State a record can be in, in the order a run goes
// through them, the final ones last.
var States = []State{Claimed, Running, Verifying, Succeeded, Failed, Skipped, Unhealed, Shadow}

// ParseState returns the State named s, or false when there is none.
func ParseState(s string) (State, bool) {
	st := State(s)
	return st, st.rank() > 0
}

// MaxQueryScan is the most index entries one Query reads. A filter that
// matches little of a large log ends the page early, with a cursor to go on
// from, rather than read the whole log in one request.
const MaxQueryScan = 10000

// ErrBadCursor is returned by Query for an After that no Page gave out.
var ErrBadCursor = errors.New("not a cursor that this API returned")

// Query selects runs from the log, newest claim first.
type Query struct {
	// Playbook keeps only the runs of this playbook; "" keeps all.
	Playbook string
	// States keeps only the runs in one of these states; none keeps all.
	States []State
	// Since keeps only the runs claimed at or after it; zero keeps all.
	Since time.Time
	// After is Page.Next of the page before: the query goes on with the
	// runs claimed before the last one that page read. "" starts with the
	// newest.
	After string
	// Limit is the most runs a page holds; it must be positive.
	Limit int
	// MaxScan is the most index entries the query reads; 0 means
	// MaxQueryScan.
	MaxScan int
}

// Page is one page of a Query's answer.
type Page struct {
	Runs []Record
	// Next is the cursor for the next page (Query.After); "" when no run
	// that the query selects is left. A page may hold fewer than Limit
	// runs and still have a Next, when MaxQueryScan ended it.
	Next string
}

// Query returns the page of the runs q selects. It reads the claim-time
// index from q.After (or the newest run) backwards, in one read-only
// transaction, and holds at most q.Limit records: never the whole log. A
// run claimed, or pruned, between two pages does not shift the ones after
// it: no run is repeated or skipped across pages, except one whose claim
// time changed in between (a take-over by an earlier claim).
func (l *Log) Query(q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("query the execution log: limit %d: want at least 1", q.Limit)
	}
	var from *cursor
	if q.After != "" {
		c, err := parseCursor(q.After)
		if err != nil {
			return Page{}, err
		}
		from = &c
	}
	budget := q.MaxScan
	if budget <= 0 {
		budget = MaxQueryScan
	}
	var page Page
	err := l.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		c := tx.Bucket(bucketByTime).Cursor()
		var k []byte
		if from == nil {
			k, _ = c.Last()
		} else if k, _ = c.Seek(timeKey(from.at, from.id)); k == nil {
			k, _ = c.Last() // every key is before the cursor
		} else {
			k, _ = c.Prev() // the cursor's own key, or the first after it
		}
		var end []byte
		if !q.Since.IsZero() {
			end = timeKey(q.Since, "")
		}
		var last *Record // the last record read, matching or not
		for scanned := 0; k != nil && (end == nil || bytes.Compare(k, end) >= 0); k, _ = c.Prev() {
			v := runs.Get(idOfTimeKey(k))
			if v == nil {
				continue // an index entry without its record: nothing to show
			}
			if scanned == budget {
				page.Next = last.cursor() // more to read: go on from the last one read
				return nil
			}
			scanned++
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("run %s: %w", idOfTimeKey(k), err)
			}
			last = &rec
			if !q.selects(rec) {
				continue
			}
			if len(page.Runs) == q.Limit {
				page.Next = page.Runs[len(page.Runs)-1].cursor() // another one follows
				return nil
			}
			page.Runs = append(page.Runs, rec)
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("query the execution log: %w", err)
	}
	return page, nil
}

func (q Query) selects(rec Record) bool {
	if q.Playbook != "" && rec.Playbook != q.Playbook {
		return false
	}
	if len(q.States) == 0 {
		return true
	}
	for _, s := range q.States {
		if rec.State == s {
			return true
		}
	}
	return false
}

// cursor is a position in the claim-time index: the claim time and id of
// the last record a page read.
type cursor struct {
	at time.Time
	id string
}

// cursor returns where a page that read rec last goes on from: base64
// (URL alphabet) of "<unix nanoseconds>/<id>".
func (r *Record) cursor() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d/%s", r.ClaimedAt.UnixNano(), r.ID))
}

func parseCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, ErrBadCursor
	}
	ns, id, ok := strings.Cut(string(raw), "/")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return cursor{}, ErrBadCursor
	}
	return cursor{at: time.Unix(0, n).UTC(), id: id}, nil
}
