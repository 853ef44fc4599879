// Package faults_test proves on real processes that no loan application is lost, submitted twice
// or decided without the bank, whatever a cluster throws at the system: a controller killed at
// random moments, a leader killed mid-handover, a flaky, slow, throttling or forgetful bank, an
// API server that restarts, hundreds of concurrent gateway clients, hostile requests and users
// who try to forge a decision. Every process is a built binary started by internal/devenv on
// loopback; every load loop is bounded in count and time.
//
// Each fault test ends with the same check (checkInvariant, on test/invariant) and records its
// counts before asserting on them; every spec's outcome is recorded too, so that the summary the
// suite prints at the end and writes to bin/faults/last-run.json (the figures
// docs/reliability.md cites) shows a failed or missing test as such.
package faults_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/test/stacktest"
	"github.com/lendo/loan-operator/test/testenv"
)

var (
	// programs are the repository and the folder with loan-controller, loan-gateway and bank-sim.
	programs stacktest.Programs
	// summary collects what each fault test saw, for the report at the end.
	summary = &runSummary{}
)

// Every node of the suite has a timeout, so that a failure that would hang (a wait that never
// ends) fails its spec and lets the next ones run. A fault test sends its applications for about
// ten seconds and waits at most finalWithin for them to be final.
const (
	faultTestTimeout  = 6 * time.Minute
	shortSpecTimeout  = 3 * time.Minute
	stackStartTimeout = 3 * time.Minute
	setUpTimeout      = 2 * time.Minute
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(testenv.EventuallyTimeout)
	SetDefaultEventuallyPollingInterval(testenv.EventuallyPolling)
	RunSpecs(t, "Faults Suite")
}

// Each spec's outcome closes its line of the summary, whatever it was.
var _ = ReportAfterEach(func(report SpecReport) { summary.finish(report) })

var _ = BeforeSuite(func() {
	var err error
	// FAULTS_BIN_DIR points at binaries built elsewhere; by default those of make build, else
	// (go test ./test/faults/... before any make build) they are built aside.
	programs, err = stacktest.Prepare(os.Getenv("FAULTS_BIN_DIR"), GinkgoT().TempDir(), GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	// From testenv, not programs: a failed BeforeSuite leaves programs empty, and the report
	// belongs in the repository's bin/ even then.
	Expect(summary.report(os.Stdout, filepath.Join(testenv.RepoRoot(), "bin", "faults", "last-run.json"))).To(Succeed())
})
