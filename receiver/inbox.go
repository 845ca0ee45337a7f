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
	"sync/atomic"
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
// returns only once the batch is fsynced. Commits are grouped: a Put that
// finds no commit under way writes its batch at once; Puts that arrive
// while a commit is being written wait for it to end and are then written
// together, in one transaction and one fsync. So a lone request never
// waits for company, and a burst costs about one fsync per fsync time
// rather than one per request. A batch stays in the inbox
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

	// Group commit: queue holds the Puts waiting for the next commit;
	// writing is true while one goroutine (the first Put that found no
	// commit under way) writes them.
	queue   []*put
	writing bool
	// acked holds the batches acknowledged but not yet deleted on disk:
	// the next commit deletes them with the batches it stores, or, when
	// none comes, flush does within AckFlushDelay.
	acked    []uint64
	flushing *time.Timer
	closed   bool
	// commits counts transactions written by Put; beforeCommit, when set
	// by a test, runs before each.
	commits      atomic.Int64
	beforeCommit func()
}

// put is one Put waiting for its commit: its encoded batch, and where the
// commit reports the sequence number it got, or the error.
type put struct {
	data []byte
	seq  uint64
	err  error
	// turn is closed when the batch is committed, or, with lead set, when
	// it is this Put's turn to write.
	turn chan struct{}
	lead bool
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

// Close writes the acknowledgements still pending and closes the database.
func (in *Inbox) Close() error {
	in.mu.Lock()
	in.closed = true
	if in.flushing != nil {
		in.flushing.Stop()
	}
	acked := in.acked
	in.acked = nil
	in.mu.Unlock()
	var err error
	if len(acked) > 0 {
		err = in.write(nil, acked)
	}
	return errors.Join(err, in.db.Close())
}

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

	// Encoded here, in the request's goroutine, not in the commit: the
	// sequence number is the key, and the batch takes it back when read.
	err := ctx.Err()
	var data []byte
	if err == nil {
		data, err = json.Marshal(b)
	}
	if err == nil {
		b.Seq, err = in.commit(data)
	}
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

// commit stores data as the next batch and returns its sequence number,
// once it is fsynced. A Put that finds no commit under way writes at
// once, with whatever else is queued by then; Puts that arrive meanwhile
// queue, and when the commit ends the first of them writes all that are
// queued, and so on: each writer writes one round, so none is held up
// serving later requests.
func (in *Inbox) commit(data []byte) (uint64, error) {
	p := &put{data: data, turn: make(chan struct{})}
	in.mu.Lock()
	in.queue = append(in.queue, p)
	if in.writing {
		in.mu.Unlock()
		// The wait is not cut short by the request's context: once queued
		// the batch may be stored, and a stored batch its sender was told
		// had failed would be delivered again by Alertmanager's retry.
		<-p.turn
		if !p.lead {
			return p.seq, p.err
		}
		in.mu.Lock()
	}
	in.writing = true
	in.writeRound() // unlocks and locks in.mu
	in.handOff()
	in.mu.Unlock()
	return p.seq, p.err
}

// handOff ends a writer's turn, with in.mu held: the first Put queued
// meanwhile writes next, or no one writes.
func (in *Inbox) handOff() {
	if len(in.queue) == 0 {
		in.writing = false
		return
	}
	next := in.queue[0]
	next.lead = true
	close(next.turn)
}

// writeRound writes what is queued and acknowledged, with in.mu held on
// entry and exit but not while writing.
func (in *Inbox) writeRound() {
	group, acked := in.queue, in.acked
	in.queue, in.acked = nil, nil
	in.mu.Unlock()
	err := in.write(group, acked)
	in.mu.Lock()
	if err != nil { // deleted with a later commit
		in.acked = append(in.acked, acked...)
	}
}

// AckFlushDelay is how long an acknowledgement waits for a commit to
// carry it to disk before it is written on its own.
const AckFlushDelay = 100 * time.Millisecond

// flush deletes the acknowledged batches no commit carried, unless a
// commit is under way, which then does.
func (in *Inbox) flush() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.flushing = nil
	if in.writing || len(in.acked) == 0 || in.closed {
		return
	}
	in.writing = true
	in.writeRound()
	in.handOff()
	if len(in.acked) > 0 && in.flushing == nil { // the write failed
		in.flushing = time.AfterFunc(AckFlushDelay, in.flush)
	}
}

// write stores group and deletes acked, in one transaction, and tells each
// Put of group.
func (in *Inbox) write(group []*put, acked []uint64) error {
	if in.beforeCommit != nil {
		in.beforeCommit()
	}
	in.commits.Add(1)
	err := in.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketInbox)
		for _, seq := range acked {
			if err := bk.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		for _, p := range group {
			seq, err := bk.NextSequence()
			if err != nil {
				return err
			}
			if err := bk.Put(seqKey(seq), p.data); err != nil {
				return err
			}
			p.seq = seq
		}
		return nil
	})
	for _, p := range group {
		if err != nil {
			p.seq, p.err = 0, err
		}
		if !p.lead { // a leader's turn was closed to hand it the lead
			close(p.turn)
		}
	}
	return err
}

// committing reports whether a commit is being written; waiting, how many
// Puts wait for the next. For tests.
func (in *Inbox) committing() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.writing
}

func (in *Inbox) waiting() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.queue)
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
	bs, err := in.Pending(1)
	if err != nil || len(bs) == 0 {
		return alert.Batch{}, false, err
	}
	return bs[0], true, nil
}

// Pending returns, without waiting, the oldest stored batches not yet
// handed out, as many as fit in maxAlerts alerts, but always at least one
// if there is one: what the engine takes besides the batch Next gave it,
// so that a backlog is recorded in few writes.
func (in *Inbox) Pending(maxAlerts int) ([]alert.Batch, error) {
	in.mu.Lock()
	after := in.cursor
	in.mu.Unlock()
	var out []alert.Batch
	n := 0
	err := in.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketInbox).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && n < maxAlerts; k, v = c.Next() {
			var b alert.Batch
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("batch %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if len(out) > 0 && n+len(b.Alerts) > maxAlerts {
				return nil
			}
			b.Seq = binary.BigEndian.Uint64(k)
			out = append(out, b)
			n += len(b.Alerts)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	if len(out) > 0 {
		in.mu.Lock()
		in.cursor = out[len(out)-1].Seq
		for _, b := range out {
			in.sizes[b.Seq] = len(b.Alerts)
		}
		in.mu.Unlock()
	}
	return out, nil
}

// Ack acknowledges the batch with seq: the engine has recorded everything
// it decided for it, so it is not handed out again and its alerts no
// longer count against the capacity. Its deletion on disk rides on the
// next commit, or is written within AckFlushDelay: an fsync saved per
// request. A crash before that hands the batch out again after the
// restart, which the engine, whose decisions are on disk and idempotent
// per episode, takes for the duplicate it is.
func (in *Inbox) Ack(seq uint64) error { return in.AckAll([]uint64{seq}) }

// AckAll is Ack for several batches.
func (in *Inbox) AckAll(seqs []uint64) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, seq := range seqs {
		in.depth -= in.sizes[seq]
		delete(in.sizes, seq)
	}
	in.acked = append(in.acked, seqs...)
	if in.flushing == nil && !in.closed {
		in.flushing = time.AfterFunc(AckFlushDelay, in.flush)
	}
	return nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// DepthCollector exports the inbox depth as selfheal_inbox_depth and its
// capacity (receiver.inbox_size) as selfheal_inbox_capacity, so that an
// alert can compare the two.
func (in *Inbox) DepthCollector() prometheus.Collector {
	return collectors{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "selfheal_inbox_depth",
			Help: "Alerts accepted and stored but not yet processed by the engine.",
		}, func() float64 { return float64(in.Depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "selfheal_inbox_capacity",
			Help: "The most alerts the inbox holds unprocessed (receiver.inbox_size); past it the webhook answers 503.",
		}, func() float64 { return float64(in.capacity) }),
	}
}

// collectors is several collectors registered as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}
