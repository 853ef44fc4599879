package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

func versionOf(uid types.UID, resourceVersion string, phase loansv1alpha1.Phase) *loansv1alpha1.LoanApplication {
	return &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n", UID: uid, ResourceVersion: resourceVersion},
		Status:     loansv1alpha1.LoanApplicationStatus{Phase: phase},
	}
}

func TestWrittenVersions(t *testing.T) {
	const pending = loansv1alpha1.PhasePending
	for _, tc := range []struct {
		name    string
		written *loansv1alpha1.LoanApplication // after the write
		from    string                         // the version the write replaced
		read    *loansv1alpha1.LoanApplication // what a later reconcile reads from the cache
		stale   bool
	}{
		{"reading the version the write replaced: stale", versionOf("u1", "11", pending), "10", versionOf("u1", "10", pending), true},
		{"reading the written version: fresh", versionOf("u1", "11", pending), "10", versionOf("u1", "11", pending), false},
		{"reading a later version (the label patch): fresh", versionOf("u1", "11", pending), "10", versionOf("u1", "12", pending), false},
		{"a write that changed nothing is not waited for", versionOf("u1", "10", pending), "10", versionOf("u1", "10", pending), false},
		{"a final application is not waited for", versionOf("u1", "11", loansv1alpha1.PhaseApproved), "10",
			versionOf("u1", "10", pending), false},
		{"another object of the same name is not the one written", versionOf("u1", "11", pending), "10", versionOf("u2", "10", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWrittenVersions()
			w.wrote(tc.written, tc.from)
			if got := w.isStale(tc.read); got != tc.stale {
				t.Errorf("isStale = %v, want %v", got, tc.stale)
			}
		})
	}
}

func TestWrittenVersionsForgetOnceCaughtUp(t *testing.T) {
	w := newWrittenVersions()
	w.wrote(versionOf("u1", "11", loansv1alpha1.PhasePending), "10")
	if w.isStale(versionOf("u1", "11", loansv1alpha1.PhasePending)) {
		t.Fatal("the written version was taken for stale")
	}
	if len(w.replaced) != 0 {
		t.Errorf("%d entries kept after the cache caught up", len(w.replaced))
	}
	w.wrote(versionOf("u1", "12", loansv1alpha1.PhasePending), "11")
	w.forget(types.NamespacedName{Namespace: "n", Name: "a"})
	if len(w.replaced) != 0 {
		t.Errorf("%d entries kept after the object was deleted", len(w.replaced))
	}
}

func TestWrittenVersionsAwaitsWrite(t *testing.T) {
	const pending = loansv1alpha1.PhasePending
	w := newWrittenVersions()
	if w.awaitsWrite(versionOf("u1", "11", pending)) {
		t.Error("an update was awaited before any write")
	}
	w.wrote(versionOf("u1", "11", pending), "10")
	if w.awaitsWrite(versionOf("u1", "11", pending)) {
		t.Error("the write's event was let through although no reconcile waits for it: it would re-enqueue the application")
	}
	if !w.isStale(versionOf("u1", "10", pending)) {
		t.Fatal("reading the replaced version was taken for fresh")
	}
	for _, tc := range []struct {
		name   string
		update *loansv1alpha1.LoanApplication
		want   bool
	}{
		{"the written version is awaited", versionOf("u1", "11", pending), true},
		{"a later version (the label patch) is awaited too: it also brings the write", versionOf("u1", "12", pending), true},
		{"the replaced version is not (a resync of the stale copy)", versionOf("u1", "10", pending), false},
		{"another object of the same name is not", versionOf("u2", "11", pending), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.awaitsWrite(tc.update); got != tc.want {
				t.Errorf("awaitsWrite = %v, want %v", got, tc.want)
			}
		})
	}
	w.isStale(versionOf("u1", "11", pending)) // the cache caught up: the write is no longer awaited
	if w.awaitsWrite(versionOf("u1", "12", pending)) {
		t.Error("an update was awaited after the cache had caught up")
	}
}

func TestWrittenVersionsStatusThenLabel(t *testing.T) {
	const pending = loansv1alpha1.PhasePending
	w := newWrittenVersions()
	// One pass: the status write took the object from 10 to 11, the label patch from 11 to 12;
	// then a reconcile read the status write's version and waits.
	w.wrote(versionOf("u1", "12", pending), "10", "11")
	if !w.isStale(versionOf("u1", "11", pending)) {
		t.Fatal("reading the status write's version, older than the label patch, was taken for fresh")
	}
	if w.awaitsWrite(versionOf("u1", "11", pending)) {
		t.Error("the status write's version was awaited: its reconcile would patch the label again")
	}
	if !w.awaitsWrite(versionOf("u1", "12", pending)) {
		t.Error("the label patch's version was not awaited")
	}
	if w.isStale(versionOf("u1", "12", pending)) {
		t.Error("reading the label patch's version was taken for stale")
	}
}
