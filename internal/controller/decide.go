package controller

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

// This file is the controller's state machine: pure functions from what a pass read (the
// application, the bank's answer or its error, the time) to what it must write. Reconcile
// only reads, calls the bank when plan says so, and writes what decide returns; every row of
// the state table is a unit test of these functions (decide_test.go).
//
//	phase      step        bank answer                          next
//	(none)     submit      201 / "already used"                  Pending, poll at the first slot
//	(none)     submit      invalid payload (its 400)             Failed (Stalled), final
//	Pending    wait        (no call: not due)                    come back at the first slot
//	Pending    poll        pending                               unchanged, poll at the next slot
//	Pending    poll        completed / rejected                  Approved / Rejected, final
//	Pending    poll        404 within the grace period           unchanged, poll at the next slot
//	Pending    poll        404 after it (the bank forgot)        resubmit in the same pass
//	any        any call    429                                   Throttled, wait Retry-After (capped)
//	any        any call    other 4xx                             BankRefused, backoff
//	any        any call    5xx, timeout, broken answer           BankUnavailable, backoff
//	final      none        (no call)                             nothing, ever
//
// The next pass waits in the workqueue at the urgency of the status written: a final one's
// first, then a submitted one's, then a new one's.

// step is the bank call a pass makes.
type step int

const (
	stepNone     step = iota // final: the bank is never called again
	stepWait                 // pending, but the next poll is not due yet
	stepSubmit               // first submission under the UID
	stepPoll                 // ask the bank for the job
	stepResubmit             // the bank forgot the application: submit it again under the same id
)

// Errors returned to controller-runtime so that the workqueue's per-object exponential backoff
// paces the retries.
var (
	errBankUnavailable = errors.New("bank unavailable")
	errBankRefused     = errors.New("bank refused the call")
)

// machine holds the settings of the state machine: the timing, and the per-application jitter.
type machine struct {
	timing Timing
	spread func(types.UID) float64
}

// plan says which bank call the application's state calls for at now, and when to come back
// when there is none to make yet.
func (m machine) plan(app *loansv1alpha1.LoanApplication, now time.Time) (step, time.Duration) {
	switch {
	case app.Status.Phase.IsFinal():
		return stepNone, 0
	case app.Status.Phase == "" || app.Status.BankApplicationID == "":
		return stepSubmit, 0
	}
	first := m.timing.firstPollAt(submittedAt(app), m.spread(app.UID))
	if now.Before(first) {
		return stepWait, first.Sub(now)
	}
	return stepPoll, 0
}

// The workqueue priorities of the passes (controller-runtime's priority queue hands out the
// applications that are due highest priority first). Under saturation more work is due than the
// workers take: finishing what the bank has decided, then asking about what it is deciding,
// before starting anything new keeps decision → status short whatever the arrival rate, and
// lets the new submissions take the wait. Starting less new work under load is also what keeps
// the load bounded: each submission brings polls and writes after it.
const (
	// prioritySubmit is a new application's, not yet at the bank; it is also the queue's
	// default, for an event that carries no priority.
	prioritySubmit = 0
	// priorityPoll is a submitted application's: its next pass asks the bank, or waits for the
	// slot to.
	priorityPoll = 10
	// priorityDecided is a final application's: its next pass only writes (the label, or a
	// decision whose status write was lost).
	priorityDecided = 20
)

// urgency is the priority of the next pass of an application with this status; a function of
// the status alone, so that the event handler (enqueue.go) and decide agree, and a new leader
// orders its queue as the old one did.
func urgency(status *loansv1alpha1.LoanApplicationStatus) int {
	switch {
	case status.Phase.IsFinal():
		return priorityDecided
	case status.Phase == "" || status.BankApplicationID == "":
		return prioritySubmit
	}
	return priorityPoll
}

// answer is what the bank said to the call of a step: a job for a poll, and the error.
type answer struct {
	job bank.Job
	err error
}

// decision is what a pass must do: the status to write (the label follows from it), the Events
// that announce it, when to come back, and what to count.
type decision struct {
	status       loansv1alpha1.LoanApplicationStatus
	events       []pendingEvent
	requeueAfter time.Duration
	// priority is the workqueue priority of the next pass: the urgency of the status written,
	// also for a retry after an error.
	priority int
	// err, when set, is returned to controller-runtime for the workqueue's backoff.
	err error
	// then is a further bank call this same pass must make (a resubmission).
	then step
	// counts are the metrics this pass adds to.
	counts counts
}

// counts are the outcomes of one pass, for the metrics.
type counts struct {
	submission  string              // loan_submissions_total result, "" for none
	poll        string              // loan_bank_polls_total result, "" for none
	resubmitted bool                // loan_resubmissions_total
	decided     loansv1alpha1.Phase // loan_decisions_total, "" for none
	decidedIn   time.Duration       // loan_decision_seconds, with decided Approved or Rejected
}

// pendingEvent is an Event waiting for the status write that it announces.
type pendingEvent struct {
	eventType, reason, action, note string
}

// announce queues an Event; its note is capped like every stored text.
func (d *decision) announce(eventType, reason, action, format string, args ...any) {
	d.events = append(d.events, pendingEvent{eventType: eventType, reason: reason, action: action,
		note: capText(fmt.Sprintf(format, args...))})
}

// decide turns what one bank call of step answered into the decision. app is the application
// as the pass knows it (read, or as an earlier step of the same pass left it); it is not
// changed.
func (m machine) decide(app *loansv1alpha1.LoanApplication, s step, ans answer, now time.Time) decision {
	d := decision{status: *app.Status.DeepCopy()}
	switch s {
	case stepSubmit, stepResubmit:
		m.afterSubmit(app, &d, s, ans.err, now)
	case stepPoll:
		m.afterPoll(app, &d, ans, now)
	case stepWait:
		_, d.requeueAfter = m.plan(app, now)
	case stepNone:
	}
	stampGeneration(&d.status, app.Generation)
	d.priority = urgency(&d.status)
	return d
}

// afterSubmit handles the answer to a submission. The UID is the bank's id, known before the
// call and never changing, so the bank's "already used" to a retry after a crash means the
// first attempt went through: never lost, never submitted twice.
func (m machine) afterSubmit(app *loansv1alpha1.LoanApplication, d *decision, s step, err error, now time.Time) {
	reason := loansv1alpha1.ReasonSubmitted
	if s == stepResubmit {
		reason = loansv1alpha1.ReasonResubmitted
	}
	switch bank.KindOf(err) {
	case "":
		d.counts.submission = "accepted"
	case bank.KindAlreadyUsed:
		d.counts.submission = "already_submitted"
	case bank.KindInvalidPayload:
		d.counts.submission = "invalid"
		d.counts.decided = loansv1alpha1.PhaseFailed
		markFailed(&d.status, now, bank.Words(err))
		d.announce(corev1.EventTypeWarning, loansv1alpha1.ReasonInvalidPayload, "Submit",
			"The bank refused the application for good: %s", bank.Words(err))
		return
	default:
		d.counts.submission = string(m.trouble(app, d, err, now))
		return
	}
	markSubmitted(&d.status, string(app.UID), now, reason)
	if s == stepResubmit {
		// Only a resubmission is announced: a first submission is the normal course, and the
		// Submitted condition records it with its time, without one more API write.
		d.announce(corev1.EventTypeNormal, reason, "Submit", "Submitted to the bank again as %s", app.UID)
	}
	first := m.timing.firstPollAt(now, m.spread(app.UID))
	d.requeueAfter = first.Sub(now)
}

// afterPoll handles the answer to a poll.
func (m machine) afterPoll(app *loansv1alpha1.LoanApplication, d *decision, ans answer, now time.Time) {
	first := m.timing.firstPollAt(submittedAt(app), m.spread(app.UID))
	switch {
	case ans.err == nil && ans.job.ApplicationID != app.Status.BankApplicationID:
		// The bank client refuses such an answer already; a decision about another
		// application must never be recorded as this one's, whatever the client.
		err := &bank.Error{Kind: bank.KindTransient, Op: "get_job",
			Message: fmt.Sprintf("the answer is about application %q", ans.job.ApplicationID)}
		d.counts.poll = string(m.trouble(app, d, err, now))
	case ans.err == nil && !ans.job.Status.IsDecided():
		d.counts.poll = string(ans.job.Status)
		markAwaiting(&d.status, now)
		d.requeueAfter = m.timing.nextPollAt(first, now).Sub(now)
	case ans.err == nil:
		phase := loansv1alpha1.PhaseApproved
		if ans.job.Status == bank.JobRejected {
			phase = loansv1alpha1.PhaseRejected
		}
		d.counts.poll = string(ans.job.Status)
		d.counts.decided, d.counts.decidedIn = phase, now.Sub(submittedAt(app))
		// No Event: the decision is the normal course, and the Ready condition already records
		// it with its reason and time. An Event would be one more API write and etcd key per
		// application, and client-go's recorder keeps each Event in the controller's memory
		// for minutes (docs/benchmarks.md).
		markDecided(&d.status, phase, ans.job.ID, now)
	case bank.KindOf(ans.err) == bank.KindNotFound:
		d.counts.poll = "not_found"
		if !m.timing.bankForgot(now, &app.Status) {
			// Lag: the bank has not caught up with the submission yet.
			d.requeueAfter = m.timing.nextPollAt(first, now).Sub(now)
			return
		}
		// The bank keeps its state in memory and restarted: submit again under the same id.
		d.counts.resubmitted = true
		d.announce(corev1.EventTypeWarning, "BankForgot", "Resubmit",
			"The bank answered 404 %s after the submission; submitting again", now.Sub(submittedAt(app)).Round(time.Second))
		d.then = stepResubmit
	default:
		d.counts.poll = string(m.trouble(app, d, ans.err, now))
	}
}

// troubleResult is the metric result of a failed call: error, refused or throttled.
type troubleResult string

// trouble records a failed bank call that is not a fact about the application, and says when
// to try again:
//   - throttled: wait the bank's Retry-After (capped at MaxWait), without counting a failure;
//   - refused (a 4xx the bank does not document, most likely from a proxy), and an invalid
//     payload answered to a poll (the controller's own id cannot be invalid): back off, with the
//     code in the message for whoever has to fix the proxy;
//   - anything else: back off, naming the kind of failure only.
func (m machine) trouble(app *loansv1alpha1.LoanApplication, d *decision, err error, now time.Time) troubleResult {
	switch bank.KindOf(err) {
	case bank.KindThrottled:
		retryAfter, _ := bank.RetryAfter(err)
		d.requeueAfter = m.timing.throttledWait(retryAfter, m.spread(app.UID))
		markBankTrouble(&d.status, now, loansv1alpha1.ReasonThrottled, "the bank asked to slow down (HTTP 429); retrying")
		return "throttled"
	case bank.KindRefused, bank.KindInvalidPayload:
		d.err = fmt.Errorf("%w: %w", errBankRefused, err)
		markBankTrouble(&d.status, now, loansv1alpha1.ReasonBankRefused,
			"the bank's address refused the call ("+bank.Words(err)+"); retrying with backoff")
		return "refused"
	default:
		d.err = fmt.Errorf("%w: %w", errBankUnavailable, err)
		markBankTrouble(&d.status, now, loansv1alpha1.ReasonBankUnavailable,
			"the bank could not be reached or failed ("+bank.Cause(err)+"); retrying with backoff")
		return "error"
	}
}

// submittedAt is when the bank accepted the application; the creation time stands in for an
// application whose status lost it (it cannot normally be missing while Pending).
func submittedAt(app *loansv1alpha1.LoanApplication) time.Time {
	if app.Status.SubmittedAt != nil {
		return app.Status.SubmittedAt.Time
	}
	return app.CreationTimestamp.Time
}
