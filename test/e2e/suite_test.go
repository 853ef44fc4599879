// Package e2e_test runs the whole system as `make dev` does (internal/devenv): etcd,
// kube-apiserver, config/dev, the bank simulator, the controller and the gateway, each a real
// process of a built binary talking over loopback. It sends applications in through kubectl and
// through the gateway's REST API and checks that kubectl, the gateway and the bank agree on every
// decision, that the programs run with only their ServiceAccounts' rights, that the applications
// survive a stop and a start, and that `make dev` itself (cmd/devenv) does what the README says.
package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/internal/testenv"
)

var (
	// repoDir is the repository; binDir holds loan-controller, loan-gateway and bank-sim.
	repoDir, binDir string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite")
}

var _ = BeforeSuite(func() {
	Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS must name the folder with kube-apiserver and etcd: run `make test-e2e`")
	repoDir = testenv.RepoRoot()
	// E2E_BIN_DIR points at binaries built elsewhere; by default those of make build.
	binDir = os.Getenv("E2E_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(repoDir, "bin")
	}
	if !allBuilt(binDir) {
		// Run directly (go test ./test/e2e/...) before any make build: build them aside.
		binDir = GinkgoT().TempDir()
		buildInto(binDir, map[string]string{
			"loan-controller": "./cmd/controller", "loan-gateway": "./cmd/gateway", "bank-sim": "./cmd/bank-sim",
		})
	}
})

func allBuilt(dir string) bool {
	for _, name := range []string{"loan-controller", "loan-gateway", "bank-sim"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildInto builds each package into dir under its binary name.
func buildInto(dir string, packages map[string]string) {
	GinkgoHelper()
	for name, pkg := range packages {
		By("building " + pkg)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = repoDir
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "go build %s:\n%s", pkg, out)
	}
}

// testOptions are the stack's options for a test: free loopback ports, a bank that decides in 1
// to 3 seconds and a controller that polls soon and often, so that a run takes seconds.
func testOptions(devDir string) devenv.Options {
	return devenv.Options{
		DevDir:       devDir,
		RepoDir:      repoDir,
		BinDir:       binDir,
		GatewayAddr:  "127.0.0.1:0",
		BankAddr:     "127.0.0.1:0",
		BankMinDelay: time.Second,
		BankMaxDelay: 3 * time.Second,
		ControllerArgs: []string{
			"--first-poll-delay=1s", "--poll-interval=500ms",
		},
		StartTimeout: 90 * time.Second,
		Log:          GinkgoWriter,
	}
}
