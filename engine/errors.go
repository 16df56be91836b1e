package engine

import (
	"errors"
	"fmt"
	"time"
)

// transientError marks an error the engine may retry.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient marks err as worth retrying (a 5xx, a dropped connection, a rate limit).
// Steps decide what is transient; the engine only retries what they mark.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err: err}
}

// RetryAfter marks err as transient and asks the engine to wait at least d before the
// next attempt (a Retry-After header, a rate-limit reset).
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &transientError{err: err, retryAfter: d}
}

// IsTransient reports whether err (or an error it wraps) was marked Transient, and the
// least delay asked for before retrying.
func IsTransient(err error) (bool, time.Duration) {
	var t *transientError
	if errors.As(err, &t) {
		return true, t.retryAfter
	}
	return false, 0
}

// WaitingError ends a step in status waiting: it needs a person (an approval, a
// confirmation) and the run can be continued later with `runbook resume`.
type WaitingError struct {
	Reason string
}

func (e *WaitingError) Error() string { return "waiting: " + e.Reason }

// Waiting returns an error that puts the step, and the run, in status waiting.
func Waiting(format string, args ...any) error {
	return &WaitingError{Reason: fmt.Sprintf(format, args...)}
}

// RejectedError ends the run in status rejected: a person refused it, with a reason.
type RejectedError struct {
	By     string
	Reason string
}

func (e *RejectedError) Error() string {
	if e.By != "" {
		return fmt.Sprintf("rejected by %s: %s", e.By, e.Reason)
	}
	return "rejected: " + e.Reason
}

// Rejected returns an error that ends the run in status rejected.
func Rejected(by, reason string) error { return &RejectedError{By: by, Reason: reason} }
