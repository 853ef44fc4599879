package controller

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lendo/loan-operator/test/testenv"
)

// The controller suite runs the reconciler against a real kube-apiserver and etcd, and the
// bank simulator over real HTTP on loopback. Two kinds of specs:
//   - the reconciler driven by hand, one Reconcile call at a time, on a fake clock shared with
//     the simulator: every wait and decision is exact and nothing sleeps (clock_test.go);
//   - whole managers, as cmd/controller runs them, with short bank delays: the end-to-end paths,
//     restarts, a failing status write, a flaky and a restarted bank (manager_test.go).

var env *testenv.Env

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(testenv.EventuallyTimeout)
	SetDefaultEventuallyPollingInterval(testenv.EventuallyPolling)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
