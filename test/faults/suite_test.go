// Package faults_test proves on real processes that no loan application is lost, submitted twice
// or decided without the bank, whatever a cluster throws at the system: a controller killed at
// random moments, a leader killed mid-handover, a flaky, slow, throttling or forgetful bank, an
// API server that restarts, hundreds of concurrent gateway clients, hostile requests and users
// who try to forge a decision. Every process is a built binary started by internal/devenv on
// loopback; every load loop is bounded in count and time.
//
// Each fault test ends with the same check (checkInvariant) and records its counts; the suite
// prints them in one summary at the end and writes them to bin/faults/last-run.json, the figures
// docs/reliability.md cites.
package faults_test

import (
	"os"
	"path/filepath"
	"testing"

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

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Faults Suite")
}

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
	summary.report(filepath.Join(testenv.RepoRoot(), "bin", "faults", "last-run.json"))
})
