package receiver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

func batchOf(n int) alert.Batch {
	b := alert.Batch{ReceivedAt: time.Unix(1, 0).UTC()}
	for i := range n {
		labels := map[string]string{"alertname": "A", "i": string(rune('a' + i))}
		b.Alerts = append(b.Alerts, alert.Alert{Status: alert.Firing, Labels: labels, StartsAt: time.Unix(1, 0).UTC(), Fingerprint: alert.Fingerprint(labels)})
	}
	return b
}

func TestInboxKeepsWhatIsNotAcknowledgedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	in, err := OpenInbox(dir, 100)
	require.NoError(t, err)
	b1, err := in.Put(ctx, batchOf(1))
	require.NoError(t, err)
	b2, err := in.Put(ctx, batchOf(2))
	require.NoError(t, err)
	require.Less(t, b1.Seq, b2.Seq)

	got, err := in.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, b1.Seq, got.Seq)
	require.NoError(t, in.Ack(got.Seq))
	got, err = in.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, b2.Seq, got.Seq) // handed out, but not acknowledged: a crash now
	require.NoError(t, in.Close())

	in, err = OpenInbox(dir, 100)
	require.NoError(t, err)
	defer in.Close()
	require.Equal(t, 2, in.Depth())
	got, err = in.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, b2, got, "the unacknowledged batch comes back whole after a restart")
	require.NoError(t, in.Ack(got.Seq))
	require.Equal(t, 0, in.Depth())
}

func TestInboxNextWaitsForPut(t *testing.T) {
	in, err := OpenInbox(t.TempDir(), 100)
	require.NoError(t, err)
	defer in.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan alert.Batch)
	go func() {
		b, err := in.Next(ctx)
		if err == nil {
			done <- b
		}
		close(done)
	}()
	put, err := in.Put(ctx, batchOf(1))
	require.NoError(t, err)
	got, ok := <-done
	require.True(t, ok)
	require.Equal(t, put.Seq, got.Seq)

	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	_, err = in.Next(short)
	require.ErrorIs(t, err, context.Canceled)
}

func TestInboxCapacityUnderConcurrentPuts(t *testing.T) {
	in, err := OpenInbox(t.TempDir(), 50)
	require.NoError(t, err)
	defer in.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for range 40 {
		wg.Go(func() {
			_, err := in.Put(context.Background(), batchOf(2))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, ErrFull)
				full++
			}
		})
	}
	wg.Wait()
	require.Equal(t, 25, ok, "exactly capacity/2 batches of 2 fit")
	require.Equal(t, 15, full)
	require.Equal(t, 50, in.Depth())
}

// TestInboxDepthIsExactWhenAckOvertakesPut has a consumer acknowledge
// batches as fast as producers store them, so an Ack often lands before
// the Put that stored the batch has returned. The depth must come back to
// zero: a lost decrement would leave the inbox "full" while empty.
func TestInboxDepthIsExactWhenAckOvertakesPut(t *testing.T) {
	const producers, puts = 8, 200
	in, err := OpenInbox(t.TempDir(), producers*puts*3)
	require.NoError(t, err)
	defer in.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	acked := make(chan int)
	go func() {
		n := 0
		for n < producers*puts {
			b, err := in.Next(ctx)
			if err != nil {
				break
			}
			if in.Ack(b.Seq) != nil {
				break
			}
			n++
		}
		acked <- n
	}()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range puts {
				_, err := in.Put(ctx, batchOf(1+(p+i)%3))
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, producers*puts, <-acked)
	require.Equal(t, 0, in.Depth(), "every stored alert was acknowledged")
}
