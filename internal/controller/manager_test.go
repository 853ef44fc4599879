package controller

import (
	"context"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
)

// These specs run whole managers, as cmd/controller does, against a simulator that decides in
// 200–800ms, so that every path runs end to end in about a second.
var _ = Describe("The controller in a manager", func() {
	var (
		ctx context.Context
		ns  string
		tb  *testBank
	)
	quickBank := banksim.Config{MinDelay: 200 * time.Millisecond, MaxDelay: 800 * time.Millisecond}

	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	// expectOneApplicationEach checks the bank's own record: every application created exactly
	// once in its current lifetime.
	expectOneApplicationEach := func(apps []*loansv1alpha1.LoanApplication) {
		GinkgoHelper()
		stats := tb.simulator().Stats()
		Expect(stats.ApplicationsCreated).To(BeEquivalentTo(len(apps)))
		Expect(stats.Submissions).To(HaveLen(len(apps)))
		for _, app := range apps {
			Expect(stats.Submissions).To(HaveKeyWithValue(string(app.UID), BeEquivalentTo(1)), app.Name)
		}
	}

	It("takes applications to Approved and Rejected: status, conditions, label, Events, timestamps, and 3 or 4 API writes", func() {
		tb = startBank(quickBank)
		writes := newWriteCounter()
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming, writes: writes})
		labelled := createApplications(ctx, ns, "gateway", 10, true)
		unlabelled := createApplications(ctx, ns, "kubectl", 10, false)
		apps := append(labelled, unlabelled...)
		eventuallyAllFinal(ctx, apps)

		decisions := tb.simulator().Stats().Decisions
		outcomes := map[loansv1alpha1.Phase]int{}
		for _, app := range apps {
			got := fetch(Default, ctx, app)
			phase := got.Status.Phase
			outcomes[phase]++
			decision := decisions[string(app.UID)]
			Expect(phase).To(Equal(map[string]loansv1alpha1.Phase{
				"completed": loansv1alpha1.PhaseApproved, "rejected": loansv1alpha1.PhaseRejected}[decision.Status]), app.Name)
			Expect(got.Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, phase.LabelValue()))
			Expect(got.Status.BankApplicationID).To(Equal(string(app.UID)))
			Expect(got.Status.BankJobID).NotTo(BeEmpty())
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			// The API server keeps seconds, so compare with the bank's times cut to the second. Each
			// is recorded after the bank's event, never before; how much later is a figure of the
			// benchmark (BenchmarkThousandApplications), here only bounded loosely, since a loaded
			// machine delays polls and writes by seconds.
			Expect(got.Status.SubmittedAt.Time).To(BeTemporally(">=", decision.CreatedAt.Truncate(time.Second)))
			Expect(got.Status.SubmittedAt.Time).To(BeTemporally("<", decision.CreatedAt.Add(10*time.Second)))
			Expect(got.Status.DecidedAt.Time).To(BeTemporally(">=", decision.DecidedAt.Truncate(time.Second)))
			Expect(got.Status.DecidedAt.Time).To(BeTemporally("<", decision.DecidedAt.Add(10*time.Second)))
			Expect(got.Status.DecidedAt.Before(got.Status.SubmittedAt)).To(BeFalse())
			expectTrueCondition(got, loansv1alpha1.ConditionSubmitted, loansv1alpha1.ReasonSubmitted)
			expectTrueCondition(got, loansv1alpha1.ConditionReady, string(phase))
		}
		Expect(outcomes).To(HaveLen(2), "20 applications, all decided alike: %v", outcomes)
		expectOneApplicationEach(apps)

		By("recording no Event: the submission and the decision are recorded by their conditions")
		Consistently(func(g Gomega) {
			for _, app := range apps {
				g.Expect(occurrences(g, ctx, ns, app.Name)).To(BeEmpty(), app.Name)
			}
		}).WithTimeout(2 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("writing status at submission and at decision, and the label at decision (and at creation without one)")
		for _, app := range labelled {
			status, label := writes.writes(app.Name)
			Expect([]int{status, label}).To(Equal([]int{2, 1}), app.Name)
		}
		for _, app := range unlabelled {
			status, label := writes.writes(app.Name)
			Expect([]int{status, label}).To(Equal([]int{2, 2}), app.Name)
		}
	})

	It("submits each application exactly once when a manager is stopped mid-flight and a new one takes over", func() {
		// Each answer of the bank comes 300ms after it acted: stopping the manager while
		// submissions are in flight leaves applications the bank created and the status never
		// recorded, the crash window the UID as bank id is there to close.
		bankCfg := quickBank
		bankCfg.Faults = banksim.Faults{Latency: banksim.Duration(300 * time.Millisecond)}
		tb = startBank(bankCfg)
		// Many more applications than the manager's 16 workers, so that the stop, right after
		// the first submission is recorded, always finds some in flight and some not yet sent;
		// with 40 a quiet machine recorded them all before the stop.
		apps := createApplications(ctx, ns, "restart", 100, true)
		first := startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		Eventually(func(g Gomega) {
			g.Expect(countPhase(g, ctx, apps, loansv1alpha1.PhasePending)).To(BeNumerically(">=", 1))
		}).WithTimeout(finalWithin).Should(Succeed())
		first.stop()

		unrecorded := 0
		for _, app := range apps {
			if fetch(Default, ctx, app).Status.Phase == "" {
				unrecorded++
			}
		}
		Expect(unrecorded).To(BeNumerically(">", 0), "the manager was stopped too late to test anything")

		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		eventuallyAllFinal(ctx, apps)
		expectOneApplicationEach(apps)
		Expect(tb.simulator().Stats().DuplicatesRefused).To(BeNumerically(">", 0),
			"no submission was cut between the bank's answer and the status write")
	})

	It("submits each application exactly once when the status write after a submission fails", func() {
		tb = startBank(quickBank)
		writes := newWriteCounter()
		writes.failFirstSubmit = true
		alreadySubmitted := testutil.ToFloat64(submissionsTotal.WithLabelValues("already_submitted"))
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming, writes: writes})
		apps := createApplications(ctx, ns, "lost-write", 5, true)
		eventuallyAllFinal(ctx, apps)
		Expect(testutil.ToFloat64(submissionsTotal.WithLabelValues("already_submitted")) - alreadySubmitted).
			To(BeEquivalentTo(len(apps)))

		expectOneApplicationEach(apps)
		Expect(tb.simulator().Stats().DuplicatesRefused).To(BeEquivalentTo(len(apps)),
			"each retry after the lost write should meet the bank's \"already used\" once")
		for _, app := range apps {
			Expect(writes.injectedFailure(app.Name)).To(BeTrue(), app.Name)
			Consistently(func(g Gomega) {
				g.Expect(occurrences(g, ctx, ns, app.Name)).To(BeEmpty(),
					"neither the retried submission nor the decision should be announced")
			}).WithTimeout(time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		}
	})

	It("rides out 5xx, timeouts and dropped connections, records the trouble without a write per retry, and ends final", func() {
		bankCfg := banksim.Config{MinDelay: time.Second, MaxDelay: 1500 * time.Millisecond,
			Faults: banksim.Faults{FailRate: 1}}
		tb = startBank(bankCfg)
		writes := newWriteCounter()
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming, writes: writes,
			bankTimeout: 150 * time.Millisecond})
		apps := createApplications(ctx, ns, "flaky", 10, true)

		By("recording 5xx in the Submitted condition once, however many retries")
		Eventually(func(g Gomega) {
			for _, app := range apps {
				expectTrouble(g, fetch(g, ctx, app), loansv1alpha1.ConditionSubmitted, "HTTP 5xx")
			}
			g.Expect(tb.simulator().Stats().FaultsInjected.Failures).To(BeNumerically(">=", 5*len(apps)))
		}).WithTimeout(finalWithin).Should(Succeed())
		for _, app := range apps {
			status, _ := writes.writes(app.Name)
			Expect(status).To(Equal(1), "%s: status writes during the outage", app.Name)
		}

		By("recording timeouts the same way")
		tb.simulator().SetFaults(banksim.Faults{Latency: banksim.Duration(time.Second)})
		Eventually(func(g Gomega) {
			for _, app := range apps {
				expectTrouble(g, fetch(g, ctx, app), loansv1alpha1.ConditionSubmitted, "timeout")
			}
		}).WithTimeout(finalWithin).Should(Succeed())

		By("submitting once the bank is back, then polling through errors and dropped connections")
		tb.simulator().SetFaults(banksim.Faults{})
		Eventually(func(g Gomega) {
			g.Expect(countPhase(g, ctx, apps, loansv1alpha1.PhasePending)).To(Equal(len(apps)))
		}).WithTimeout(finalWithin).Should(Succeed())
		tb.simulator().SetFaults(banksim.Faults{FailRate: 0.5, DropRate: 0.2})
		time.Sleep(time.Second) // an outage of a second, on the bank's side: nothing to wait for here
		tb.simulator().SetFaults(banksim.Faults{})
		eventuallyAllFinal(ctx, apps)
		// The timeouts came after the bank had acted: it created each application then, and
		// every later submission met "already used".
		expectOneApplicationEach(apps)
		Expect(tb.simulator().Stats().DuplicatesRefused).To(BeNumerically(">=", len(apps)))
	})

	It("submits pending applications again, under the same ids, after the bank restarts and forgets them", func() {
		tb = startBank(banksim.Config{MinDelay: 3 * time.Second, MaxDelay: 4 * time.Second})
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		apps := createApplications(ctx, ns, "forgotten", 10, true)
		Eventually(func(g Gomega) {
			g.Expect(countPhase(g, ctx, apps, loansv1alpha1.PhasePending)).To(Equal(len(apps)))
		}).WithTimeout(finalWithin).Should(Succeed())
		resubmissions := testutil.ToFloat64(resubmissionsTotal)

		tb.restart()
		eventuallyAllFinal(ctx, apps)
		expectOneApplicationEach(apps) // in the new lifetime of the bank
		Expect(testutil.ToFloat64(resubmissionsTotal) - resubmissions).To(BeEquivalentTo(len(apps)))
		for _, app := range apps {
			got := fetch(Default, ctx, app)
			expectTrueCondition(got, loansv1alpha1.ConditionSubmitted, loansv1alpha1.ReasonResubmitted)
			Eventually(func(g Gomega) {
				g.Expect(occurrences(g, ctx, ns, app.Name)).To(Equal(map[string]int32{
					"BankForgot": 1, loansv1alpha1.ReasonResubmitted: 1}))
			}).WithTimeout(10 * time.Second).Should(Succeed())
		}
	})

	It("fails an application whose payload the bank refuses, and calls the bank about it no more", func() {
		tb = startBank(quickBank)
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		refused := createApplication(ctx, ns, "refused", "Ada", refusedLastName, false)
		accepted := createApplication(ctx, ns, "accepted", "Ada", "Lovelace", false)
		eventuallyAllFinal(ctx, []*loansv1alpha1.LoanApplication{refused, accepted})

		got := fetch(Default, ctx, refused)
		Expect(got.Status.Phase).To(Equal(loansv1alpha1.PhaseFailed))
		expectTrueCondition(got, loansv1alpha1.ConditionStalled, loansv1alpha1.ReasonInvalidPayload)
		Expect(meta.IsStatusConditionFalse(got.Status.Conditions, loansv1alpha1.ConditionReady)).To(BeTrue(), "a Failed application is not Ready")
		Expect(meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionReady).Message).
			To(Equal("HTTP 400: the request payload is not valid."))
		Expect(fetch(Default, ctx, accepted).Status.Phase).NotTo(Equal(loansv1alpha1.PhaseFailed))
		Eventually(func(g Gomega) {
			g.Expect(occurrences(g, ctx, ns, refused.Name)).To(Equal(map[string]int32{loansv1alpha1.ReasonInvalidPayload: 1}))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			submits, polls := tb.calls(string(refused.UID))
			g.Expect([]int{submits, polls}).To(Equal([]int{1, 0}))
		}).WithTimeout(time.Second).Should(Succeed())
	})

	It("retries what a proxy refuses with a 401 and what the bank throttles until the year 9999, and ends final once they let go", func() {
		tb = startBank(quickBank)
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		refusedBefore := testutil.ToFloat64(submissionsTotal.WithLabelValues("refused"))
		tb.simulator().SetFaults(banksim.Faults{Answer: banksim.ForcedAnswer{
			Rate: 1, Operation: banksim.OperationSubmit, Status: http.StatusUnauthorized, Body: "Unauthorized"}})
		apps := createApplications(ctx, ns, "proxied", 5, true)
		Eventually(func(g Gomega) {
			for _, app := range apps {
				got := fetch(g, ctx, app)
				g.Expect(got.Status.Phase).To(BeEmpty())
				c := meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionSubmitted)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(loansv1alpha1.ReasonBankRefused))
				g.Expect(c.Message).To(ContainSubstring("HTTP 401: Unauthorized"))
			}
			g.Expect(testutil.ToFloat64(submissionsTotal.WithLabelValues("refused"))).To(BeNumerically(">=", refusedBefore+5))
		}).WithTimeout(10 * time.Second).Should(Succeed())

		By("then throttling every poll until the year 9999: the waits are capped, not overflowed")
		tb.simulator().SetFaults(banksim.Faults{Answer: banksim.ForcedAnswer{Rate: 1, Operation: banksim.OperationPoll,
			Status: http.StatusTooManyRequests, RetryAfter: "Fri, 31 Dec 9999 23:59:59 GMT"}})
		Eventually(func(g Gomega) {
			for _, app := range apps {
				got := fetch(g, ctx, app)
				g.Expect(meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionReady)).NotTo(BeNil())
				g.Expect(meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionReady).Reason).
					To(Equal(loansv1alpha1.ReasonThrottled))
			}
		}).WithTimeout(10 * time.Second).Should(Succeed())

		tb.simulator().SetFaults(banksim.Faults{})
		eventuallyAllFinal(ctx, apps)
		expectOneApplicationEach(apps)
	})

	It("puts back a hand-edited label, and makes no bank call for a final application", func() {
		// Long enough an assessment for the label to be edited and put back while pending.
		tb = startBank(banksim.Config{MinDelay: 3 * time.Second, MaxDelay: 4 * time.Second})
		m := startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		app := createApplication(ctx, ns, "edited", "Ada", "Lovelace", true)
		// The cache drops annotations: the label put back from a cached copy must keep this one.
		annotate(ctx, app, "example.com/owner", "mortgages")
		// A final application leaves the controller's cache with its final label (CacheOptions).
		expectOutOfCache := func() {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				g.Expect(cachedApplications(g, ctx, m, ns)).To(BeEmpty())
			}).Should(Succeed())
		}

		By("while pending, even set to a final value, which takes it out of the cache (where no admission policy refuses that)")
		Eventually(func(g Gomega) {
			g.Expect(fetch(g, ctx, app).Status.Phase).To(Equal(loansv1alpha1.PhasePending))
		}).WithTimeout(finalWithin).Should(Succeed())
		setLabel(ctx, app, loansv1alpha1.LabelApproved)
		expectLabelPutBack(ctx, app, loansv1alpha1.LabelPending)

		By("once final, edited and removed: each edit brings it back into the cache, and the label put back takes it out")
		eventuallyAllFinal(ctx, []*loansv1alpha1.LoanApplication{app})
		expectOutOfCache()
		want := fetch(Default, ctx, app).Status.Phase.LabelValue()
		before := tb.simulator().Stats()
		for _, value := range []string{loansv1alpha1.LabelPending, "not-a-status", ""} {
			setLabel(ctx, app, value)
			expectLabelPutBack(ctx, app, want)
			expectOutOfCache()
		}
		Expect(fetch(Default, ctx, app).Annotations).To(HaveKeyWithValue("example.com/owner", "mortgages"))
		Consistently(func(g Gomega) {
			after := tb.simulator().Stats()
			g.Expect(after.JobPolls).To(Equal(before.JobPolls))
			g.Expect(after.ApplicationsCreated + after.DuplicatesRefused).To(Equal(before.ApplicationsCreated + before.DuplicatesRefused))
		}).WithTimeout(time.Second).Should(Succeed())
	})

	It("repairs, after a restart, the label of an application whose status was written just before a crash", func() {
		tb = startBank(quickBank)
		app := createApplication(ctx, ns, "crashed", "Ada", "Lovelace", true)
		// What a controller killed between the decision's status write and the label patch
		// leaves behind: a final status, and the label still pending.
		decided := fetch(Default, ctx, app)
		patch := client.MergeFrom(decided.DeepCopy())
		now := metav1.Now()
		decided.Status = loansv1alpha1.LoanApplicationStatus{
			Phase: loansv1alpha1.PhaseRejected, BankApplicationID: string(app.UID), SubmittedAt: &now, DecidedAt: &now,
		}
		Expect(env.Client.Status().Patch(ctx, decided, patch)).To(Succeed())

		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		expectLabelPutBack(ctx, app, loansv1alpha1.LabelRejected)
		Consistently(func() int { return tb.totalCalls() }).WithTimeout(time.Second).Should(BeZero())
	})
})

// expectTrueCondition checks that a condition is True with the reason.
func expectTrueCondition(app *loansv1alpha1.LoanApplication, conditionType string, reason string) {
	GinkgoHelper()
	c := meta.FindStatusCondition(app.Status.Conditions, conditionType)
	Expect(c).NotTo(BeNil(), "%s has no %s condition", app.Name, conditionType)
	Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", app.Name, conditionType)
	Expect(c.Reason).To(Equal(reason), "%s: %s", app.Name, conditionType)
}

// expectTrouble checks that a condition reports a transient bank error of the given kind.
func expectTrouble(g Gomega, app *loansv1alpha1.LoanApplication, conditionType, kind string) {
	c := meta.FindStatusCondition(app.Status.Conditions, conditionType)
	g.Expect(c).NotTo(BeNil(), "%s has no %s condition", app.Name, conditionType)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal(loansv1alpha1.ReasonBankUnavailable))
	g.Expect(c.Message).To(ContainSubstring(kind))
}

// countPhase counts the applications in a phase.
func countPhase(g Gomega, ctx context.Context, apps []*loansv1alpha1.LoanApplication, phase loansv1alpha1.Phase) int {
	n := 0
	for _, app := range apps {
		if fetch(g, ctx, app).Status.Phase == phase {
			n++
		}
	}
	return n
}

// setLabel edits the status label by hand, as a person with kubectl would ("" removes it).
func setLabel(ctx context.Context, app *loansv1alpha1.LoanApplication, value string) {
	GinkgoHelper()
	got := fetch(Default, ctx, app)
	patch := client.MergeFrom(got.DeepCopy())
	if value == "" {
		delete(got.Labels, loansv1alpha1.LabelStatus)
	} else {
		got.Labels[loansv1alpha1.LabelStatus] = value
	}
	Expect(env.Client.Patch(ctx, got, patch)).To(Succeed())
}

func expectLabelPutBack(ctx context.Context, app *loansv1alpha1.LoanApplication, want string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(fetch(g, ctx, app).Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, want))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
