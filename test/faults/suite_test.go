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
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/internal/testenv"
)

var (
	// repoDir is the repository; binDir holds loan-controller, loan-gateway and bank-sim.
	repoDir, binDir string
	// summary collects what each fault test saw, for the report at the end.
	summary = &runSummary{}
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Faults Suite")
}

var _ = BeforeSuite(func() {
	Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS must name the folder with kube-apiserver and etcd: run `make test-e2e`")
	repoDir = testenv.RepoRoot()
	// FAULTS_BIN_DIR points at binaries built elsewhere; by default those of make build.
	binDir = os.Getenv("FAULTS_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(repoDir, "bin")
	}
	if !allBuilt(binDir) {
		// Run directly (go test ./test/faults/...) before any make build: build them aside.
		binDir = GinkgoT().TempDir()
		for name, pkg := range map[string]string{
			"loan-controller": "./cmd/controller", "loan-gateway": "./cmd/gateway", "bank-sim": "./cmd/bank-sim",
		} {
			By("building " + pkg)
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Dir = repoDir
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "go build %s:\n%s", pkg, out)
		}
	}
})

var _ = AfterSuite(func() {
	summary.report(filepath.Join(repoDir, "bin", "faults", "last-run.json"))
})

func allBuilt(dir string) bool {
	for _, name := range []string{"loan-controller", "loan-gateway", "bank-sim"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}
