package controller

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

func TestPhaseCollectorCountsEveryPhase(t *testing.T) {
	if err := loansv1alpha1.AddToScheme(scheme.Scheme); err != nil {
		t.Fatal(err)
	}
	phases := []loansv1alpha1.Phase{"", loansv1alpha1.PhasePending, loansv1alpha1.PhasePending,
		loansv1alpha1.PhaseApproved, loansv1alpha1.PhaseFailed}
	objects := make([]loansv1alpha1.LoanApplication, 0, len(phases))
	for i, phase := range phases {
		objects = append(objects, loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Name: "app-" + string(rune('a'+i)), Namespace: "n"},
			Status:     loansv1alpha1.LoanApplicationStatus{Phase: phase},
		})
	}
	builder := fake.NewClientBuilder().WithScheme(scheme.Scheme)
	for i := range objects {
		builder = builder.WithObjects(&objects[i])
	}
	collector := &phaseCollector{reader: builder.Build(),
		desc: prometheus.NewDesc("loan_applications", "by phase", []string{"phase"}, nil)}

	// Every phase is reported, at zero too, so that a dashboard sees a series from the start.
	want := `
# HELP loan_applications by phase
# TYPE loan_applications gauge
loan_applications{phase="New"} 1
loan_applications{phase="Pending"} 2
loan_applications{phase="Approved"} 1
loan_applications{phase="Rejected"} 0
loan_applications{phase="Failed"} 1
`
	if err := testutil.CollectAndCompare(collector, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
