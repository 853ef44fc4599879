/*
Copyright 2026 The loan-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package controller holds the LoanApplication reconciler: it submits each application to the
// bank exactly once (keyed on the object's UID), polls the bank until it decides, and keeps the
// `status` label in line with the status. The state machine is pure and lives in decide.go
// (the bank call a state calls for, and what each answer leads to); this file reads, calls
// and writes. docs/design.md explains the whole.
package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

// BankClient is the part of the bank's API the controller uses; *bank.Client implements it.
type BankClient interface {
	Submit(ctx context.Context, app bank.Application) (bank.Application, error)
	GetJob(ctx context.Context, applicationID string) (bank.Job, error)
}

// EventRecorder records Kubernetes Events (events.k8s.io/v1) about an application.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// LoanApplicationReconciler reconciles LoanApplication objects.
type LoanApplicationReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Bank     BankClient
	Recorder EventRecorder
	// Clock is the time source; tests substitute a fake one.
	Clock clock.PassiveClock
	// Timing says when to poll the bank; DefaultTiming when zero.
	Timing Timing
	// APIReader reads from the API server, past the cache, the rare application the cache does
	// not hold (see returnToCache); SetupWithManager sets the manager's.
	APIReader client.Reader
	// Spread is an application's jitter in [0, 1), a function of its UID so that every process
	// places its polls alike; spreadOf when nil. Tests substitute a constant.
	Spread func(types.UID) float64

	// pacer stretches the poll interval by the count of pending applications in the cache;
	// set up by SetupWithManager, Timing as it is without it.
	pacer *pacer

	// written only spares the reconciles that would act on a cache older than this process's
	// own writes (a bank call and a conflicting write for nothing). It is an optimisation: the
	// resourceVersion precondition on every write is what keeps a stale copy from being
	// written back, and a new process starts without it and loses nothing.
	written *writtenVersions
}

// +kubebuilder:rbac:groups=loans.lendo.se,resources=loanapplications,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=loans.lendo.se,resources=loanapplications/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// conflictRetry is when a pass whose write met a newer version of the application tries again.
// The newer version was written by another process (a former leader after a pause, a person),
// and its update event may not pass the predicate: come back for it rather than wait.
const conflictRetry = time.Second

// Reconcile moves one application one step through its state machine: read it, make the bank
// call its state calls for, let decide say what follows, and write that. The status is patched
// once and only when it changed, then the label derived from it; both writes carry the
// resourceVersion read, so a pass that read a stale copy can never write it back.
func (r *LoanApplicationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	app := &loansv1alpha1.LoanApplication{}
	if err := r.Get(ctx, req.NamespacedName, app); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		r.written.forget(req.NamespacedName)
		return ctrl.Result{}, r.returnToCache(ctx, req.NamespacedName)
	}
	if stale, err := r.staleAfterRead(ctx, req, app); stale || err != nil {
		// The cache has not caught up with our last status write yet: wait for it rather than
		// act on what that write already changed. Its watch event wakes this application.
		return ctrl.Result{RequeueAfter: staleFallback}, client.IgnoreNotFound(err)
	}
	d := r.pass(ctx, app)
	recordCounts(d.counts)
	if err := r.finish(ctx, app, d); err != nil {
		if apierrors.IsConflict(err) {
			logf.FromContext(ctx).V(1).Info("the application changed since it was read; reading it again", "error", err.Error())
			return ctrl.Result{RequeueAfter: conflictRetry, Priority: ptr.To(d.priority)}, nil
		}
		return ctrl.Result{Priority: ptr.To(d.priority)}, err
	}
	if d.err != nil {
		logf.FromContext(ctx).V(1).Info("bank call failed", "error", d.err.Error())
	}
	return ctrl.Result{RequeueAfter: d.requeueAfter, Priority: ptr.To(d.priority)}, d.err
}

// pass makes the bank calls the application's state calls for (one, or a poll and the
// resubmission it leads to) and returns what the state machine decided.
func (r *LoanApplicationReconciler) pass(ctx context.Context, app *loansv1alpha1.LoanApplication) decision {
	m := machine{timing: r.timingNow(), spread: r.Spread}
	now := r.Clock.Now()
	s, _ := m.plan(app, now)
	d := m.decide(app, s, r.call(ctx, app, s), now)
	if d.then != stepNone {
		after := app.DeepCopy()
		after.Status = d.status
		next := m.decide(after, d.then, r.call(ctx, after, d.then), now)
		next.events = append(d.events, next.events...)
		next.counts.poll, next.counts.resubmitted = d.counts.poll, d.counts.resubmitted
		d = next
	}
	return d
}

// timingNow is the timing of a pass: paced for the pending applications when a pacer counts them.
func (r *LoanApplicationReconciler) timingNow() Timing {
	if r.pacer == nil {
		return r.Timing
	}
	return r.pacer.timingNow()
}

// call makes the bank call of step s.
func (r *LoanApplicationReconciler) call(ctx context.Context, app *loansv1alpha1.LoanApplication, s step) answer {
	switch s {
	case stepSubmit, stepResubmit:
		_, err := r.Bank.Submit(ctx, bank.Application{ID: string(app.UID), FirstName: app.Spec.FirstName, LastName: app.Spec.LastName})
		return answer{err: err}
	case stepPoll:
		job, err := r.Bank.GetJob(ctx, app.Status.BankApplicationID)
		return answer{job: job, err: err}
	default:
		return answer{}
	}
}

// staleAfterRead reports whether app, just read from the cache, is older than the controller's
// last writes to it. A stale read marks the writes awaited, and then reads once more: the watch
// event of the writes may have come between the first read and the mark, when the predicate
// still dropped it.
func (r *LoanApplicationReconciler) staleAfterRead(
	ctx context.Context, req ctrl.Request, app *loansv1alpha1.LoanApplication,
) (bool, error) {
	if !r.written.isStale(app) {
		return false, nil
	}
	if err := r.Get(ctx, req.NamespacedName, app); err != nil {
		return true, err
	}
	return r.written.isStale(app), nil
}

// finish writes what the pass decided, in an order that a crash at any point can only leave
// repairable: the status first, then the Events that announce it, then the label derived from
// the status. A failed status write records no Event and is retried as a whole.
func (r *LoanApplicationReconciler) finish(ctx context.Context, app *loansv1alpha1.LoanApplication, d decision) error {
	readVersion := app.ResourceVersion
	if err := r.patchStatus(ctx, app, d.status); err != nil {
		return err
	}
	recordDecision(d.counts)
	for _, e := range d.events {
		r.Recorder.Eventf(app, nil, e.eventType, e.reason, e.action, "%s", e.note)
	}
	statusVersion := app.ResourceVersion
	err := r.syncLabel(ctx, app)
	// Recorded once both writes are done (the workqueue runs no other reconcile of this
	// application meanwhile), whether or not the label patch failed. The label patch replaced
	// the status write's version in turn: until the cache shows the label too, a reconcile
	// reading the status write's version would patch the label again.
	r.written.wrote(app, readVersion, statusVersion)
	return err
}

// patchStatus writes status through the status subresource when it differs from what was
// read, on condition that the application is still the version read: a pass that read a stale
// copy (a cache behind, a former leader waking from a pause) gets a conflict instead of moving
// a final phase back.
func (r *LoanApplicationReconciler) patchStatus(ctx context.Context, app *loansv1alpha1.LoanApplication,
	status loansv1alpha1.LoanApplicationStatus) error {
	if equality.Semantic.DeepEqual(app.Status, status) {
		return nil
	}
	original := app.DeepCopy()
	app.Status = status
	return r.Status().Patch(ctx, app, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{}))
}

// syncLabel puts the `status` label in line with the phase: set at creation, moved at the
// decision, and put back when someone edited it by hand; on the same condition as the status.
func (r *LoanApplicationReconciler) syncLabel(ctx context.Context, app *loansv1alpha1.LoanApplication) error {
	want := app.Status.Phase.LabelValue()
	if app.Labels[loansv1alpha1.LabelStatus] == want {
		return nil
	}
	before := app.DeepCopy()
	if app.Labels == nil {
		app.Labels = map[string]string{}
	}
	app.Labels[loansv1alpha1.LabelStatus] = want
	return r.Patch(ctx, app, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// returnToCache handles an application the cache does not hold: deleted, or out of the cache's
// selector (InFlightSelector). The predicate lets through the delete event of an application
// only if it left before it was final, so this read past the cache is rare. Such an application
// carries a final label its phase does not have: a hand edit the admission policy refuses, made
// where it is not installed. The cache would hide it for good; putting its label back from the
// phase brings it back, and its add event wakes the reconciler again.
func (r *LoanApplicationReconciler) returnToCache(ctx context.Context, key types.NamespacedName) error {
	if r.APIReader == nil {
		return nil
	}
	app := &loansv1alpha1.LoanApplication{}
	if err := r.APIReader.Get(ctx, key, app); err != nil {
		return client.IgnoreNotFound(err)
	}
	label := app.Labels[loansv1alpha1.LabelStatus]
	if !isFinalLabel(label) || label == app.Status.Phase.LabelValue() {
		return nil // final with its label in line, or the cache is only behind
	}
	logf.FromContext(ctx).Info("putting back the status label of an application that left the cache before it was final",
		"label", label, "phase", app.Status.Phase)
	return client.IgnoreNotFound(r.syncLabel(ctx, app))
}

// DefaultMaxConcurrentReconciles is how many applications are reconciled at once by default.
// A reconcile spends nearly all its time waiting, on the bank and on the API server, so the
// pool is sized by Little's law rather than by cores: a thousand pending applications make
// about 500 polls a second, and each waits on the bank for up to a few hundred milliseconds.
// More is not better: past this, more writes in flight slow a saturated API server down, and
// the bank calls reach the --bank-qps limit (docs/benchmarks.md has the measurements).
const DefaultMaxConcurrentReconciles = 256

// Options are the controller-runtime settings the program exposes as flags.
type Options struct {
	// MaxConcurrentReconciles is how many applications are reconciled at once;
	// DefaultMaxConcurrentReconciles when zero.
	MaxConcurrentReconciles int
	// RetryBaseDelay and RetryMaxDelay bound the per-application exponential backoff after a
	// transient bank error.
	RetryBaseDelay, RetryMaxDelay time.Duration
}

// SetupWithManager registers the reconciler with the manager.
func (r *LoanApplicationReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if r.Timing.MaxWait == 0 {
		r.Timing.MaxWait = opts.RetryMaxDelay
	}
	r.setDefaults()
	if opts.MaxConcurrentReconciles == 0 {
		opts.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if opts.RetryBaseDelay == 0 {
		opts.RetryBaseDelay = 500 * time.Millisecond
	}
	if opts.RetryMaxDelay == 0 {
		opts.RetryMaxDelay = r.Timing.MaxWait
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	counts, err := countPhases(context.Background(), mgr.GetCache())
	if err != nil {
		return err
	}
	r.pacer = newPacer(counts, r.Timing)
	return ctrl.NewControllerManagedBy(mgr).
		Named("loanapplication").
		// Watches rather than For, whose handler sets priorities of its own: see enqueueByUrgency.
		Watches(&loansv1alpha1.LoanApplication{}, enqueueByUrgency(),
			builder.WithPredicates(worthReconciling(r.written.awaitsWrite))).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
			// The priority queue, on by default in this controller-runtime; asked for by name
			// since the controller's order of work relies on it (urgency).
			UsePriorityQueue: ptr.To(true),
			// Per-object exponential backoff only. controller-runtime's default also has a
			// global 10/s bucket, which would take many minutes to retry thousands of
			// applications after a bank outage; the bank client's own rate limit paces the
			// calls instead.
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
				opts.RetryBaseDelay, opts.RetryMaxDelay),
		}).
		Complete(r)
}

func (r *LoanApplicationReconciler) setDefaults() {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	// A Timing left zero but for MaxWait (SetupWithManager sets it from RetryMaxDelay) is still
	// a Timing left to the defaults: a zero PollInterval would divide by zero at the first poll.
	if maxWait := r.Timing.MaxWait; r.Timing == (Timing{MaxWait: maxWait}) {
		r.Timing = DefaultTiming
		if maxWait != 0 {
			r.Timing.MaxWait = maxWait
		}
	}
	if r.Timing.MaxWait == 0 {
		r.Timing.MaxWait = DefaultTiming.MaxWait
	}
	if r.Spread == nil {
		r.Spread = spreadOf
	}
	if r.written == nil {
		r.written = newWrittenVersions()
	}
}

// worthReconciling lets through creations, deletions and updates that could need work: a
// changed label (someone edited it), a changed generation, or the controller's own status
// write that a reconcile found missing from the cache (awaited). It drops the other update
// events of the controller's own status writes, which would otherwise each cost a reconcile,
// everything about final applications whose label already matches, and the delete events of
// final applications (see isFinalApplication).
func worthReconciling(awaited func(client.Object) bool) predicate.Predicate {
	needsWork := func(obj client.Object) bool {
		app, ok := obj.(*loansv1alpha1.LoanApplication)
		return !ok || !app.Status.Phase.IsFinal() || app.Labels[loansv1alpha1.LabelStatus] != app.Status.Phase.LabelValue()
	}
	return predicate.And(
		predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, awaitedUpdate(awaited)),
		predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return needsWork(e.Object) },
			UpdateFunc:  func(e event.UpdateEvent) bool { return needsWork(e.ObjectNew) },
			DeleteFunc:  func(e event.DeleteEvent) bool { return !isFinalApplication(e.Object) },
			GenericFunc: func(e event.GenericEvent) bool { return needsWork(e.Object) },
		},
	)
}

// isFinalApplication reports whether obj is an application whose phase is final. The delete
// event of an application that leaves the cache carries the version before the write that took
// it out: for the controller's label patch at a decision, a final phase. Such an application,
// like a deleted final one, needs nothing more; one that leaves before it is final was deleted
// (the reconciler forgets it) or hidden by a hand edit (the reconciler puts its label back).
func isFinalApplication(obj client.Object) bool {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	return ok && app.Status.Phase.IsFinal()
}

// awaitedUpdate passes the update events that bring a version a stale reconcile waits for.
func awaitedUpdate(awaited func(client.Object) bool) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc:  func(e event.UpdateEvent) bool { return e.ObjectNew != nil && awaited(e.ObjectNew) },
	}
}
