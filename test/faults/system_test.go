package faults_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/invariant"
	"github.com/lendo/loan-operator/test/stacktest"
)

// system is the running system the tests with one controller share: starting a control plane
// costs seconds on two cores. Each test starts from a new lifetime of the bank, with no faults,
// every process running, and before holding the applications of the tests that ran earlier.
type system struct {
	stack  *devenv.Stack
	bank   bankAdmin
	before []string
}

// record checks the invariant for the applications of c, records the result and the test's
// figures in the summary, pass or fail, and then asserts that the check passed.
func (sys *system) record(ctx context.Context, test string, c *created, earlier []banksim.Stats, faults int, what string,
	figures map[string]string) invariant.Result {
	GinkgoHelper()
	result := checkInvariant(ctx, sys.stack, sys.bank, sys.before, c.names, earlier, finalWithin)
	summary.checked(test, result, c, faults, what, figures)
	Expect(result.Problems).To(BeEmpty(), "the invariant does not hold")
	return result
}

// faultTest begins the summary's line of a fault test, for the spec running now.
func faultTest(test string) string {
	summary.begin(test, CurrentSpecReport().FullText())
	return test
}

var _ = Describe("One running system", Ordered, ContinueOnFailure, func() {
	sys := &system{}

	BeforeAll(func(ctx SpecContext) {
		sys.stack = startStack(ctx, "system", nil)
		sys.bank = bankAdmin{url: sys.stack.BankURL}
	}, NodeTimeout(stackStartTimeout))

	BeforeEach(func(ctx SpecContext) {
		ensureRunning(ctx, sys.stack)
		sys.bank.setFaults(ctx, banksim.Faults{})
		sys.bank.reset(ctx)
		sys.before = namesIn(ctx, sys.stack)
		DeferCleanup(func(ctx SpecContext) {
			Expect(stacktest.UnexpectedExit(sys.stack)).To(Succeed())
			ensureRunning(ctx, sys.stack)
			sys.bank.setFaults(ctx, banksim.Faults{})
		}, NodeTimeout(setUpTimeout))
	}, NodeTimeout(setUpTimeout))

	Describe("under faults", func() { faultSpecs(sys) })
	Describe("under load", func() { loadSpecs(sys) })
	Describe("against hostile requests", func() { hostileSpecs(sys) })
	Describe("against forgers and intruders", func() { securitySpecs(sys) })
})
