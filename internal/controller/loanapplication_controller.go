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
// `status` label in line with the status. The state machine is in sync.go, the status
// transitions in conditions.go, the treatment of bank errors in bankerrors.go.
package controller

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
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
	// Random is the source of jitter in [0, 1); math/rand when nil.
	Random func() float64

	schedule *pollSchedule
	written  *writtenVersions
}

// +kubebuilder:rbac:groups=loans.lendo.se,resources=loanapplications,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=loans.lendo.se,resources=loanapplications/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one application one step through its state machine. The status is patched
// once, in a deferred function, and only when it changed; the label is derived from the
// status after that, so it never runs ahead of what the status records.
func (r *LoanApplicationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	app := &loansv1alpha1.LoanApplication{}
	if err := r.Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			r.schedule.forget(req.NamespacedName)
			r.written.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if stale, err := r.staleAfterRead(ctx, req, app); stale || err != nil {
		// The cache has not caught up with our last status write yet: wait for it rather than
		// act on what that write already changed. Its watch event wakes this application.
		return ctrl.Result{RequeueAfter: staleFallback}, client.IgnoreNotFound(err)
	}
	original := app.DeepCopy()
	p := &pass{app: app}
	defer func() {
		retErr = errors.Join(retErr, r.finish(ctx, original, p))
	}()

	switch {
	case app.Status.Phase.IsFinal():
		r.schedule.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	case app.Status.Phase == "":
		return r.submit(ctx, p)
	default:
		return r.poll(ctx, p)
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

// finish writes what the pass changed, in an order that a crash at any point can only leave
// repairable: the status first, then the Events that announce it, then the label derived from
// the status. A failed status write records no Event and is retried as a whole.
func (r *LoanApplicationReconciler) finish(ctx context.Context, original *loansv1alpha1.LoanApplication, p *pass) error {
	if err := r.patchStatus(ctx, original, p.app); err != nil {
		return err
	}
	p.recordEvents(r.Recorder)
	statusVersion := p.app.ResourceVersion
	err := r.syncLabel(ctx, p.app)
	// Recorded once both writes are done (the workqueue runs no other reconcile of this
	// application meanwhile), whether or not the label patch failed. The label patch replaced
	// the status write's version in turn: until the cache shows the label too, a reconcile
	// reading the status write's version would patch the label again.
	r.written.wrote(p.app, original.ResourceVersion, statusVersion)
	return err
}

// patchStatus writes the status through the status subresource when it differs from what was
// read. A merge patch without a resourceVersion is safe here: this controller is the only
// writer of status (leader election makes it one process).
func (r *LoanApplicationReconciler) patchStatus(ctx context.Context, original, app *loansv1alpha1.LoanApplication) error {
	app.Status.ObservedGeneration = app.Generation
	if equality.Semantic.DeepEqual(original.Status, app.Status) {
		return nil
	}
	return r.Status().Patch(ctx, app, client.MergeFrom(original))
}

// syncLabel puts the `status` label in line with the phase: set at creation, moved at the
// decision, and put back when someone edited it by hand.
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
	return r.Patch(ctx, app, client.MergeFrom(before))
}

// DefaultMaxConcurrentReconciles is how many applications are reconciled at once by default.
// A reconcile spends nearly all its time waiting, on the bank and on the API server, so the
// pool is sized by Little's law rather than by cores: a thousand pending applications make
// about 500 polls a second, and 64 workers waiting 200ms on each bank answer manage 320.
// BenchmarkThousandApplications against a bank answering in 200ms: decision-to-status p99
// 3.4s with 64 workers, 2.6s with 256. More is not better: in make bench at 10,000, 1024
// workers put four times as many writes in flight at the saturated API server, which then
// served them more slowly (240 applications not final 140 s after the last creation, against
// all within 38 s with 256), and let the bank calls reach the --bank-qps limit.
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
	r.setDefaults()
	if opts.MaxConcurrentReconciles == 0 {
		opts.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if opts.RetryBaseDelay == 0 {
		opts.RetryBaseDelay = 500 * time.Millisecond
	}
	if opts.RetryMaxDelay == 0 {
		opts.RetryMaxDelay = 2 * time.Minute
	}
	registerPhaseGauge(mgr.GetCache())
	return ctrl.NewControllerManagedBy(mgr).
		For(&loansv1alpha1.LoanApplication{}, builder.WithPredicates(worthReconciling(r.written.awaitsWrite))).
		Named("loanapplication").
		WithOptions(controller.Options{
			MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
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
	if r.Timing == (Timing{}) {
		r.Timing = DefaultTiming
	}
	if r.Random == nil {
		r.Random = defaultRandom
	}
	if r.schedule == nil {
		r.schedule = newPollSchedule()
	}
	if r.written == nil {
		r.written = newWrittenVersions()
	}
}

// worthReconciling lets through creations, deletions and updates that could need work: a
// changed label (someone edited it), a changed generation, or the controller's own status
// write that a reconcile found missing from the cache (awaited). It drops the other update
// events of the controller's own status writes, which would otherwise each cost a reconcile,
// and everything about final applications whose label already matches.
func worthReconciling(awaited func(client.Object) bool) predicate.Predicate {
	return predicate.And(
		predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, awaitedUpdate(awaited)),
		predicate.NewPredicateFuncs(func(obj client.Object) bool {
			app, ok := obj.(*loansv1alpha1.LoanApplication)
			return !ok || !app.Status.Phase.IsFinal() || app.Labels[loansv1alpha1.LabelStatus] != app.Status.Phase.LabelValue()
		}),
	)
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
