// Package e2e_test runs the whole system as `make dev` does (internal/devenv): etcd,
// kube-apiserver, config/dev, the bank simulator, the controller and the gateway, each a real
// process of a built binary talking over loopback. It sends applications in through kubectl and
// through the gateway's REST API and checks that kubectl, the gateway and the bank agree on every
// decision, that the programs run with only their ServiceAccounts' rights, that the applications
// survive a stop and a start, and that `make dev` itself (cmd/devenv) does what the README says.
package e2e_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/test/stacktest"
)

// programs are the repository and the folder with loan-controller, loan-gateway and bank-sim.
var programs stacktest.Programs

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite")
}

var _ = BeforeSuite(func() {
	var err error
	// E2E_BIN_DIR points at binaries built elsewhere; by default those of make build, else
	// (go test ./test/e2e/... before any make build) they are built aside.
	programs, err = stacktest.Prepare(os.Getenv("E2E_BIN_DIR"), GinkgoT().TempDir(), GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
})
