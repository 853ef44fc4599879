package bank

import (
	"errors"
	"fmt"
	"time"
)

// Class is what a caller should do about a failed call.
type Class string

const (
	// ClassAlreadySubmitted: the bank already has an application with this id (its duplicate
	// 400). For a caller that retries after a crash this means the submission succeeded.
	ClassAlreadySubmitted Class = "already_submitted"
	// ClassNotFound: the bank does not know the application (404). Right after a submission
	// this can be lag; later it means the bank restarted and forgot it.
	ClassNotFound Class = "not_found"
	// ClassInvalid: the bank refused the payload for good (any other 4xx). Retrying the same
	// payload cannot succeed.
	ClassInvalid Class = "invalid"
	// ClassThrottled: the bank asked to slow down (429); RetryAfter says for how long when the
	// bank said.
	ClassThrottled Class = "throttled"
	// ClassTransient: 5xx, timeouts, refused or reset connections, or an answer that is not the
	// documented JSON. Retry with backoff.
	ClassTransient Class = "transient"
)

// Error is the error every call of Client returns on failure.
type Error struct {
	// Class says what to do about it.
	Class Class
	// Op is the operation that failed: "submit" or "get_job".
	Op string
	// StatusCode is the HTTP status of the answer, or 0 when there was none.
	StatusCode int
	// Message is the bank's own error message when it sent one, else a description.
	Message string
	// RetryAfter is the bank's Retry-After delay for ClassThrottled, zero when not given.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error
}

// Error says which call failed, its class, the HTTP status when there was one, and why.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("bank %s: %s (HTTP %d): %s", e.Op, e.Class, e.StatusCode, msg)
	}
	return fmt.Sprintf("bank %s: %s: %s", e.Op, e.Class, msg)
}

// Unwrap returns the underlying error, so that errors.Is(err, context.Canceled) and the like
// see through an *Error.
func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: the Class of a *Error anywhere in its chain, ClassTransient
// for any other non-nil error (an unknown failure is worth a retry), and "" for nil.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var be *Error
	if errors.As(err, &be) {
		return be.Class
	}
	return ClassTransient
}

// IsAlreadySubmitted reports whether err is the bank's duplicate-id answer.
func IsAlreadySubmitted(err error) bool { return ClassOf(err) == ClassAlreadySubmitted }

// IsNotFound reports whether the bank does not know the application.
func IsNotFound(err error) bool { return ClassOf(err) == ClassNotFound }

// IsInvalid reports whether the bank refused the payload for good.
func IsInvalid(err error) bool { return ClassOf(err) == ClassInvalid }

// IsThrottled reports whether the bank asked to slow down.
func IsThrottled(err error) bool { return ClassOf(err) == ClassThrottled }

// IsTransient reports whether err is worth retrying later as it is.
func IsTransient(err error) bool { return ClassOf(err) == ClassTransient }

// RetryAfter returns the delay the bank asked for with a 429, and whether it gave one.
func RetryAfter(err error) (time.Duration, bool) {
	var be *Error
	if errors.As(err, &be) && be.Class == ClassThrottled && be.RetryAfter > 0 {
		return be.RetryAfter, true
	}
	return 0, false
}
