package v1alpha1_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/test/testenv"
)

// The API suite runs against a real kube-apiserver and etcd with the generated CRD installed,
// so that what it checks is what the API server itself enforces: the schema, the CEL rules, the
// status subresource and the printer columns.

var env *testenv.Env

func TestAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(testenv.EventuallyTimeout)
	SetDefaultEventuallyPollingInterval(testenv.EventuallyPolling)
	RunSpecs(t, "LoanApplication API Suite")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
