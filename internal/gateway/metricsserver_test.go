package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var _ = Describe("Where /metrics is served", func() {
	DescribeTable("on the API's address only when it is not served elsewhere",
		func(ctx context.Context, elsewhere bool, want int) {
			gw := startGateway(ctx, Options{MetricsServedElsewhere: elsewhere})
			Expect(gw.get("/healthz").status).To(Equal(http.StatusOK))
			a := gw.get("/metrics")
			Expect(a.status).To(Equal(want), string(a.body))
			if want == http.StatusNotFound {
				Expect(a.problem().Detail).To(ContainSubstring("no such route"), "the router's usual 404 problem")
			} else {
				Expect(string(a.body)).To(ContainSubstring(`loan_gateway_requests_total{code="200",method="GET",route="/healthz"} 1`))
			}
		},
		Entry("by default (the local run, the tests, the benchmarks): 200", false, http.StatusOK),
		Entry("with MetricsServedElsewhere (--metrics-bind-address): 404", true, http.StatusNotFound),
	)

	Describe("by controller-runtime's metrics server", func() {
		var gw *testGateway
		BeforeEach(func(ctx context.Context) {
			// The program registers the gateway's metrics in controller-runtime's registry,
			// which the metrics server serves. A registry holds one gateway's metrics, so each
			// spec puts a fresh one in its place.
			saved := ctrlmetrics.Registry
			ctrlmetrics.Registry = prometheus.NewRegistry()
			DeferCleanup(func() { ctrlmetrics.Registry = saved })
			gw = startGateway(ctx, Options{MetricsRegistry: ctrlmetrics.Registry, MetricsServedElsewhere: true})
			Expect(gw.get("/healthz").status).To(Equal(http.StatusOK))
		})

		It("serves the gateway's metrics, under their usual names, over plain HTTP when not secure", func() {
			addr := startMetricsServer(MetricsServerOptions{BindAddress: "127.0.0.1:0"})
			code, body := scrapeMetrics(http.DefaultClient, "http://"+addr+"/metrics", "")
			Expect(code).To(Equal(http.StatusOK), body)
			Expect(body).To(ContainSubstring(`loan_gateway_requests_total{code="200",method="GET",route="/healthz"} 1`))
			Expect(body).To(ContainSubstring(`loan_gateway_request_duration_seconds_count{method="GET",route="/healthz"} 1`))
			Expect(body).To(ContainSubstring("go_goroutines "))
			Expect(gw.get("/metrics").status).To(Equal(http.StatusNotFound))
		})

		It("serves them over HTTPS only to a caller whose token may GET /metrics when secure", func(ctx context.Context) {
			addr := startMetricsServer(MetricsServerOptions{BindAddress: "127.0.0.1:0", Secure: true})
			url := "https://" + addr + "/metrics"
			// The certificate is self-signed; what is checked here is who may read.
			insecure := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a self-signed certificate on loopback
			}}
			code, body := scrapeMetrics(insecure, url, "")
			Expect(code).To(Equal(http.StatusUnauthorized), body)

			stranger := serviceAccountToken(ctx, gw.namespace, "stranger", false)
			code, body = scrapeMetrics(insecure, url, stranger)
			Expect(code).To(Equal(http.StatusForbidden), body)
			Expect(body).NotTo(ContainSubstring("loan_gateway_"))

			reader := serviceAccountToken(ctx, gw.namespace, "reader", true)
			Eventually(func(g Gomega) {
				code, body := scrapeMetrics(insecure, url, reader)
				g.Expect(code).To(Equal(http.StatusOK), body)
				g.Expect(body).To(ContainSubstring(`loan_gateway_requests_total{code="200",method="GET",route="/healthz"} 1`))
			}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		})
	})
})

// startMetricsServer runs NewMetricsServer against the test API server until the spec ends, and
// returns the address it listens on.
func startMetricsServer(opts MetricsServerOptions) string {
	GinkgoHelper()
	srv, err := NewMetricsServer(env.Config, opts)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).WithTimeout(10 * time.Second).Should(Receive(Not(HaveOccurred())))
	})
	// controller-runtime's server reports the port it picked for ":0" (for tests, as here).
	bound, ok := srv.(interface{ GetBindAddr() string })
	Expect(ok).To(BeTrue(), "the metrics server no longer reports its address: %T", srv)
	var addr string
	Eventually(func(g Gomega) {
		g.Expect(done).NotTo(Receive(), "the metrics server stopped")
		addr = bound.GetBindAddr()
		g.Expect(addr).NotTo(BeEmpty())
	}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
	return addr
}

// scrapeMetrics GETs url with the bearer token (none if empty): the status and the body.
func scrapeMetrics(httpClient *http.Client, url, token string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(body)
}

// serviceAccountToken creates a ServiceAccount in namespace and returns a token of it (the
// TokenRequest API); mayReadMetrics binds it to a ClusterRole allowing GET /metrics, as
// config/rbac/metrics_reader_role.yaml does.
func serviceAccountToken(ctx context.Context, namespace, name string, mayReadMetrics bool) string {
	GinkgoHelper()
	clientset, err := kubernetes.NewForConfig(env.Config)
	Expect(err).NotTo(HaveOccurred())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	Expect(env.Client.Create(ctx, sa)).To(Succeed())
	if mayReadMetrics {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-reader-"},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		Expect(env.Client.Create(ctx, role)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, role)).To(Succeed()) })
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-reader-"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}}}
		Expect(env.Client.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, binding)).To(Succeed()) })
	}
	expiry := int64(600)
	token, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return token.Status.Token
}
