package receiver

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// TestInboxLonePutDoesNotWaitForABatch: with nothing else to commit, a
// Put commits at once. (bbolt's Batch held every lone request for its
// MaxBatchDelay, 2 ms of the alert-to-action latency, in the hope of
// company.) In a synctest bubble a timer-driven wait shows as fake time
// passing.
func TestInboxLonePutDoesNotWaitForABatch(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		in, err := OpenInbox(dir, 10)
		require.NoError(t, err)
		defer in.Close()
		start := time.Now()
		_, err = in.Put(context.Background(), batchOf(1))
		require.NoError(t, err)
		require.Zero(t, time.Since(start), "a lone Put waited on a timer")
		require.EqualValues(t, 1, in.commits.Load())
	})
}

// TestInboxPutsArrivingDuringACommitShareTheNext: Puts that arrive while
// a commit is being written are stored together by the next one, one
// fsync for all of them, and each learns its own sequence number.
func TestInboxPutsArrivingDuringACommitShareTheNext(t *testing.T) {
	in, err := OpenInbox(t.TempDir(), 1000)
	require.NoError(t, err)
	defer in.Close()
	release := make(chan struct{})
	var once sync.Once
	in.beforeCommit = func() { once.Do(func() { <-release }) }

	const followers = 63
	seqs := make(chan uint64, followers+1)
	var wg sync.WaitGroup
	put := func() {
		b, err := in.Put(context.Background(), batchOf(1))
		require.NoError(t, err)
		seqs <- b.Seq
	}
	wg.Go(put) // the first commit, held by beforeCommit
	require.Eventually(t, func() bool { return in.committing() }, 10*time.Second, time.Millisecond)
	for range followers {
		wg.Go(put)
	}
	require.Eventually(t, func() bool { return in.waiting() == followers }, 10*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	close(seqs)

	require.EqualValues(t, 2, in.commits.Load(), "one commit for the first Put, one for the 63 that queued behind it")
	seen := map[uint64]bool{}
	for s := range seqs {
		require.False(t, seen[s], "sequence %d given twice", s)
		seen[s] = true
	}
	require.Len(t, seen, followers+1)
	for s := uint64(1); s <= followers+1; s++ {
		require.True(t, seen[s], "sequence %d missing", s)
	}
	for range followers + 1 {
		b, err := in.Next(context.Background())
		require.NoError(t, err)
		require.Len(t, b.Alerts, 1)
		require.NoError(t, in.Ack(b.Seq))
	}
	require.Zero(t, in.Depth())
}

// TestInboxFailedCommitFailsEveryPutInIt: a commit that fails fails all
// the Puts it carried, and releases their reservations.
func TestInboxFailedCommitFailsEveryPutInIt(t *testing.T) {
	in, err := OpenInbox(t.TempDir(), 10)
	require.NoError(t, err)
	require.NoError(t, in.Close())
	_, err = in.Put(context.Background(), batchOf(3))
	require.ErrorContains(t, err, "store batch")
	require.Zero(t, in.Depth())
}

// onDisk returns the sequence numbers stored in the inbox's file.
func onDisk(t *testing.T, in *Inbox) []uint64 {
	t.Helper()
	var seqs []uint64
	require.NoError(t, in.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInbox).ForEach(func(k, _ []byte) error {
			seqs = append(seqs, binary.BigEndian.Uint64(k))
			return nil
		})
	}))
	return seqs
}

// TestInboxAckRidesOnTheNextCommit: an acknowledgement costs no write of
// its own while batches keep coming: the next commit deletes it.
func TestInboxAckRidesOnTheNextCommit(t *testing.T) {
	in, err := OpenInbox(t.TempDir(), 10)
	require.NoError(t, err)
	defer in.Close()
	_, err = in.Put(context.Background(), batchOf(2))
	require.NoError(t, err)
	b, err := in.Next(context.Background())
	require.NoError(t, err)
	require.NoError(t, in.Ack(b.Seq))
	require.Zero(t, in.Depth(), "acknowledged alerts no longer count")
	require.EqualValues(t, 1, in.commits.Load(), "the Ack wrote nothing yet")
	require.Equal(t, []uint64{1}, onDisk(t, in))

	_, err = in.Put(context.Background(), batchOf(1))
	require.NoError(t, err)
	require.EqualValues(t, 2, in.commits.Load())
	require.Equal(t, []uint64{2}, onDisk(t, in), "the second commit stored batch 2 and deleted batch 1")
}

// TestInboxAckReachesDiskWhenIdle: with no commit to ride on, an
// acknowledgement is written within AckFlushDelay, and Close writes
// whatever is still pending, so a clean restart hands out nothing again.
func TestInboxAckReachesDiskWhenIdle(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		in, err := OpenInbox(dir, 10)
		require.NoError(t, err)
		for range 2 {
			_, err = in.Put(context.Background(), batchOf(1))
			require.NoError(t, err)
		}
		b, err := in.Next(context.Background())
		require.NoError(t, err)
		require.NoError(t, in.Ack(b.Seq))
		time.Sleep(AckFlushDelay) // fake time: the flush timer fires
		synctest.Wait()
		require.Equal(t, []uint64{2}, onDisk(t, in))

		b, err = in.Next(context.Background())
		require.NoError(t, err)
		require.NoError(t, in.Ack(b.Seq))
		require.NoError(t, in.Close(), "Close writes the pending acknowledgement")
	})
	in, err := OpenInbox(dir, 10)
	require.NoError(t, err)
	defer in.Close()
	require.Empty(t, onDisk(t, in))
	require.Zero(t, in.Depth())
}

// TestInboxUnflushedAckIsHandedOutAgain: a crash before an acknowledgement
// reached disk hands its batch out again after the restart (the engine
// treats it as a duplicate): nothing is lost, nothing is skipped.
func TestInboxUnflushedAckIsHandedOutAgain(t *testing.T) {
	dir := t.TempDir()
	in, err := OpenInbox(dir, 10)
	require.NoError(t, err)
	_, err = in.Put(context.Background(), batchOf(1))
	require.NoError(t, err)
	b, err := in.Next(context.Background())
	require.NoError(t, err)
	require.NoError(t, in.Ack(b.Seq))
	// A crash: the file is closed without the pending acknowledgement.
	in.mu.Lock()
	in.closed = true
	in.flushing.Stop()
	in.mu.Unlock()
	require.NoError(t, in.db.Close())

	in, err = OpenInbox(dir, 10)
	require.NoError(t, err)
	defer in.Close()
	require.Equal(t, 1, in.Depth())
	again, err := in.Next(context.Background())
	require.NoError(t, err)
	require.Equal(t, b.Seq, again.Seq)
}
