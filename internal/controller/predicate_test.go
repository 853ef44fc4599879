package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

func application(generation int64, label string, phase loansv1alpha1.Phase) *loansv1alpha1.LoanApplication {
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n", Generation: generation},
		Status:     loansv1alpha1.LoanApplicationStatus{Phase: phase},
	}
	if label != "" {
		app.Labels = map[string]string{loansv1alpha1.LabelStatus: label}
	}
	return app
}

// nothingAwaited stands for a controller that waits for none of its own writes.
func nothingAwaited(client.Object) bool { return false }

func TestWorthReconcilingAwaitedWrite(t *testing.T) {
	old, written := application(1, "pending", ""), application(1, "pending", loansv1alpha1.PhasePending)
	written.ResourceVersion = "11"
	awaitsEleven := func(obj client.Object) bool { return obj.GetResourceVersion() == "11" }
	if !worthReconciling(awaitsEleven).Update(event.UpdateEvent{ObjectOld: old, ObjectNew: written}) {
		t.Error("the status write a stale reconcile waits for was dropped: the application would wait for the fallback")
	}
	written.ResourceVersion = "12"
	if worthReconciling(awaitsEleven).Update(event.UpdateEvent{ObjectOld: old, ObjectNew: written}) {
		t.Error("a status write nobody waits for was let through")
	}
	final := application(1, "approved", loansv1alpha1.PhaseApproved)
	final.ResourceVersion = "11"
	if worthReconciling(awaitsEleven).Update(event.UpdateEvent{ObjectOld: old, ObjectNew: final}) {
		t.Error("an awaited version of a final application whose label matches was let through")
	}
}

func TestWorthReconcilingUpdates(t *testing.T) {
	const (
		pending  = loansv1alpha1.PhasePending
		approved = loansv1alpha1.PhaseApproved
	)
	for _, tc := range []struct {
		name     string
		old, new *loansv1alpha1.LoanApplication
		want     bool
	}{
		{"the controller's own status write (same generation, same label) is dropped",
			application(1, "pending", ""), application(1, "pending", pending), false},
		{"the status write of a decision is dropped too: the label patch that follows brings it back",
			application(1, "pending", pending), application(1, "pending", approved), false},
		{"a hand-edited label of a pending application is reconciled",
			application(1, "pending", pending), application(1, "approved", pending), true},
		{"a hand-edited label of an approved application is reconciled (to put it back)",
			application(1, "approved", approved), application(1, "rejected", approved), true},
		{"a removed label is reconciled",
			application(1, "approved", approved), application(1, "", approved), true},
		{"the label patch that matches a final status: nothing left to do",
			application(1, "pending", approved), application(1, "approved", approved), false},
		{"a new generation of a pending application is reconciled",
			application(1, "pending", pending), application(2, "pending", pending), true},
		{"a new generation of a final application whose label matches is not",
			application(1, "approved", approved), application(2, "approved", approved), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := worthReconciling(nothingAwaited).Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWorthReconcilingCreates(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  *loansv1alpha1.LoanApplication
		want bool
	}{
		{"a new application is reconciled", application(1, "pending", ""), true},
		{"a new application without the label is reconciled", application(1, "", ""), true},
		{"a pending one found at start is reconciled (its poll resumes)", application(1, "pending", loansv1alpha1.PhasePending), true},
		{"a final one whose label matches is skipped at start", application(1, "rejected", loansv1alpha1.PhaseRejected), false},
		{"a final one whose label was lost in a crash is reconciled", application(1, "pending", loansv1alpha1.PhaseRejected), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := worthReconciling(nothingAwaited).Create(event.CreateEvent{Object: tc.app}); got != tc.want {
				t.Errorf("Create = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWorthReconcilingDeletes(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  *loansv1alpha1.LoanApplication
		want bool
	}{
		{"the controller's label patch at a decision takes the application out of the cache: its delete event, " +
			"which carries the version before the patch, is dropped", application(1, "pending", loansv1alpha1.PhaseApproved), false},
		{"a deleted final application needs nothing", application(1, "rejected", loansv1alpha1.PhaseRejected), false},
		{"a pending application that leaves the cache is reconciled (deleted, or hidden by a hand-set final label)",
			application(1, "pending", loansv1alpha1.PhasePending), true},
		{"so is one not submitted yet", application(1, "", ""), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := worthReconciling(nothingAwaited).Delete(event.DeleteEvent{Object: tc.app}); got != tc.want {
				t.Errorf("Delete = %v, want %v", got, tc.want)
			}
		})
	}
}
