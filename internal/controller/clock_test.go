package controller

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

// These specs call Reconcile by hand, with the real API server and the simulator over HTTP,
// and one fake clock for both the reconciler and the simulator: the bank decides exactly 10s
// after a submission, the jitter is 0.5 for every application (so the first poll comes at the
// next whole second after the submission plus the bank's minimum assessment time plus 10%, and
// the next ones exactly one interval apart), and a step of the clock replaces every real wait.
var _ = Describe("The reconciler on a fake clock", func() {
	const assessment = 10 * time.Second
	var (
		ctx      context.Context
		ns       string
		fake     *clocktesting.FakeClock
		t0       time.Time
		tb       *testBank
		recorder *events.FakeRecorder
		r        *LoanApplicationReconciler
	)

	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
		// Whole seconds: the API server keeps timestamps to the second.
		t0 = time.Now().Truncate(time.Second)
		fake = clocktesting.NewFakeClock(t0)
		tb = startBank(banksim.Config{MinDelay: assessment, MaxDelay: assessment, Seed: 42, Now: fake.Now})
		recorder = events.NewFakeRecorder(100)
		r = newClockReconciler(tb.url(), fake, recorder)
	})

	reconcile := func(app client.Object) (ctrl.Result, error) {
		return r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)})
	}
	// mustReconcile answers the result without its priority, once it has checked that the
	// priority is the urgency of the status the pass left (the state table checks each value).
	mustReconcile := func(app client.Object) ctrl.Result {
		GinkgoHelper()
		result, err := reconcile(app)
		Expect(err).NotTo(HaveOccurred())
		left := &loansv1alpha1.LoanApplication{}
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), left)).To(Succeed())
		Expect(result.Priority).To(HaveValue(Equal(urgency(&left.Status))), "the next pass's priority")
		result.Priority = nil
		return result
	}
	get := func(app *loansv1alpha1.LoanApplication) *loansv1alpha1.LoanApplication {
		GinkgoHelper()
		return fetch(Default, ctx, app)
	}
	calls := func(app *loansv1alpha1.LoanApplication) (int, int) { return tb.calls(string(app.UID)) }

	It("submits once, polls no earlier than due, decides on the first poll after the decision, then never calls again", func() {
		app := createApplication(ctx, ns, "ada", "Ada", "Lovelace", true)

		By("submitting under the UID and waiting a second more than the bank's minimum assessment time plus 10%")
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 6500 * time.Millisecond}))
		got := get(app)
		Expect(got.Status.Phase).To(Equal(loansv1alpha1.PhasePending))
		Expect(got.Status.BankApplicationID).To(Equal(string(app.UID)))
		Expect(got.Status.SubmittedAt.Time).To(BeTemporally("==", t0))
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, loansv1alpha1.ConditionSubmitted)).To(BeTrue())
		Expect(drain(recorder)).To(BeEmpty(), "a first submission is recorded by its condition, not by an Event")
		afterSubmission := got.ResourceVersion

		By("asking nothing of the bank when a reconcile comes before the poll is due")
		fake.Step(time.Second)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 5500 * time.Millisecond}))
		submits, polls := calls(app)
		Expect(submits).To(Equal(1))
		Expect(polls).To(BeZero())

		By("polling every interval while the bank assesses, without writing anything")
		for i, at := range []time.Duration{6500, 8500} {
			fake.SetTime(t0.Add(at * time.Millisecond))
			Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 2 * time.Second}))
			_, polls = calls(app)
			Expect(polls).To(Equal(i + 1))
		}
		Expect(get(app).ResourceVersion).To(Equal(afterSubmission), "a pending poll wrote to the API server")

		By("deciding on the first poll after the bank's decision")
		fake.SetTime(t0.Add(10500 * time.Millisecond))
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		decision := tb.simulator().Stats().Decisions[string(app.UID)]
		want := map[string]loansv1alpha1.Phase{"completed": loansv1alpha1.PhaseApproved, "rejected": loansv1alpha1.PhaseRejected}
		got = get(app)
		Expect(got.Status.Phase).To(Equal(want[decision.Status]))
		Expect(got.Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, got.Status.Phase.LabelValue()))
		Expect(got.Status.DecidedAt.Time).To(BeTemporally("==", t0.Add(10*time.Second)))
		Expect(got.Status.DecidedAt.Sub(decision.DecidedAt)).To(BeNumerically("<=", 2*time.Second))
		ready := meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionTrue))
		Expect(ready.Reason).To(Equal(string(got.Status.Phase)))
		Expect(meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionReconciling)).To(BeNil())
		Expect(drain(recorder)).To(BeEmpty(), "a decision is recorded by the Ready condition, not by an Event")

		By("never calling the bank again, however often and late it is reconciled")
		submits, polls = calls(app)
		for range 3 {
			fake.Step(time.Hour)
			Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		}
		Expect(tb.totalCalls()).To(Equal(submits+polls), "a final application reached the bank")

		By("putting back a hand-edited label, still without a bank call")
		edited := get(app)
		edited.Labels[loansv1alpha1.LabelStatus] = loansv1alpha1.LabelPending
		Expect(env.Client.Update(ctx, edited)).To(Succeed())
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		Expect(get(app).Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, got.Status.Phase.LabelValue()))
		Expect(tb.totalCalls()).To(Equal(submits + polls))
		Expect(drain(recorder)).To(BeEmpty(), "Events only on transitions")
	})

	It("polls, in a new process with nothing in memory, exactly when the old one would have", func() {
		app := createApplication(ctx, ns, "restarted", "Ada", "Lovelace", true)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 6500 * time.Millisecond}))
		r = newClockReconciler(tb.url(), fake, recorder) // a new process: it knows only the object

		fake.Step(3 * time.Second)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 3500 * time.Millisecond}), "the old process's first slot")
		Expect(tb.simulator().Stats().JobPolls).To(BeZero())
		fake.Step(3500 * time.Millisecond)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 2 * time.Second}))
		Expect(tb.simulator().Stats().JobPolls).To(Equal(int64(1)))
	})

	It("resubmits under the same id once the bank has forgotten the application for the grace period", func() {
		app := createApplication(ctx, ns, "grace", "Grace", "Hopper", true)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 6500 * time.Millisecond}))
		afterSubmission := get(app).ResourceVersion
		drain(recorder)
		tb.restart()
		resubmissions := testutil.ToFloat64(resubmissionsTotal)

		By("taking the 404s inside the grace period for lag")
		result := ctrl.Result{RequeueAfter: 6500 * time.Millisecond}
		for fake.Since(t0)+result.RequeueAfter < DefaultTiming.NotFoundGrace {
			fake.Step(result.RequeueAfter)
			result = mustReconcile(app)
			Expect(result).To(Equal(ctrl.Result{RequeueAfter: 2 * time.Second}))
		}
		Expect(get(app).ResourceVersion).To(Equal(afterSubmission))
		Expect(tb.simulator().Stats().ApplicationsCreated).To(BeZero())

		By("submitting again under the same id after it")
		fake.Step(result.RequeueAfter)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 6 * time.Second}), "resubmitted at +30.5s: first poll at +36.5s")
		got := get(app)
		submitted := meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionSubmitted)
		Expect(submitted.Reason).To(Equal(loansv1alpha1.ReasonResubmitted))
		Expect(got.Status.SubmittedAt.Time).To(BeTemporally("==", fake.Now().Truncate(time.Second)))
		Expect(tb.simulator().Stats().Submissions).To(Equal(map[string]int64{string(app.UID): 1}))
		Expect(testutil.ToFloat64(resubmissionsTotal)).To(Equal(resubmissions + 1))
		Expect(drain(recorder)).To(ConsistOf(
			HavePrefix("Warning BankForgot The bank answered 404 31s after the submission"),
			"Normal Resubmitted Submitted to the bank again as "+string(app.UID)))

		By("then deciding as usual")
		fake.Step(assessment + 3*time.Second)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		Expect(get(app).Status.Phase.IsFinal()).To(BeTrue())
	})

	It("waits the bank's Retry-After after a 429, capped at the longest retry delay, then carries on", func() {
		app := createApplication(ctx, ns, "throttled", "Ada", "Lovelace", true)
		mustReconcile(app)
		// One request per 1000s: the next poll takes the only token, the one after is refused
		// with Retry-After: 1000.
		tb.simulator().SetFaults(banksim.Faults{RateLimit: 0.001})
		fake.Step(6500 * time.Millisecond)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 2 * time.Second}))
		fake.Step(2 * time.Second)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: DefaultTiming.MaxWait}), "Retry-After 1000s, capped")
		ready := meta.FindStatusCondition(get(app).Status.Conditions, loansv1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(loansv1alpha1.ReasonThrottled))
		Expect(ready.Message).To(ContainSubstring("429"))

		tb.simulator().SetFaults(banksim.Faults{})
		fake.Step(DefaultTiming.MaxWait)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		got := get(app)
		Expect(got.Status.Phase.IsFinal()).To(BeTrue())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, loansv1alpha1.ConditionReady)).To(BeTrue())
	})

	It("backs off on 5xx with an error, records the trouble once, and submits once the bank is back", func() {
		app := createApplication(ctx, ns, "flaky", "Ada", "Lovelace", true)
		tb.simulator().SetFaults(banksim.Faults{FailRate: 1})
		_, err := reconcile(app)
		Expect(err).To(MatchError(errBankUnavailable))
		got := get(app)
		Expect(got.Status.Phase).To(BeEmpty())
		submitted := meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionSubmitted)
		Expect(submitted.Status).To(Equal(metav1.ConditionFalse))
		Expect(submitted.Reason).To(Equal(loansv1alpha1.ReasonBankUnavailable))
		Expect(submitted.Message).To(ContainSubstring("HTTP 5xx"))
		afterFirstFailure := got.ResourceVersion

		for range 5 {
			_, err = reconcile(app)
			Expect(err).To(MatchError(errBankUnavailable))
		}
		Expect(get(app).ResourceVersion).To(Equal(afterFirstFailure), "a retry of the same trouble wrote the status")
		submits, _ := calls(app)
		Expect(submits).To(Equal(6))

		tb.simulator().SetFaults(banksim.Faults{})
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{RequeueAfter: 6500 * time.Millisecond}))
		got = get(app)
		Expect(got.Status.Phase).To(Equal(loansv1alpha1.PhasePending))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, loansv1alpha1.ConditionSubmitted)).To(BeTrue())
		Expect(tb.simulator().Stats().Submissions).To(Equal(map[string]int64{string(app.UID): 1}))
	})

	It("fails an application whose payload the bank refuses, with the bank's words, and never retries it", func() {
		app := createApplication(ctx, ns, "refused", "Ada", refusedLastName, false)
		Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		got := get(app)
		Expect(got.Status.Phase).To(Equal(loansv1alpha1.PhaseFailed))
		Expect(got.Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, loansv1alpha1.LabelFailed))
		ready := meta.FindStatusCondition(got.Status.Conditions, loansv1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionFalse), "a refused application is not Ready: kubectl wait must not take it for a decision")
		Expect(ready.Reason).To(Equal(loansv1alpha1.ReasonInvalidPayload))
		Expect(ready.Message).To(Equal("HTTP 400: the request payload is not valid."))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, loansv1alpha1.ConditionStalled)).To(BeTrue())
		Expect(drain(recorder)).To(ConsistOf(HavePrefix("Warning InvalidPayload The bank refused the application for good")))

		for range 3 {
			fake.Step(time.Hour)
			Expect(mustReconcile(app)).To(Equal(ctrl.Result{}))
		}
		Expect(tb.totalCalls()).To(Equal(1))
	})
})

// newClockReconciler is a reconciler on the fake clock, reading and writing the API server
// directly (no cache), as a new process would.
func newClockReconciler(bankURL string, clk *clocktesting.FakeClock, recorder *events.FakeRecorder) *LoanApplicationReconciler {
	bankClient, err := bank.New(bankURL, bank.Options{})
	Expect(err).NotTo(HaveOccurred())
	r := &LoanApplicationReconciler{
		Client:   env.Client,
		Scheme:   scheme.Scheme,
		Bank:     bankClient,
		Recorder: recorder,
		Clock:    clk,
		Timing:   DefaultTiming,
		Spread:   func(types.UID) float64 { return 0.5 },
	}
	r.setDefaults()
	return r
}

// drain returns the Events recorded so far.
func drain(recorder *events.FakeRecorder) []string {
	var got []string
	for {
		select {
		case e := <-recorder.Events:
			got = append(got, e)
		default:
			return got
		}
	}
}
