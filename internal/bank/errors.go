package bank

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Kind is what a caller should do about a failed call. The client decides it from the bank's
// answer (or the lack of one), so that callers act on the kind and never on HTTP details.
type Kind string

const (
	// KindAlreadyUsed: the bank already has an application with this id (its duplicate 400).
	// For a caller that retries after a crash this means the submission succeeded.
	KindAlreadyUsed Kind = "already_used"
	// KindNotFound: the bank does not know the application (its 404 to a poll). Right after a
	// submission this can be lag; later it means the bank restarted and forgot it.
	KindNotFound Kind = "not_found"
	// KindInvalidPayload: the bank refused the payload for good (any of its 400s but the
	// duplicate). Retrying the same payload cannot succeed.
	KindInvalidPayload Kind = "invalid_payload"
	// KindRefused: a 4xx the bank does not document (401, 403, 418, a 404 to a submission...):
	// most likely a proxy or gateway in front of it. It says nothing about the payload, so it is
	// worth retrying with backoff, but someone should look.
	KindRefused Kind = "refused"
	// KindThrottled: the bank asked to slow down (429); RetryAfter says for how long when the
	// bank said.
	KindThrottled Kind = "throttled"
	// KindTransient: 5xx, 408, timeouts, refused or reset connections, redirects, or an answer
	// that is not the documented JSON. Retry with backoff.
	KindTransient Kind = "transient"
)

// Error is the error every call of Client returns on failure.
type Error struct {
	// Kind says what to do about it.
	Kind Kind
	// Op is the operation that failed: "submit" or "get_job".
	Op string
	// StatusCode is the HTTP status of the answer, or 0 when there was none. For logs.
	StatusCode int
	// Message is the bank's own error message when it sent one, else a description.
	Message string
	// RetryAfter is the bank's Retry-After delay for KindThrottled, zero when not given. It is
	// the bank's word, unbounded: a caller caps it at what it is willing to wait.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error
}

// Error says which call failed, its kind, the HTTP status when there was one, and why.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("bank %s: %s (HTTP %d): %s", e.Op, e.Kind, e.StatusCode, msg)
	}
	return fmt.Sprintf("bank %s: %s: %s", e.Op, e.Kind, msg)
}

// Unwrap returns the underlying error, so that errors.Is(err, context.Canceled) and the like
// see through an *Error.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err: the Kind of a *Error anywhere in its chain, KindTransient
// for any other non-nil error (an unknown failure is worth a retry), and "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var be *Error
	if errors.As(err, &be) {
		return be.Kind
	}
	return KindTransient
}

// IsTransient reports whether err is worth retrying later as it is.
func IsTransient(err error) bool { return KindOf(err) == KindTransient }

// RetryAfter returns the delay the bank asked for with a 429, and whether it gave one.
func RetryAfter(err error) (time.Duration, bool) {
	var be *Error
	if errors.As(err, &be) && be.Kind == KindThrottled && be.RetryAfter > 0 {
		return be.RetryAfter, true
	}
	return 0, false
}

// Words is what the bank (or whatever answered in its place) said, with the HTTP status:
// "HTTP 400: the request payload is not valid.". It is what a person needs to act on a refusal.
// The text is the answer's, unbounded: a caller that stores it caps it.
func Words(err error) string {
	var be *Error
	if errors.As(err, &be) && be.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d: %s", be.StatusCode, be.Message)
	}
	return err.Error()
}

// Cause names a failure by its kind of cause only: "HTTP 5xx", "HTTP 429", "HTTP 401",
// "timeout", "connection failed", "undocumented answer". It stays the same from one retry to
// the next where Error() does not (a flaky bank answers 500 and 503 in turn, and every
// transport error carries a new port or duration), so a caller can record it without a write
// per retry.
func Cause(err error) string {
	var be *Error
	var netErr net.Error
	switch {
	case errors.As(err, &be) && be.StatusCode >= http.StatusInternalServerError:
		return fmt.Sprintf("HTTP %dxx", be.StatusCode/100)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case be != nil && be.StatusCode >= http.StatusOK && be.StatusCode < http.StatusMultipleChoices:
		return "undocumented answer"
	case be != nil && be.StatusCode != 0:
		return fmt.Sprintf("HTTP %d", be.StatusCode)
	default:
		return "connection failed"
	}
}
