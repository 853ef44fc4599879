package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
)

func TestSubmitBoundScalesWithTheCreationTimeAndN(t *testing.T) {
	cases := []struct {
		name       string
		n          int
		createRate float64
		want       time.Duration
	}{
		{"a fast machine at 1,000 gets 40 s at the slowest submission rate seen", 1_000, 300, 40 * time.Second},
		{"a fast machine at 500 gets the floor", 500, 300, minSubmitBound},
		{"3,000 at 50/s get six times their 60 s", 3_000, 50, 6 * time.Minute},
		{"10,000 at 500/s get 400 s at the slowest submission rate seen, not six times 20 s", 10_000, 500, 400 * time.Second},
		{"a crawling machine gets the cap", 10_000, 20, maxSubmitBound},
		{"no measured rate gets the cap", 10_000, 0, maxSubmitBound},
	}
	for _, c := range cases {
		if got := submitBound(c.n, c.createRate); got != c.want {
			t.Errorf("%s: submitBound(%d, %v) = %v, want %v", c.name, c.n, c.createRate, got, c.want)
		}
	}
}

func TestRestartWindowOutlastsTheSubmissionsAndTheStop(t *testing.T) {
	tm := defaultTiming()
	w := tm.restartWindow(2 * time.Minute)
	if got, want := time.Duration(w.MinDelay), 2*time.Minute+stopMargin; got != want {
		t.Errorf("shortest assessment %v, want the bound and the stop margin, %v", got, want)
	}
	if got, want := time.Duration(w.MaxDelay-w.MinDelay), tm.bankMax-tm.bankMin; got != want {
		t.Errorf("window %v wide, want the real bank's %v", got, want)
	}
	if err := w.Validate(); err != nil {
		t.Errorf("the simulator would refuse the window: %v", err)
	}
}

// systemWithBank is a system whose only part is a simulator served over loopback HTTP.
func systemWithBank(t *testing.T) (*system, *banksim.Simulator) {
	t.Helper()
	sim := banksim.New(banksim.Config{})
	server := httptest.NewServer(sim.Handler())
	t.Cleanup(server.Close)
	return &system{stack: &devenv.Stack{BankURL: server.URL}, web: server.Client()}, sim
}

func TestSetBankAssessmentPutsTheWindowInForce(t *testing.T) {
	sys, sim := systemWithBank(t)
	tm := defaultTiming()
	lengthened := tm.restartWindow(time.Minute)
	if err := sys.setBankAssessment(context.Background(), lengthened); err != nil {
		t.Fatal(err)
	}
	if got := sim.Assessment(); got != lengthened {
		t.Errorf("the bank's window %+v, want %+v", got, lengthened)
	}
	if err := sys.setBankAssessment(context.Background(), tm.realWindow()); err != nil {
		t.Fatal(err)
	}
	if got := sim.Assessment(); time.Duration(got.MinDelay) != tm.bankMin || time.Duration(got.MaxDelay) != tm.bankMax {
		t.Errorf("the bank's window after putting it back %+v, want %v-%v", got, tm.bankMin, tm.bankMax)
	}
}

func TestSetBankAssessmentReportsARefusal(t *testing.T) {
	sys, sim := systemWithBank(t)
	before := sim.Assessment()
	upsideDown := banksim.Assessment{MinDelay: banksim.Duration(time.Minute), MaxDelay: banksim.Duration(time.Second)}
	err := sys.setBankAssessment(context.Background(), upsideDown)
	if err == nil || !strings.Contains(err.Error(), http.StatusText(http.StatusBadRequest)) ||
		!strings.Contains(err.Error(), "max_delay 1s is below min_delay 1m0s") {
		t.Errorf("error %v, want the bank's 400 and its reason", err)
	}
	if got := sim.Assessment(); got != before {
		t.Errorf("the bank's window changed to %+v on a refusal", got)
	}
}

// The bank's own limit is what scenario 5 holds the controller to: put in force through the
// admin API, it answers 429 above its rate, and the requests the benchmark counts include them.
func TestTheBanksOwnRateLimitRefusesAndIsCounted(t *testing.T) {
	sys, sim := systemWithBank(t)
	ctx := context.Background()
	if err := sys.setBankFaults(ctx, banksim.Faults{RateLimit: 5}); err != nil {
		t.Fatal(err)
	}
	if got := sim.Faults().RateLimit; got != 5 {
		t.Fatalf("the bank's rate limit is %v, want 5", got)
	}
	const sent = 20
	for range sent {
		resp, err := sys.web.Get(sys.stack.BankURL + "/api/jobs?application_id=00000000-0000-0000-0000-000000000000")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	st, err := sys.bankStats(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.FaultsInjected.Throttled == 0 {
		t.Errorf("%d requests at once past a limit of 5/s drew no 429", sent)
	}
	if got := bankRequests(st); got != sent {
		t.Errorf("bank requests %v, want every one of the %d sent, 429s included", got, sent)
	}
	if err := sys.setBankFaults(ctx, banksim.Faults{}); err != nil || sim.Faults().RateLimit != 0 {
		t.Errorf("lifting the limit: %v, limit now %v", err, sim.Faults().RateLimit)
	}
}
