package controller

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

// pacedTiming is the default timing against a bank that takes 100 calls a second, half of them
// for the polls: 50 polls a second, which 100 pending applications polled every 2s make.
func pacedTiming() Timing {
	t := DefaultTiming
	t.BankQPS, t.PollBudget = 100, 0.5
	return t
}

func TestThePollIntervalStretchesPastTheBanksBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Timing)
		pending int
		want    time.Duration
	}{
		{"no pending application: the interval", nil, 0, 2 * time.Second},
		{"100 pending make 50 polls a second, the budget: the interval", nil, 100, 2 * time.Second},
		{"101 pending: stretched just enough", nil, 101, 2020 * time.Millisecond},
		{"1000 pending: 20s", nil, 1000, 20 * time.Second},
		{"10000 pending: no longer than the longest interval", nil, 10_000, 30 * time.Second},
		{"a bank without a limit: never stretched", func(t *Timing) { t.BankQPS = 0 }, 10_000, 2 * time.Second},
		{"a longest interval at the interval: never stretched", func(t *Timing) { t.MaxPollInterval = 2 * time.Second }, 10_000, 2 * time.Second},
		{"no budget given (a Timing from before it existed): never stretched", func(t *Timing) { t.PollBudget = 0 }, 10_000, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timing := pacedTiming()
			if tc.change != nil {
				tc.change(&timing)
			}
			paced := timing.paced(tc.pending)
			if paced.PollInterval != tc.want {
				t.Errorf("interval %v, want %v", paced.PollInterval, tc.want)
			}
			paced.PollInterval, paced.stretched = timing.PollInterval, false
			if paced != timing {
				t.Errorf("paced changed more than the interval: %+v", paced)
			}
		})
	}
}

// The state machine takes the stretched interval as it takes the timing: the next poll of a
// pending application comes at the stretched slot, and the first poll is not moved.
func TestAPassPollsAtTheStretchedInterval(t *testing.T) {
	m := machine{timing: pacedTiming().paced(1000), spread: func(types.UID) float64 { return 0.5 }}
	app := pendingApp()
	if s, wait := m.plan(app, t0); s != stepWait || wait != firstPoll.Sub(t0) {
		t.Errorf("before the first slot: %v, wait %v; want the first slot at %v", s, wait, firstPoll.Sub(t0))
	}
	job := bank.Job{ID: "job-1", ApplicationID: string(testUID), Status: bank.JobPending}
	if d := m.decide(app, stepPoll, answer{job: job}, firstPoll); d.requeueAfter != 20*time.Second || d.priority != priorityPoll {
		t.Errorf("polled again after %v at priority %d, want 20s at %d", d.requeueAfter, d.priority, priorityPoll)
	}
}

// A stretched interval changes with the count of pending applications, and the slots of the new
// one fall elsewhere: the next poll must still come a whole interval after this one, or every
// application polled while the count grows polls again moments later, past the budget.
func TestAStretchedIntervalSpacesThePolls(t *testing.T) {
	job := bank.Job{ID: "job-1", ApplicationID: string(testUID), Status: bank.JobPending}
	spread := func(types.UID) float64 { return 0.5 }
	// 200 pending: polled every 4s; this poll is on time at the fourth slot of that schedule.
	at := firstPoll.Add(12 * time.Second)
	// By then the count has grown to 225: every 4.5s, a schedule whose next slot is 1.5s away.
	m := machine{timing: pacedTiming().paced(225), spread: spread}
	if d := m.decide(pendingApp(), stepPoll, answer{job: job}, at); d.requeueAfter != 4500*time.Millisecond {
		t.Errorf("polled again after %v, want the whole stretched interval, 4.5s", d.requeueAfter)
	}
	// At the interval itself nothing is stretched, and a late poll still catches up with the
	// schedule (decide_test.go).
	m = machine{timing: pacedTiming().paced(100), spread: spread}
	if d := m.decide(pendingApp(), stepPoll, answer{job: job}, firstPoll.Add(3100*time.Millisecond)); d.requeueAfter != 900*time.Millisecond {
		t.Errorf("a late poll at the interval came back after %v, want the next slot, 0.9s", d.requeueAfter)
	}
}

// The pacer in a manager counts the pending applications in its cache, and the polls follow:
// 30 applications the bank takes an hour to decide, polled every 100ms, would make 300 polls a
// second; a bank taking 30 calls a second, half of them for polls, stretches the interval to 2s.
var _ = Describe("The poll interval under a bank's limit", func() {
	It("stretches with the pending applications in the cache, and the polls keep within the budget", func(ctx context.Context) {
		ns := newNamespace(ctx)
		tb := startBank(banksim.Config{MinDelay: time.Hour, MaxDelay: time.Hour})
		timing := shortTiming
		timing.BankQPS, timing.PollBudget, timing.MaxPollInterval = 30, 0.5, 10*time.Second
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: timing})
		apps := createApplications(ctx, ns, "slow", 30, true)
		Eventually(func(g Gomega) {
			for _, app := range apps {
				g.Expect(fetch(g, ctx, app).Status.Phase).To(Equal(loansv1alpha1.PhasePending))
			}
			g.Expect(testutil.ToFloat64(pollIntervalSeconds)).To(BeNumerically("~", 2, 0.001))
		}).Should(Succeed())

		// Past the first polls, which came before the count: the steady pace over two intervals.
		time.Sleep(time.Second)
		before := pollsOf(tb, apps)
		time.Sleep(4 * time.Second)
		polls := pollsOf(tb, apps) - before
		Expect(polls).To(BeNumerically(">=", 30), "every application polled at least once in two intervals")
		Expect(polls).To(BeNumerically("<=", 120), "about 15 polls a second (60 in 4s), not 300")
	})
})

func pollsOf(tb *testBank, apps []*loansv1alpha1.LoanApplication) int {
	n := 0
	for _, app := range apps {
		_, polls := tb.calls(string(app.UID))
		n += polls
	}
	return n
}
