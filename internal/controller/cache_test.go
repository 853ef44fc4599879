package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

func TestInFlightSelector(t *testing.T) {
	selector := InFlightSelector()
	if got, want := selector.String(), "status notin (approved,failed,rejected)"; got != want {
		t.Errorf("selector %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"no label at all (created by kubectl)", nil, true},
		{"other labels only", map[string]string{"team": "mortgages"}, true},
		{"pending", map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending}, true},
		{"a value a person typed", map[string]string{loansv1alpha1.LabelStatus: "not-a-status"}, true},
		{"empty value", map[string]string{loansv1alpha1.LabelStatus: ""}, true},
		{"approved", map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelApproved}, false},
		{"rejected", map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelRejected}, false},
		{"failed", map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelFailed}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selector.Matches(labels.Set(tc.labels)); got != tc.want {
				t.Errorf("Matches(%v) = %v, want %v", tc.labels, got, tc.want)
			}
		})
	}
}

func TestCacheOptionsSelectAndStripApplications(t *testing.T) {
	opts := CacheOptions("loans")
	if _, ok := opts.DefaultNamespaces["loans"]; !ok || len(opts.DefaultNamespaces) != 1 {
		t.Errorf("namespaces %v, want loans only", opts.DefaultNamespaces)
	}
	if all := CacheOptions(""); all.DefaultNamespaces != nil {
		t.Errorf("namespaces %v, want every namespace", all.DefaultNamespaces)
	}
	if len(opts.ByObject) != 1 {
		t.Fatalf("%d objects configured, want LoanApplication only", len(opts.ByObject))
	}
	for obj, byObject := range opts.ByObject {
		if _, ok := obj.(*loansv1alpha1.LoanApplication); !ok {
			t.Fatalf("configured %T, want *LoanApplication", obj)
		}
		if byObject.Label.String() != InFlightSelector().String() {
			t.Errorf("selector %q, want %q", byObject.Label, InFlightSelector())
		}
		checkStripsUnread(t, byObject.Transform)
	}
}

// checkStripsUnread checks that transform drops annotations and managed fields, and only them.
func checkStripsUnread(t *testing.T, transform toolscache.TransformFunc) {
	t.Helper()
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "loans",
			Labels:        map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending},
			Annotations:   map[string]string{"gateway.loans.lendo.se/request-sha256": "abc"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "gateway"}}},
		Spec:   loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"},
		Status: loansv1alpha1.LoanApplicationStatus{Phase: loansv1alpha1.PhasePending, Message: "waiting"},
	}
	out, err := transform(app)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*loansv1alpha1.LoanApplication)
	if got.Annotations != nil || got.ManagedFields != nil {
		t.Errorf("kept annotations %v and managed fields %v", got.Annotations, got.ManagedFields)
	}
	if got.Labels[loansv1alpha1.LabelStatus] != loansv1alpha1.LabelPending || got.Spec.LastName != "Lovelace" ||
		got.Status.Message != "waiting" {
		t.Errorf("dropped what the controller reads: %+v", got)
	}
	tombstone := toolscache.DeletedFinalStateUnknown{Key: "loans/a"}
	if out, err := transform(tombstone); err != nil || out != tombstone {
		t.Errorf("a tombstone came out as %v, %v", out, err)
	}
}
