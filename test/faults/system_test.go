package faults_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// system is the running system the tests with one controller share: starting a control plane
// costs seconds on two cores. Each test starts from a new lifetime of the bank, with no faults,
// every process running, and before holding the applications of the tests that ran earlier.
type system struct {
	stack  *devenv.Stack
	bank   bankAdmin
	before []string
	start  time.Time
}

// record checks the invariant for the applications of c and adds the test's line to the summary.
func (sys *system) record(ctx context.Context, test string, c *created, earlier []banksim.Stats, faults int, what string,
	figures map[string]string) invariantCounts {
	GinkgoHelper()
	counts := checkInvariant(ctx, sys.stack, sys.bank, sys.before, c.names, earlier, finalWithin)
	summary.add(testOutcome{
		Test: test, invariantCounts: counts, ViaGateway: c.viaGateway, ViaAPI: c.viaAPI,
		FaultsInjected: faults, Faults: what, Figures: figures, Seconds: time.Since(sys.start).Seconds(),
	})
	return counts
}

var _ = Describe("One running system", Ordered, ContinueOnFailure, func() {
	sys := &system{}

	BeforeAll(func(ctx SpecContext) {
		sys.stack = startStack(ctx, "system", nil)
		sys.bank = bankAdmin{url: sys.stack.BankURL}
	})

	BeforeEach(func(ctx SpecContext) {
		ensureRunning(ctx, sys.stack)
		sys.bank.setFaults(ctx, banksim.Faults{})
		sys.bank.reset(ctx)
		sys.before = namesIn(ctx, sys.stack)
		sys.start = time.Now()
		DeferCleanup(func(ctx SpecContext) {
			Expect(stacktest.UnexpectedExit(sys.stack)).To(Succeed())
			ensureRunning(ctx, sys.stack)
			sys.bank.setFaults(ctx, banksim.Faults{})
		})
	})

	Describe("under faults", func() { faultSpecs(sys) })
	Describe("under load", func() { loadSpecs(sys) })
	Describe("against hostile requests", func() { hostileSpecs(sys) })
	Describe("against forgers and intruders", func() { securitySpecs(sys) })
})
