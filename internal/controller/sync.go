package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

// pass is one reconcile of one application: the object the steps change, and the Events they
// decided on. The Events are recorded only once the status they announce is written, so that
// a failed status write (retried, and then the same transition again) does not announce one
// transition twice.
type pass struct {
	app    *loansv1alpha1.LoanApplication
	events []pendingEvent
}

// pendingEvent is an Event waiting for the status write.
type pendingEvent struct {
	eventType, reason, action, note string
}

// announce queues an Event about the application.
func (p *pass) announce(eventType, reason, action, format string, args ...any) {
	p.events = append(p.events, pendingEvent{eventType: eventType, reason: reason, action: action, note: fmt.Sprintf(format, args...)})
}

// recordEvents sends the queued Events.
func (p *pass) recordEvents(recorder EventRecorder) {
	for _, e := range p.events {
		recorder.Eventf(p.app, nil, e.eventType, e.reason, e.action, "%s", e.note)
	}
	p.events = nil
}

// submit sends a new application to the bank under its UID. The UID is known before the call
// and never changes, so a retry after a crash (between the bank's answer and the status write)
// reaches the bank with the same id, and the bank's "already used" answer tells us the first
// attempt went through: never lost, never submitted twice.
func (r *LoanApplicationReconciler) submit(ctx context.Context, p *pass) (ctrl.Result, error) {
	return r.sendToBank(ctx, p, loansv1alpha1.ReasonSubmitted)
}

// sendToBank submits the application and records the answer; reason says whether this is the
// first submission or a resubmission after the bank forgot it.
func (r *LoanApplicationReconciler) sendToBank(ctx context.Context, p *pass, reason string) (ctrl.Result, error) {
	app := p.app
	_, err := r.Bank.Submit(ctx, bank.Application{
		ID:        string(app.UID),
		FirstName: app.Spec.FirstName,
		LastName:  app.Spec.LastName,
	})
	switch {
	case err == nil:
		submissionsTotal.WithLabelValues("accepted").Inc()
	case bank.IsAlreadySubmitted(err):
		submissionsTotal.WithLabelValues("already_submitted").Inc()
	default:
		return r.bankTrouble(ctx, p, err, true)
	}

	now := r.Clock.Now()
	markSubmitted(&app.Status, string(app.UID), now, reason)
	if reason == loansv1alpha1.ReasonResubmitted {
		// Only a resubmission is announced. A first submission is the normal course, and the
		// Submitted condition already records it with its time. Its Event was one API write
		// per application (a fifth of the controller's writes in the benchmark at 10,000) and
		// a second Event per application kept in client-go's Event cache for 6 to 12 minutes.
		p.announce(corev1.EventTypeNormal, reason, "Submit", "Submitted to the bank again as %s", app.UID)
	}
	due := r.Timing.firstPollDue(now, now, r.Random)
	r.schedule.plan(keyOf(app), app.UID, due)
	return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
}

// poll asks the bank for the job of a pending application, when it is due. A reconcile that
// comes earlier (a label edit, a duplicate timer, a resync) only requeues for the planned time:
// the bank is asked at most once per planned poll.
func (r *LoanApplicationReconciler) poll(ctx context.Context, p *pass) (ctrl.Result, error) {
	app := p.app
	now := r.Clock.Now()
	due, planned := r.schedule.next(keyOf(app), app.UID)
	if !planned {
		due = r.Timing.firstPollDue(now, submittedAt(app), r.Random)
		r.schedule.plan(keyOf(app), app.UID, due)
	}
	if now.Before(due) {
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}

	job, err := r.Bank.GetJob(ctx, app.Status.BankApplicationID)
	switch {
	case err == nil:
		return r.observeJob(p, job)
	case bank.IsNotFound(err):
		return r.jobNotFound(ctx, p)
	default:
		bankPollsTotal.WithLabelValues("error").Inc()
		return r.bankTrouble(ctx, p, err, false)
	}
}

// observeJob records a decision, or plans the next poll while the bank is still assessing.
func (r *LoanApplicationReconciler) observeJob(p *pass, job bank.Job) (ctrl.Result, error) {
	app := p.app
	bankPollsTotal.WithLabelValues(string(job.Status)).Inc()
	now := r.Clock.Now()
	if !job.Status.IsDecided() {
		due := r.Timing.nextPollDue(now, r.Random)
		r.schedule.plan(keyOf(app), app.UID, due)
		// A poll that succeeds clears an earlier transient error from the Ready condition.
		setCondition(&app.Status, loansv1alpha1.ConditionReady, "False", loansv1alpha1.ReasonAwaitingDecision,
			"waiting for the bank's decision")
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}

	phase := loansv1alpha1.PhaseApproved
	if job.Status == bank.JobRejected {
		phase = loansv1alpha1.PhaseRejected
	}
	markDecided(&app.Status, phase, job.ID, now)
	r.schedule.forget(keyOf(app))
	decisionsTotal.WithLabelValues(string(phase)).Inc()
	decisionSeconds.Observe(now.Sub(submittedAt(app)).Seconds())
	p.announce(corev1.EventTypeNormal, string(phase), "Decide", "The bank decided: %s", phase)
	return ctrl.Result{}, nil
}

// jobNotFound handles a 404 for a submitted application. Shortly after the submission it is
// lag, and the poll is retried; after the grace period the bank has forgotten the application
// (it keeps its state in memory and restarted), so it is submitted again under the same id.
func (r *LoanApplicationReconciler) jobNotFound(ctx context.Context, p *pass) (ctrl.Result, error) {
	app := p.app
	bankPollsTotal.WithLabelValues("not_found").Inc()
	now := r.Clock.Now()
	if !r.Timing.bankForgot(now, &app.Status) {
		due := r.Timing.nextPollDue(now, r.Random)
		r.schedule.plan(keyOf(app), app.UID, due)
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}
	logf.FromContext(ctx).Info("the bank no longer knows the application; submitting it again under the same id")
	resubmissionsTotal.Inc()
	p.announce(corev1.EventTypeWarning, "BankForgot", "Resubmit",
		"The bank answered 404 %s after the submission; submitting again", now.Sub(submittedAt(app)).Round(time.Second))
	return r.sendToBank(ctx, p, loansv1alpha1.ReasonResubmitted)
}

// bankTrouble records a failed bank call and returns what classify decided.
func (r *LoanApplicationReconciler) bankTrouble(ctx context.Context, p *pass, err error, submitting bool) (ctrl.Result, error) {
	app := p.app
	out := classify(err, submitting, r.Random)
	if out.final {
		submissionsTotal.WithLabelValues("invalid").Inc()
		decisionsTotal.WithLabelValues(string(loansv1alpha1.PhaseFailed)).Inc()
		markFailed(&app.Status, out.message)
		p.announce(corev1.EventTypeWarning, loansv1alpha1.ReasonInvalidPayload, "Submit",
			"The bank refused the application for good: %s", out.message)
		return ctrl.Result{}, nil
	}
	if submitting {
		submissionsTotal.WithLabelValues("error").Inc()
	}
	markBankTrouble(&app.Status, out.reason, out.message)
	logf.FromContext(ctx).V(1).Info("bank call failed", "error", err.Error())
	return out.result, out.err
}

func keyOf(app client.Object) types.NamespacedName { return client.ObjectKeyFromObject(app) }

// submittedAt is when the bank accepted the application; the creation time stands in for an
// application whose status lost it (it cannot normally be missing while Pending).
func submittedAt(app *loansv1alpha1.LoanApplication) time.Time {
	if app.Status.SubmittedAt != nil {
		return app.Status.SubmittedAt.Time
	}
	return app.CreationTimestamp.Time
}
