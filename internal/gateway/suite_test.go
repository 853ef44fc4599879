package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/test/testenv"
)

// The suite runs gateways against a real kube-apiserver and etcd (envtest) and talks to them
// over loopback HTTP through a client whose transport checks every answer against the OpenAPI
// document.
var (
	env *testenv.Env
	// conformance holds the OpenAPI document every answer is validated against.
	conformance *conformanceChecker
)

func TestGateway(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(testenv.EventuallyTimeout)
	SetDefaultEventuallyPollingInterval(testenv.EventuallyPolling)
	RunSpecs(t, "Gateway Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
	conformance, err = newConformanceChecker()
	Expect(err).NotTo(HaveOccurred())
})

// testGateway is a running gateway, served on a loopback port.
type testGateway struct {
	*Gateway
	namespace string
	url       string
	http      *http.Client
}

// startGateway starts a gateway on a fresh namespace of the test API server, waits until it is
// ready and stops it when the spec ends.
func startGateway(ctx context.Context, opts Options) *testGateway {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gateway-"}}
	Expect(env.Client.Create(ctx, ns)).To(Succeed())
	opts.Namespace = ns.Name
	opts.Log = zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	gw := startGatewayAt(env.Config, opts)
	Eventually(gw.Ready).WithTimeout(30 * time.Second).Should(BeTrue())
	return gw
}

// startGatewayAt starts a gateway talking to the API server of cfg, without waiting for it.
func startGatewayAt(cfg *rest.Config, opts Options) *testGateway {
	GinkgoHelper()
	g, err := New(cfg, opts)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	srv := httptest.NewServer(g.Handler())
	DeferCleanup(func() {
		srv.Close()
		cancel()
		Eventually(done).WithTimeout(10 * time.Second).Should(Receive())
	})
	return &testGateway{Gateway: g, namespace: opts.Namespace, url: srv.URL,
		http: &http.Client{Transport: conformance.transport(http.DefaultTransport), Timeout: 30 * time.Second}}
}

// applicationsIn lists the LoanApplications stored in the namespace, straight from the API
// server.
func applicationsIn(ctx context.Context, namespace string) []loansv1alpha1.LoanApplication {
	GinkgoHelper()
	var list loansv1alpha1.LoanApplicationList
	Expect(env.Client.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	return list.Items
}
