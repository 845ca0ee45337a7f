package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
)

// fullDisk is an execution log whose writes fail with ENOSPC while full
// is set and failing(op, rec) says so: a disk that filled up under log.db.
type fullDisk struct {
	*ha.Log
	full    atomic.Bool
	failing func(op string, rec ha.Record) bool
	refused atomic.Int64
}

func (d *fullDisk) fail(op string, rec ha.Record) error {
	if d.full.Load() && d.failing(op, rec) {
		d.refused.Add(1)
		return fmt.Errorf("%s: write log.db: %w", op, syscall.ENOSPC)
	}
	return nil
}

func (d *fullDisk) Observe(a alert.Alert) (ha.Observation, error) {
	if err := d.fail("observe", ha.Record{}); err != nil {
		return "", err
	}
	return d.Log.Observe(a)
}

func (d *fullDisk) ObserveAll(alerts []alert.Alert) ([]ha.Observation, error) {
	if err := d.fail("observe", ha.Record{}); err != nil {
		return nil, err
	}
	return d.Log.ObserveAll(alerts)
}

func (d *fullDisk) Claim(ctx context.Context, rec ha.Record) (ha.Record, bool, error) {
	if err := d.fail("claim", rec); err != nil {
		return ha.Record{}, false, err
	}
	return d.Log.Claim(ctx, rec)
}

func (d *fullDisk) Update(rec ha.Record) error {
	if err := d.fail("update", rec); err != nil {
		return err
	}
	return d.Log.Update(rec)
}

// TestFullDiskUnderTheLogKeepsServing fills the disk under the execution
// log, at every write and at only the "running" mark of a run. The engine
// must not stop: it reports the failure, retries, and once space returns
// the alert runs exactly once.
func TestFullDiskUnderTheLogKeepsServing(t *testing.T) {
	cases := map[string]func(op string, rec ha.Record) bool{
		"every write":      func(string, ha.Record) bool { return true },
		"the running mark": func(op string, rec ha.Record) bool { return op == "update" && rec.State == ha.Running },
	}
	for name, failing := range cases {
		t.Run(name, func(t *testing.T) {
			disk := &fullDisk{failing: failing}
			disk.full.Store(true)
			f := newFixtureWith(t, t.TempDir(), firingAndResolved, engine.Options{}, func(l *ha.Log) engine.Log {
				disk.Log = l
				return disk
			})
			f.deliver(t, "single-firing")
			require.Eventually(t, func() bool { return disk.refused.Load() >= 3 }, 10*time.Second, time.Millisecond,
				"the write is retried")
			require.ErrorIs(t, f.eng.StorageError(), syscall.ENOSPC)
			require.Equal(t, 1.0, f.gauge("selfheal_engine_storage_failing"))
			require.Zero(t, f.rec.count(), "nothing runs while its record cannot be written")
			select {
			case err := <-f.done:
				t.Fatalf("the engine stopped on a full disk: %v", err)
			default:
			}

			disk.full.Store(false) // space returns
			f.settle(t)
			require.Equal(t, 1, f.rec.count(), "the alert ran once: the job was kept, not dropped")
			require.NoError(t, f.eng.StorageError())
			require.Equal(t, 0.0, f.gauge("selfheal_engine_storage_failing"))
			recs, err := f.log.List(0)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			require.Equal(t, ha.Succeeded, recs[0].State)
		})
	}
}
