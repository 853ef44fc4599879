package gateway

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The ring's size counts the changes it holds, not those it has let go: a bounded cost.
func TestFeedCountsTheBytesItsRingHolds(t *testing.T) {
	f := newFeed(2)
	if got := f.heldBytes(); got != 0 {
		t.Fatalf("an empty ring holds %d bytes", got)
	}
	for i, last := range []string{"A", strings.Repeat("B", 300), "C", "D"} {
		app := &loansv1alpha1.LoanApplication{ObjectMeta: metav1.ObjectMeta{Name: "app-" + last[:1]},
			Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: last}}
		f.record(changeCreated, app)
		want := 0
		for _, c := range f.ring {
			want += cap(c.data)
		}
		if got := f.heldBytes(); got != want || got == 0 {
			t.Errorf("after change %d: %d bytes, want %d", i+1, got, want)
		}
	}
	if got := f.heldBytes(); got >= 300 {
		t.Errorf("the ring holds %d bytes once the long change left it", got)
	}
}
