package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

func TestClassify(t *testing.T) {
	invalid := &bank.Error{Class: bank.ClassInvalid, Op: "submit", StatusCode: 400, Message: "the request payload is not valid."}
	for _, tc := range []struct {
		name        string
		err         error
		submitting  bool
		random      float64
		wantFinal   bool
		wantRetry   bool // an error returned, for the workqueue's exponential backoff
		wantAfter   time.Duration
		wantReason  string
		wantMessage string
	}{
		{name: "an invalid payload on submission is final, with the bank's words, and never retried",
			err: invalid, submitting: true, wantFinal: true,
			wantReason: loansv1alpha1.ReasonInvalidPayload, wantMessage: "HTTP 400: the request payload is not valid."},
		{name: "a 4xx while polling says nothing about the payload: retried with backoff",
			err:       &bank.Error{Class: bank.ClassInvalid, Op: "get_job", StatusCode: 400, Message: "application_id is not a valid uuid"},
			wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable, wantMessage: "HTTP 400"},
		{name: "a 500 is transient: retried with backoff",
			err:        &bank.Error{Class: bank.ClassTransient, Op: "submit", StatusCode: 500, Message: "internal server error"},
			submitting: true, wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable, wantMessage: "HTTP 5xx"},
		{name: "a 503 reads the same as a 500, so that alternating answers do not rewrite the status",
			err:       &bank.Error{Class: bank.ClassTransient, Op: "get_job", StatusCode: 503, Message: "service unavailable"},
			wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable, wantMessage: "HTTP 5xx"},
		{name: "a timeout is transient",
			err:       &bank.Error{Class: bank.ClassTransient, Op: "get_job", Err: fmt.Errorf("client: %w", context.DeadlineExceeded)},
			wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable, wantMessage: "timeout"},
		{name: "a refused connection is transient",
			err: &bank.Error{Class: bank.ClassTransient, Op: "submit",
				Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
			submitting: true, wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable, wantMessage: "connection failed"},
		{name: "a 2xx that is not the documented JSON is transient",
			err:       &bank.Error{Class: bank.ClassTransient, Op: "get_job", StatusCode: 200, Err: errors.New("unexpected EOF")},
			wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable, wantMessage: "undocumented answer"},
		{name: "an error that is not the bank client's is transient",
			err: errors.New("something else"), wantRetry: true, wantReason: loansv1alpha1.ReasonBankUnavailable},
		{name: "a 429 waits its Retry-After, stretched by the drawn jitter, without an error",
			err:       &bank.Error{Class: bank.ClassThrottled, Op: "get_job", StatusCode: 429, RetryAfter: 3 * time.Second},
			random:    0.5,
			wantAfter: 3*time.Second + 300*time.Millisecond, wantReason: loansv1alpha1.ReasonThrottled, wantMessage: "429"},
		{name: "a 429 while submitting waits its Retry-After too",
			err:        &bank.Error{Class: bank.ClassThrottled, Op: "submit", StatusCode: 429, RetryAfter: 7 * time.Second},
			submitting: true,
			wantAfter:  7 * time.Second, wantReason: loansv1alpha1.ReasonThrottled},
		{name: "a 429 without Retry-After waits at least a second",
			err:       &bank.Error{Class: bank.ClassThrottled, Op: "get_job", StatusCode: 429},
			wantAfter: minThrottleWait, wantReason: loansv1alpha1.ReasonThrottled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := classify(tc.err, tc.submitting, fixedRandom(tc.random))
			if out.final != tc.wantFinal {
				t.Errorf("final = %v, want %v", out.final, tc.wantFinal)
			}
			if (out.err != nil) != tc.wantRetry {
				t.Errorf("err = %v, want an error: %v", out.err, tc.wantRetry)
			}
			if out.err != nil && !errors.Is(out.err, errBankUnavailable) {
				t.Errorf("err = %v, want it to wrap errBankUnavailable", out.err)
			}
			if out.result.RequeueAfter != tc.wantAfter {
				t.Errorf("RequeueAfter = %v, want %v", out.result.RequeueAfter, tc.wantAfter)
			}
			if out.reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", out.reason, tc.wantReason)
			}
			if !strings.Contains(out.message, tc.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", out.message, tc.wantMessage)
			}
		})
	}
}

// TestTroubleMessageIsStable checks that the condition message of a transient error depends on
// its kind only, not on details that change from one attempt to the next.
func TestTroubleMessageIsStable(t *testing.T) {
	dial := func(port int) error {
		return &bank.Error{Class: bank.ClassTransient, Op: "submit",
			Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
				Err: syscall.ECONNRESET}}
	}
	a := classify(dial(40001), true, fixedRandom(0))
	b := classify(dial(40002), true, fixedRandom(0))
	if a.message != b.message {
		t.Errorf("two connection errors that differ in the port give two messages: %q and %q", a.message, b.message)
	}
}
