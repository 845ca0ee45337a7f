package actions

import (
	"errors"
	"fmt"
)

// RetryableError marks a failure that may succeed if the step is tried
// again: a 5xx, a timeout, a connection refused.
type RetryableError struct{ Err error }

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable marks err as worth retrying. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err}
}

// Retryablef is Retryable(fmt.Errorf(format, args...)).
func Retryablef(format string, args ...any) error {
	return Retryable(fmt.Errorf(format, args...))
}

// IsRetryable reports whether err, or an error it wraps, is retryable.
// Anything not marked is permanent.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}
