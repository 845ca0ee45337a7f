package engine

import (
	"context"
	"errors"
	"time"

	"github.com/selfheal/selfheal/ha"
)

// maxStorageBackoff caps the wait between two tries of a failing write.
const maxStorageBackoff = 30 * time.Second

// write runs fn until it succeeds. A failed write (ENOSPC, EFBIG, EIO on
// the store) is retried with a doubling backoff rather than ending the
// engine: a daemon that exits on a full disk restarts into the same full
// disk, a crash loop. While writes fail the engine reports it through
// StorageError (so /-/ready fails and the webhook answers 503), a metric
// and the log; the first success clears it. Errors of the log's own rules
// (a state moving backwards) are returned at once. write returns ctx's
// error if ctx ends first.
func (e *Engine) write(ctx context.Context, what string, fn func() error) error {
	backoff := e.opts.RetryBackoff
	for {
		err := fn()
		if err == nil {
			e.storageRecovered()
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ha.ErrBackwards) || errors.Is(err, ha.ErrNotFound) || errors.Is(err, ha.ErrSuperseded) {
			return err
		}
		e.storageFailed(what, err, backoff)
		if !e.sleep(ctx, backoff) {
			return err
		}
		backoff = min(2*backoff, maxStorageBackoff)
	}
}

func (e *Engine) storageFailed(what string, err error, retryIn time.Duration) {
	e.m.storageErrs.Inc()
	e.m.storageFail.Set(1)
	e.storageErr.Store(&err)
	e.lg.Error("execution log write failed; not ready, retrying", "op", what, "retry_in", retryIn, "err", err)
}

func (e *Engine) storageRecovered() {
	if e.storageErr.Swap(nil) != nil {
		e.m.storageFail.Set(0)
		e.lg.Info("execution log writable again; ready")
	}
}

// StorageError returns the last write error of the execution log while
// writes are failing, and nil when the last write succeeded. Safe for
// concurrent use.
func (e *Engine) StorageError() error {
	if p := e.storageErr.Load(); p != nil {
		return *p
	}
	return nil
}
