package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

// minThrottleWait is the least the controller waits after a 429 that gave no Retry-After.
const minThrottleWait = time.Second

// errBankUnavailable marks an error as the bank's transient trouble, returned to
// controller-runtime so that the workqueue's per-object exponential backoff paces the retries.
var errBankUnavailable = errors.New("bank unavailable")

// outcome is what the controller does about a failed bank call, decided in one place.
type outcome struct {
	// result and err are what Reconcile returns.
	result ctrl.Result
	err    error
	// reason and message go into a condition (empty: nothing to record).
	reason, message string
	// final is true when the application is refused for good and becomes Failed.
	final bool
}

// classify turns a bank error into what to do about it:
//   - invalid payload (a 4xx other than a duplicate, on submission): final, no retry;
//   - throttled: wait at least the bank's Retry-After, without counting it as a failure;
//   - anything else (5xx, timeouts, broken connections, garbage answers): return an error,
//     so the workqueue backs off exponentially for this object alone.
//
// Duplicate submissions and 404s are not errors to classify: the steps handle them as facts.
func classify(err error, submitting bool, random func() float64) outcome {
	switch {
	case bank.IsInvalid(err) && submitting:
		return outcome{final: true, reason: loansv1alpha1.ReasonInvalidPayload, message: bankMessage(err)}
	case bank.IsThrottled(err):
		wait, ok := bank.RetryAfter(err)
		if !ok || wait < minThrottleWait {
			wait = minThrottleWait
		}
		// Spread the retries of everything the bank throttled at once over a further 20%.
		wait += time.Duration(float64(wait) * 0.2 * random())
		return outcome{
			result:  ctrl.Result{RequeueAfter: wait},
			reason:  loansv1alpha1.ReasonThrottled,
			message: "the bank asked to slow down (HTTP 429); retrying",
		}
	default:
		return outcome{
			err:     fmt.Errorf("%w: %w", errBankUnavailable, err),
			reason:  loansv1alpha1.ReasonBankUnavailable,
			message: "the bank could not be reached or failed (" + troubleKind(err) + "); retrying with backoff",
		}
	}
}

// bankMessage is the bank's own words when it sent some, else the error: what a person needs
// to correct a refused payload.
func bankMessage(err error) string {
	var be *bank.Error
	if errors.As(err, &be) && be.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d: %s", be.StatusCode, be.Message)
	}
	return err.Error()
}

// troubleKind names a transient failure by its kind only: "HTTP 5xx", "HTTP 408", "timeout",
// "connection failed", "undocumented answer". A flaky bank answers 500 and 503 in turn and
// every transport error carries a new port or duration; a condition message built from those
// details would change on nearly every retry and cost one status write each time. The details
// go to the log and to loan_bank_requests_total instead.
func troubleKind(err error) string {
	var be *bank.Error
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
