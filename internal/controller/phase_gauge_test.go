package controller

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

func TestPhaseCountsFollowTheCache(t *testing.T) {
	app := func(name string, phase loansv1alpha1.Phase) *loansv1alpha1.LoanApplication {
		return &loansv1alpha1.LoanApplication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "n"},
			Status: loansv1alpha1.LoanApplicationStatus{Phase: phase}}
	}
	counts := newPhaseCounts()
	var handler toolscache.ResourceEventHandler = counts
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		handler.OnAdd(app(name, ""), true)
	}
	handler.OnUpdate(app("a", ""), app("a", loansv1alpha1.PhasePending))
	handler.OnUpdate(app("b", ""), app("b", loansv1alpha1.PhasePending))
	handler.OnUpdate(app("c", ""), app("c", loansv1alpha1.PhasePending))
	handler.OnUpdate(app("c", ""), app("c", loansv1alpha1.PhaseApproved)) // its old copy is out of date: counted from what was counted
	handler.OnUpdate(app("d", ""), app("d", loansv1alpha1.PhaseFailed))
	// d leaves the cache with its label patch; the delete event carries the version before it.
	handler.OnDelete(app("d", loansv1alpha1.PhaseFailed))
	// e leaves while the informer was disconnected: a tombstone of its last known version.
	handler.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "n/e", Obj: app("e", "")})
	handler.OnDelete(app("gone", loansv1alpha1.PhasePending)) // never counted: nothing to take away

	collector := &phaseCollector{desc: prometheus.NewDesc("loan_applications", "by phase", []string{"phase"}, nil)}
	collector.counts.Store(counts)
	// Every phase is reported, at zero too, so that a dashboard sees a series from the start.
	want := `
# HELP loan_applications by phase
# TYPE loan_applications gauge
loan_applications{phase="New"} 0
loan_applications{phase="Pending"} 2
loan_applications{phase="Approved"} 1
loan_applications{phase="Rejected"} 0
loan_applications{phase="Failed"} 0
`
	if err := testutil.CollectAndCompare(collector, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if len(counts.phases) != 3 {
		t.Errorf("%d applications remembered, want the 3 still cached", len(counts.phases))
	}
}
