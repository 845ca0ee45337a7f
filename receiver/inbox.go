package receiver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/selfheal/selfheal/alert"
)

var bucketInbox = []byte("inbox")

// ErrFull is returned by Put when accepting the batch would exceed the
// inbox's capacity. The webhook answers 503 and Alertmanager retries.
var ErrFull = errors.New("inbox full")

// Inbox is the durable queue between the webhook and the engine. Put
// returns only once the batch is fsynced; concurrent Puts share one commit
// (bbolt's Batch), so a burst costs few fsyncs. A batch stays in the inbox
// until the engine acknowledges it, so a crash after 202 loses nothing: the
// batch is delivered again after the restart.
//
// Put and Depth are safe for concurrent use; Next and Ack are for the one
// consumer.
type Inbox struct {
	db       *bolt.DB
	capacity int

	mu    sync.Mutex
	depth int // alerts stored and not acknowledged, including reservations
	// sizes holds the alert count of every batch handed out by Next and
	// not yet acknowledged. It is filled by the reader, never by Put, so
	// an Ack can never come before the size it subtracts: the depth is
	// exact by construction, however a Put and an Ack of its batch race.
	sizes  map[uint64]int
	cursor uint64        // last seq handed out by Next
	wake   chan struct{} // signalled after each Put
}

// OpenInbox opens (or creates) dir/inbox.db. capacity is the most alerts it
// holds unacknowledged; 0 or less means 10000.
func OpenInbox(dir string, capacity int) (*Inbox, error) {
	if capacity <= 0 {
		capacity = 10000
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open inbox: %w", err)
	}
	path := filepath.Join(dir, "inbox.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open inbox %s: %w", path, err)
	}
	// Group commit: a concurrent Put waits at most this long to share an fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	in := &Inbox{db: db, capacity: capacity, sizes: map[uint64]int{}, wake: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketInbox)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var batch alert.Batch
			if err := json.Unmarshal(v, &batch); err != nil {
				return fmt.Errorf("batch %d: %w", binary.BigEndian.Uint64(k), err)
			}
			in.depth += len(batch.Alerts)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open inbox %s: %w", path, err)
	}
	return in, nil
}

// Close closes the database.
func (in *Inbox) Close() error { return in.db.Close() }

// Capacity returns the most alerts the inbox holds.
func (in *Inbox) Capacity() int { return in.capacity }

// Depth returns how many alerts are stored and not yet acknowledged.
func (in *Inbox) Depth() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.depth
}

// Put stores b durably, all or nothing, and returns it with its sequence
// number. It returns ErrFull without storing anything when b does not fit.
func (in *Inbox) Put(ctx context.Context, b alert.Batch) (alert.Batch, error) {
	n := len(b.Alerts)
	in.mu.Lock()
	if in.depth+n > in.capacity {
		in.mu.Unlock()
		return alert.Batch{}, ErrFull
	}
	in.depth += n // reserve, so concurrent Puts cannot overshoot
	in.mu.Unlock()

	err := in.db.Batch(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		bk := tx.Bucket(bucketInbox)
		seq, err := bk.NextSequence()
		if err != nil {
			return err
		}
		b.Seq = seq
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		return bk.Put(seqKey(seq), data)
	})
	if err != nil {
		in.mu.Lock()
		in.depth -= n // the reservation of a batch that was never stored
		in.mu.Unlock()
		return alert.Batch{}, fmt.Errorf("store batch: %w", err)
	}
	select {
	case in.wake <- struct{}{}:
	default:
	}
	return b, nil
}

// Next returns the oldest stored batch not yet handed out, waiting for one
// if there is none. After a restart it starts again from the oldest batch
// not acknowledged.
func (in *Inbox) Next(ctx context.Context) (alert.Batch, error) {
	for {
		b, ok, err := in.next()
		if err != nil || ok {
			return b, err
		}
		select {
		case <-ctx.Done():
			return alert.Batch{}, ctx.Err()
		case <-in.wake:
		}
	}
}

func (in *Inbox) next() (alert.Batch, bool, error) {
	in.mu.Lock()
	after := in.cursor
	in.mu.Unlock()
	var b alert.Batch
	found := false
	err := in.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketInbox).Cursor()
		k, v := c.Seek(seqKey(after + 1))
		if k == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &b)
	})
	if err != nil {
		return alert.Batch{}, false, fmt.Errorf("read inbox: %w", err)
	}
	if found {
		in.mu.Lock()
		in.cursor = b.Seq
		in.sizes[b.Seq] = len(b.Alerts)
		in.mu.Unlock()
	}
	return b, found, nil
}

// Ack removes the batch with seq: the engine has recorded everything it
// decided for it.
func (in *Inbox) Ack(seq uint64) error {
	err := in.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInbox).Delete(seqKey(seq))
	})
	if err != nil {
		return fmt.Errorf("ack batch %d: %w", seq, err)
	}
	in.mu.Lock()
	in.depth -= in.sizes[seq]
	delete(in.sizes, seq)
	in.mu.Unlock()
	return nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// DepthCollector exports the inbox depth as selfheal_inbox_depth.
func (in *Inbox) DepthCollector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "selfheal_inbox_depth",
		Help: "Alerts accepted and stored but not yet processed by the engine.",
	}, func() float64 { return float64(in.Depth()) })
}
