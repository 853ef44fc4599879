package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
)

// Each fault test sends this many applications (half through the gateway, half straight to the
// API server) and waits this long at most for all of them to be final once the fault is over.
const (
	applicationsPerTest = 200
	finalWithin         = 3 * time.Minute
)

// sent is what a background load answers the spec: the applications created, or why not.
type sent struct {
	c   *created
	err error
}

// sendInBackground creates a test's applications while the test injects its fault. It asserts
// nothing (a failed assertion outside the spec's goroutine would never reach the spec, which
// would wait forever): the spec receives the result and asserts.
func sendInBackground(ctx context.Context, stack *devenv.Stack, prefix string, every time.Duration) <-chan sent {
	done := make(chan sent, 1)
	go func() {
		c, err := createApplications(ctx, stack, prefix, applicationsPerTest, every)
		done <- sent{c, err}
	}()
	return done
}

// await is the spec's side of sendInBackground: the created applications, once all are
// answered; a failed create fails the spec here.
func await(ctx context.Context, load <-chan sent) *created {
	GinkgoHelper()
	var s sent
	Eventually(load).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Receive(&s))
	Expect(s.err).NotTo(HaveOccurred(), "creating the test's applications")
	return s.c
}

// killLatency is the bank's extra delay before each answer while the controller is killed: an
// application the bank has accepted stays unrecorded by the controller for this long, so that
// kills strike such in-flight work, the case an idempotent submission exists for.
const killLatency = time.Second

// faultSpecs are the fault tests on the shared system: the invariant after each fault.
func faultSpecs(sys *system) {
	It("loses and duplicates nothing when the controller is killed with SIGKILL at random moments", func(ctx SpecContext) {
		test := faultTest(testControllerKill)
		rng := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 1))
		sys.bank.setFaults(ctx, banksim.Faults{Latency: banksim.Duration(killLatency)})
		load := sendInBackground(ctx, sys.stack, "kill", 50*time.Millisecond)
		controller := sys.stack.Controllers[0]
		const kills = 5
		inFlight := make([]string, 0, kills)
		struck := map[string]bool{} // uids accepted by the bank, their status unwritten, at a kill
		for range kills {
			pause := 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))
			time.Sleep(pause)
			By(fmt.Sprintf("SIGKILL to the controller after %s, restart", pause.Round(time.Millisecond)))
			Expect(controller.Kill()).To(Succeed())
			// The controller is dead: what the bank accepted and the API does not show now, it
			// accepted while the controller was still waiting for its answer.
			uids := acceptedUnrecorded(ctx, sys.stack, sys.bank, sys.before)
			for _, uid := range uids {
				struck[uid] = true
			}
			inFlight = append(inFlight, strconv.Itoa(len(uids)))
			Expect(controller.Start(ctx)).To(Succeed())
		}
		sys.bank.setFaults(ctx, banksim.Faults{})
		c := await(ctx, load)
		result := sys.record(ctx, test, c, nil, kills, fmt.Sprintf("SIGKILL of the controller, then restart; bank answers %s late", killLatency),
			map[string]string{
				"accepted by the bank, status unwritten, at each kill": strings.Join(inFlight, ","),
				"struck applications": strconv.Itoa(len(struck)),
			})
		Expect(result.Applications).To(Equal(applicationsPerTest))
		Expect(struck).NotTo(BeEmpty(), "no kill struck an application the bank had accepted: the test proved nothing")
		// Each struck application was submitted again after the restart under the same id, and
		// the bank refused it as already used: that is how it was not submitted twice.
		Expect(result.RefusedAsAlreadyUsed).To(BeNumerically(">=", len(struck)),
			"%d applications were struck in flight, but the bank refused only %d submissions as already used",
			len(struck), result.RefusedAsAlreadyUsed)
	}, SpecTimeout(faultTestTimeout))

	It("loses and duplicates nothing while the bank fails, stalls, throttles and drops, then recovers", func(ctx SpecContext) {
		test := faultTest(testFlakyBank)
		load := sendInBackground(ctx, sys.stack, "flaky", 50*time.Millisecond)
		for _, phase := range []struct {
			what   string
			faults banksim.Faults
			lasts  time.Duration
		}{
			{"30% 5xx", banksim.Faults{FailRate: 0.3}, 4 * time.Second},
			{"30% 5xx and 1.5s latency spikes", banksim.Faults{FailRate: 0.3, Latency: banksim.Duration(1500 * time.Millisecond)}, 3 * time.Second},
			{"429 above 20 requests/s", banksim.Faults{RateLimit: 20}, 4 * time.Second},
			{"20% dropped connections", banksim.Faults{DropRate: 0.2}, 4 * time.Second},
			{"all at once", banksim.Faults{FailRate: 0.3, Latency: banksim.Duration(300 * time.Millisecond), RateLimit: 30, DropRate: 0.1},
				4 * time.Second},
		} {
			By("the bank now: " + phase.what)
			sys.bank.setFaults(ctx, phase.faults)
			time.Sleep(phase.lasts)
		}
		By("the bank recovers")
		sys.bank.setFaults(ctx, banksim.Faults{})
		c := await(ctx, load)
		st := sys.bank.stats(ctx)
		// Every kind of fault struck: the test did inject what it claims.
		Expect(st.FaultsInjected.Failures).To(BeNumerically(">", 0))
		Expect(st.FaultsInjected.Throttled).To(BeNumerically(">", 0))
		Expect(st.FaultsInjected.Drops).To(BeNumerically(">", 0))
		Expect(st.FaultsInjected.Delayed).To(BeNumerically(">", 0))
		sys.record(ctx, test, c, nil, faultCount(st), describeFaults(st), nil)
	}, SpecTimeout(faultTestTimeout))

	It("submits pending applications again after the bank restarts and forgets, and every one ends final", func(ctx SpecContext) {
		test := faultTest(testBankAmnesia)
		load := sendInBackground(ctx, sys.stack, "amnesia", 30*time.Millisecond)
		time.Sleep(3 * time.Second)

		By("freezing the bank (every call 503) so that no decision escapes after its last stats are read")
		sys.bank.setFaults(ctx, banksim.Faults{FailRate: 1})
		time.Sleep(300 * time.Millisecond)
		firstLife := sys.bank.stats(ctx)
		finalAtRestart := finalUIDs(ctx, sys.stack, sys.before)
		By("SIGKILL to the bank, and a new one after a second")
		Expect(sys.stack.Bank.Kill()).To(Succeed())
		time.Sleep(time.Second)
		Expect(sys.stack.Bank.Start(ctx)).To(Succeed())

		c := await(ctx, load)
		counts := sys.record(ctx, test, c, []banksim.Stats{firstLife}, 1, "SIGKILL of the bank, restarted empty",
			map[string]string{
				"accepted before the restart": strconv.Itoa(len(firstLife.Submissions)),
				"final before the restart":    strconv.Itoa(len(finalAtRestart)),
			})
		Expect(counts.Resubmitted).To(BeNumerically(">", 0), "no application was pending at the restart: the test proved nothing")
		secondLife := sys.bank.stats(ctx)
		for uid := range secondLife.Submissions {
			Expect(finalAtRestart).NotTo(HaveKey(uid), "an application final before the restart was submitted again")
		}
		summary.figure(test, "resubmitted", strconv.Itoa(counts.Resubmitted))
	}, SpecTimeout(faultTestTimeout))

	It("recovers by itself when kube-apiserver restarts; meanwhile the gateway answers 503 at once", func(ctx SpecContext) {
		test := faultTest(testAPIServer)
		c, err := createApplications(ctx, sys.stack, "apiserver", applicationsPerTest, 10*time.Millisecond)
		Expect(err).NotTo(HaveOccurred())

		By("SIGKILL to kube-apiserver while the applications are in flight (etcd keeps running)")
		notFinal := countNotFinal(ctx, sys.stack, sys.before)
		Expect(sys.stack.APIServer.Kill()).To(Succeed())
		outage := probeGatewayDuringOutage(ctx, sys.stack.GatewayURL, 5*time.Second)
		By("restarting kube-apiserver")
		Expect(sys.stack.APIServer.Start(ctx)).To(Succeed())

		Eventually(func(g Gomega) {
			code, body := get(ctx, sys.stack.GatewayURL+"/readyz")
			g.Expect(code).To(Equal(http.StatusOK), body)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
		By("creating through the gateway again once it is back")
		Eventually(func(g Gomega) {
			id, err := createThroughGateway(ctx, sys.stack.GatewayURL, "Back", "Again")
			g.Expect(err).NotTo(HaveOccurred())
			c.names = append(c.names, id)
			c.viaGateway++
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())

		figures := outage.figures()
		figures["not final at the kill"] = strconv.Itoa(notFinal)
		sys.record(ctx, test, c, nil, 1, "SIGKILL of kube-apiserver for 5s, restarted on the same etcd", figures)
		Expect(notFinal).To(BeNumerically(">", 0), "nothing was in flight at the kill: the test proved nothing")
		outage.expectQuick()
	}, SpecTimeout(faultTestTimeout))
}

// countNotFinal counts the applications (other than those in before) not final yet.
func countNotFinal(ctx context.Context, stack *devenv.Stack, before []string) int {
	GinkgoHelper()
	var list loansv1alpha1.LoanApplicationList
	Expect(stack.Client.List(ctx, &list, client.InNamespace(appNamespace))).To(Succeed())
	n := 0
	for _, app := range list.Items {
		if !app.Status.Phase.IsFinal() && !slices.Contains(before, app.Name) {
			n++
		}
	}
	return n
}

// acceptedUnrecorded are the uids of the applications (other than those in before) the bank has
// accepted in its current lifetime, whose status does not show the submission yet.
func acceptedUnrecorded(ctx context.Context, stack *devenv.Stack, bank bankAdmin, before []string) []string {
	GinkgoHelper()
	accepted := bank.stats(ctx).Submissions
	var list loansv1alpha1.LoanApplicationList
	Expect(stack.Client.List(ctx, &list, client.InNamespace(appNamespace))).To(Succeed())
	var uids []string
	for _, app := range list.Items {
		_, ok := accepted[string(app.UID)]
		if ok && app.Status.SubmittedAt == nil && !slices.Contains(before, app.Name) {
			uids = append(uids, string(app.UID))
		}
	}
	return uids
}

// finalUIDs are the uids of the applications (other than those in before) final now, with
// their phase.
func finalUIDs(ctx context.Context, stack *devenv.Stack, before []string) map[string]loansv1alpha1.Phase {
	GinkgoHelper()
	var list loansv1alpha1.LoanApplicationList
	Expect(stack.Client.List(ctx, &list, client.InNamespace(appNamespace))).To(Succeed())
	out := map[string]loansv1alpha1.Phase{}
	for _, app := range list.Items {
		if app.Status.Phase.IsFinal() && !slices.Contains(before, app.Name) {
			out[string(app.UID)] = app.Status.Phase
		}
	}
	return out
}
