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

// faultSpecs are the fault tests on the shared system: the invariant after each fault.
func faultSpecs(sys *system) {
	// sendInBackground creates the test's applications while the test injects its fault.
	sendInBackground := func(ctx context.Context, prefix string, every time.Duration) <-chan *created {
		done := make(chan *created, 1)
		go func() {
			defer GinkgoRecover()
			c, err := createApplications(ctx, sys.stack, prefix, applicationsPerTest, every)
			Expect(err).NotTo(HaveOccurred())
			done <- c
		}()
		return done
	}

	It("loses and duplicates nothing when the controller is killed with SIGKILL at random moments", func(ctx SpecContext) {
		rng := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 1))
		load := sendInBackground(ctx, "kill", 50*time.Millisecond)
		controller := sys.stack.Controllers[0]
		const kills = 5
		inFlight := make([]string, 0, kills)
		for range kills {
			pause := 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))
			time.Sleep(pause)
			inFlight = append(inFlight, strconv.Itoa(countNotFinal(ctx, sys.stack, sys.before)))
			By(fmt.Sprintf("SIGKILL to the controller after %s, restart", pause.Round(time.Millisecond)))
			Expect(controller.Kill()).To(Succeed())
			Expect(controller.Start(ctx)).To(Succeed())
		}
		c := <-load
		counts := sys.record(ctx, "controller SIGKILL x5", c, nil, kills, "SIGKILL of the controller, then restart",
			map[string]string{"not final at each kill": strings.Join(inFlight, ",")})
		Expect(counts.Applications).To(Equal(applicationsPerTest))
	})

	It("loses and duplicates nothing while the bank fails, stalls, throttles and drops, then recovers", func(ctx SpecContext) {
		load := sendInBackground(ctx, "flaky", 50*time.Millisecond)
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
		c := <-load
		st := sys.bank.stats(ctx)
		// Every kind of fault struck: the test did inject what it claims.
		Expect(st.FaultsInjected.Failures).To(BeNumerically(">", 0))
		Expect(st.FaultsInjected.Throttled).To(BeNumerically(">", 0))
		Expect(st.FaultsInjected.Drops).To(BeNumerically(">", 0))
		Expect(st.FaultsInjected.Delayed).To(BeNumerically(">", 0))
		sys.record(ctx, "bank 5xx, latency, 429, drops", c, nil, faultCount(st), describeFaults(st), nil)
	})

	It("submits pending applications again after the bank restarts and forgets, and every one ends final", func(ctx SpecContext) {
		load := sendInBackground(ctx, "amnesia", 30*time.Millisecond)
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

		c := <-load
		counts := sys.record(ctx, "bank restart (amnesia)", c, []banksim.Stats{firstLife}, 1, "SIGKILL of the bank, restarted empty",
			map[string]string{
				"accepted before the restart": strconv.Itoa(len(firstLife.Submissions)),
				"final before the restart":    strconv.Itoa(len(finalAtRestart)),
			})
		Expect(counts.Resubmitted).To(BeNumerically(">", 0), "no application was pending at the restart: the test proved nothing")
		secondLife := sys.bank.stats(ctx)
		for uid := range secondLife.Submissions {
			Expect(finalAtRestart).NotTo(HaveKey(uid), "an application final before the restart was submitted again")
		}
		summary.figure("bank restart (amnesia)", "resubmitted", strconv.Itoa(counts.Resubmitted))
	})

	It("recovers by itself when kube-apiserver restarts; meanwhile the gateway answers 503 at once", func(ctx SpecContext) {
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
		sys.record(ctx, "kube-apiserver restart", c, nil, 1, "SIGKILL of kube-apiserver for 5s, restarted on the same etcd", figures)
		Expect(notFinal).To(BeNumerically(">", 0), "nothing was in flight at the kill: the test proved nothing")
		outage.expectQuick()
	})
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
