package controller

import (
	"testing"
	"time"
)

// SetupWithManager gives a reconciler whose Timing was left zero the RetryMaxDelay as MaxWait
// before the defaults apply: the rest of the Timing must still be the default one.
func TestTimingLeftZeroButForMaxWaitGetsTheDefaults(t *testing.T) {
	r := &LoanApplicationReconciler{Timing: Timing{MaxWait: 300 * time.Millisecond}}
	r.setDefaults()
	want := DefaultTiming
	want.MaxWait = 300 * time.Millisecond
	if r.Timing != want {
		t.Fatalf("Timing %+v, want %+v", r.Timing, want)
	}

	r = &LoanApplicationReconciler{}
	r.setDefaults()
	if r.Timing != DefaultTiming {
		t.Fatalf("Timing %+v, want the default %+v", r.Timing, DefaultTiming)
	}
}
