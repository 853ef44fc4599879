package faults_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// leaseName is the controller's leader election Lease (cmd/controller's LeaderElectionID).
const leaseName = "loan-operator.loans.lendo.se"

// retryPeriod is client-go's (and controller-runtime's default) wait between two attempts of a
// standby to take the Lease; jitter stretches each wait by up to retryJitter. A standby takes
// the Lease only once the lease duration has passed since it last saw the Lease change, and the
// leader's last renewal was at most one stretched retry period before the kill, so a standby
// that respects the Lease cannot lead sooner than the lease duration minus that period after
// the kill. When it leads is a measured figure of the summary (takeover after the kill), not a
// bound: beyond the lease duration and two stretched retry periods, the time depends on how
// fast a loaded machine answers, and the test only stops waiting after one more lease duration.
const (
	retryPeriod = 2 * time.Second
	retryJitter = 1.2
)

// stretchedRetry is the longest wait between two attempts of a standby.
var stretchedRetry = time.Duration(retryJitter * float64(retryPeriod))

var _ = Describe("Two controller replicas with leader election", Ordered, func() {
	var (
		stack *devenv.Stack
		bank  bankAdmin
	)

	BeforeAll(func(ctx SpecContext) {
		stack = startStack(ctx, "replicas", func(o *devenv.Options) { o.ControllerReplicas = 2 })
		bank = bankAdmin{url: stack.BankURL}
	}, NodeTimeout(stackStartTimeout))

	It("hands over to the standby once the lease runs out when the leader is killed, submitting nothing twice", func(ctx SpecContext) {
		test := faultTest(testLeaderHandover)
		before := namesIn(ctx, stack)
		var leader int
		Eventually(func(g Gomega) {
			leader = leaderIndex(ctx, g, stack)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).Should(Succeed())
		standby := 1 - leader

		load := sendInBackground(ctx, stack, "handover", 50*time.Millisecond)
		time.Sleep(3 * time.Second)

		held := readLease(ctx, stack)
		notFinal := countNotFinal(ctx, stack, before)
		By("SIGKILL to the leader, " + stack.Controllers[leader].Name() + ", holding the Lease as " + *held.Spec.HolderIdentity)
		killedAt := time.Now()
		Expect(stack.Controllers[leader].Kill()).To(Succeed())
		leaseDuration := time.Duration(*held.Spec.LeaseDurationSeconds) * time.Second
		Eventually(func(g Gomega) {
			g.Expect(leaderIndex(ctx, g, stack)).To(Equal(standby))
		}).WithContext(ctx).WithTimeout(2*leaseDuration + 2*stretchedRetry).WithPolling(100 * time.Millisecond).
			Should(Succeed())
		takeover := time.Since(killedAt)
		taken := readLease(ctx, stack)
		Expect(*taken.Spec.HolderIdentity).NotTo(Equal(*held.Spec.HolderIdentity))
		By("restarting the killed replica: it is the standby now")
		Expect(stack.Controllers[leader].Start(ctx)).To(Succeed())

		c := await(ctx, load)
		result := checkInvariant(ctx, stack, bank, before, c.names, nil, finalWithin)
		summary.checked(test, result, c, 1, "SIGKILL of the leader replica, then restart", map[string]string{
			"takeover after the kill": takeover.Round(10 * time.Millisecond).String(),
			"lease duration":          leaseDuration.String(),
			"not final at the kill":   strconv.Itoa(notFinal),
		})
		Expect(result.Problems).To(BeEmpty(), "the invariant does not hold")
		Expect(notFinal).To(BeNumerically(">", 0), "nothing was in flight at the kill: the test proved nothing")
		Expect(takeover).To(BeNumerically(">=", leaseDuration-stretchedRetry),
			"the standby led %s after the kill, before the %s lease could have run out", takeover, leaseDuration)
		Expect(stacktest.UnexpectedExit(stack)).To(Succeed())
	}, SpecTimeout(faultTestTimeout))
})

// leaderIndex is the index of the one replica whose leader_election_master_status is 1; it
// fails g unless exactly one replica leads.
func leaderIndex(ctx context.Context, g Gomega, stack *devenv.Stack) int {
	leader := -1
	for i, p := range stack.Controllers {
		if !p.Running() {
			continue
		}
		if metricValue(ctx, g, stack.ControllerMetricsURLs[i]+"/metrics", `leader_election_master_status{name="`+leaseName+`"}`) == 1 {
			g.Expect(leader).To(Equal(-1), "two replicas lead at once")
			leader = i
		}
	}
	g.Expect(leader).NotTo(Equal(-1), "no replica leads")
	return leader
}

// metricValue reads one sample of a Prometheus text endpoint (0 when absent).
func metricValue(ctx context.Context, g Gomega, url, series string) float64 {
	code, body := get(ctx, url)
	g.Expect(code).To(Equal(http.StatusOK), "GET %s: %s", url, body)
	return parseSample(body, series)
}

// parseSample finds one sample in a Prometheus text exposition (0 when absent).
func parseSample(body, series string) float64 {
	scanner := bufio.NewScanner(strings.NewReader(body))
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return 0
			}
			return v
		}
	}
	return 0
}

func readLease(ctx context.Context, stack *devenv.Stack) *coordinationv1.Lease {
	GinkgoHelper()
	var lease coordinationv1.Lease
	Expect(stack.Client.Get(ctx, client.ObjectKey{Namespace: devenv.SystemNamespace, Name: leaseName}, &lease)).To(Succeed())
	Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
	Expect(lease.Spec.LeaseDurationSeconds).NotTo(BeNil())
	return &lease
}
