package gateway

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var _ = Describe("Health, metrics and documentation", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	It("is alive and ready once the cache has synced", func() {
		Expect(gw.get("/healthz").status).To(Equal(http.StatusOK))
		Expect(gw.get("/readyz").status).To(Equal(http.StatusOK))
	})

	It("counts requests by route pattern, method and code, never by raw path or id", func() {
		created := gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`)
		Expect(created.status).To(Equal(http.StatusCreated))
		id := created.application().ID
		Expect(gw.get(applicationsPath + "/" + id).status).To(Equal(http.StatusOK))
		Expect(gw.get("/random/" + id).status).To(Equal(http.StatusNotFound))

		text := string(gw.get("/metrics").body)
		Expect(text).To(ContainSubstring(`loan_gateway_requests_total{code="201",method="POST",route="/api/v1/applications"} 1`))
		Expect(text).To(ContainSubstring(`loan_gateway_requests_total{code="200",method="GET",route="/api/v1/applications/{id}"} 1`))
		Expect(text).To(ContainSubstring(`loan_gateway_requests_total{code="404",method="GET",route="unmatched"} 1`))
		Expect(text).To(ContainSubstring(`loan_gateway_request_duration_seconds_count{method="POST",route="/api/v1/applications"} 1`))
		Expect(text).NotTo(ContainSubstring(id))
		Expect(text).NotTo(ContainSubstring("/random"))
	})

	It("serves the OpenAPI document as JSON and YAML, and Swagger UI from embedded assets", func() {
		doc := gw.get("/openapi.json")
		Expect(doc.status).To(Equal(http.StatusOK))
		Expect(doc.body).To(MatchJSON(openAPIJSON))
		Expect(gw.get("/openapi.yaml").body).To(Equal(openAPIYAML))

		Expect(gw.get("/docs").status).To(Equal(http.StatusOK), "redirected to /docs/")
		page := gw.get("/docs/")
		Expect(page.status).To(Equal(http.StatusOK))
		Expect(string(page.body)).To(ContainSubstring("/openapi.json"))
		Expect(string(page.body)).NotTo(MatchRegexp(`(src|href)=["']?(https?:)?//`), "no asset comes from the internet")
		Expect(string(page.body)).To(ContainSubstring(`src="/docs/swagger-ui-bundle.js"`))
		for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} {
			a := gw.get(asset)
			Expect(a.status).To(Equal(http.StatusOK), asset)
			Expect(len(a.body)).To(BeNumerically(">", 1000), asset)
		}
	})

	It("documents exactly the operations it routes", func() {
		var routed []string
		Expect(chi.Walk(gw.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			if !strings.HasPrefix(route, "/docs") {
				routed = append(routed, method+" "+route)
			}
			return nil
		})).To(Succeed())
		var documented []string
		for path, item := range conformance.doc.Paths.Map() {
			for method := range item.Operations() {
				documented = append(documented, method+" "+path)
			}
		}
		slices.Sort(routed)
		slices.Sort(documented)
		Expect(routed).To(Equal(documented))
	})
})

var _ = Describe("Bearer-token authentication", func() {
	const token = "s3cret-t0ken"
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{AuthToken: token}) })

	DescribeTable("refuses /api/ requests without the right token with 401, and creates nothing",
		func(ctx context.Context, authorization string) {
			headers := []string{}
			if authorization != "" {
				headers = append(headers, "Authorization", authorization)
			}
			for _, a := range []answer{
				gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`, headers...),
				gw.get(applicationsPath, headers...),
				gw.get(applicationsPath+"/app-1", headers...),
				gw.get("/api/v2/unknown", headers...),
			} {
				Expect(a.status).To(Equal(http.StatusUnauthorized))
				Expect(a.header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
				Expect(a.problem().Detail).NotTo(ContainSubstring(token))
			}
			Expect(applicationsIn(ctx, gw.namespace)).To(BeEmpty())
		},
		Entry("no Authorization header", ""),
		Entry("a wrong token", "Bearer not-the-token"),
		Entry("the token with one character more", "Bearer "+token+"x"),
		Entry("the token under another scheme", "Basic "+token),
		Entry("an empty bearer token", "Bearer "),
	)

	It("serves /api/ requests with the token", func() {
		a := gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`, "Authorization", "Bearer "+token)
		Expect(a.status).To(Equal(http.StatusCreated))
		Expect(gw.get(a.header.Get("Location"), "Authorization", "bearer "+token).status).To(Equal(http.StatusOK))
	})

	It("keeps health, metrics and documentation open", func() {
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs/"} {
			Expect(gw.get(path).status).To(Equal(http.StatusOK), path)
		}
	})
})

var _ = Describe("An API server that cannot be reached", func() {
	// answersFast asserts a 503 problem with Retry-After, within two seconds (the request
	// timeout of the first gateway is the default 5s: a refused connection must not wait for it).
	answersFast := func(request func() answer) {
		GinkgoHelper()
		start := time.Now()
		a := request()
		Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
		Expect(a.status).To(Equal(http.StatusServiceUnavailable), string(a.body))
		Expect(a.header.Get("Retry-After")).To(Equal("1"))
		a.problem()
	}

	It("answers 503 at once when nothing listens at its address, and is not ready", func() {
		gw := startGatewayAt(&rest.Config{Host: "https://" + closedLoopbackAddress()}, Options{Namespace: "default"})
		answersFast(func() answer { return gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`) })
		answersFast(func() answer { return gw.get(applicationsPath + "/app-1") })
		answersFast(func() answer { return gw.get(applicationsPath) })
		answersFast(func() answer { return gw.get("/readyz") })
		Expect(gw.get("/healthz").status).To(Equal(http.StatusOK))
	})

	It("answers 503 after the request timeout when the API server accepts but never answers", func() {
		gw := startGatewayAt(&rest.Config{Host: "http://" + silentLoopbackAddress()},
			Options{Namespace: "default", RequestTimeout: 300 * time.Millisecond})
		answersFast(func() answer { return gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`) })
		answersFast(func() answer { return gw.get(applicationsPath + "/app-1") })
	})
})

var _ = Describe("A create whose answer is lost", func() {
	It("answers 201 with the application, not 503, when the create went through but its answer timed out", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lost-answer-"}}
		Expect(env.Client.Create(ctx, ns)).To(Succeed())
		cfg := rest.CopyConfig(env.Config)
		cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper { return lostCreateAnswers{next: next} }
		gw := startGatewayAt(cfg, Options{Namespace: ns.Name, Log: zap.New(zap.WriteTo(GinkgoWriter))})
		Eventually(gw.Ready).WithTimeout(30 * time.Second).Should(BeTrue())

		a := gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`)
		Expect(a.status).To(Equal(http.StatusCreated), string(a.body))
		stored := applicationsIn(ctx, ns.Name)
		Expect(stored).To(HaveLen(1))
		Expect(a.header.Get("Location")).To(Equal(applicationsPath + "/" + stored[0].Name))
	})
})

// lostCreateAnswers passes every request to the API server, and for a create throws the
// answer away and reports a timeout: what a client sees when a loaded API server commits the
// write but answers after the client's deadline.
type lostCreateAnswers struct{ next http.RoundTripper }

func (l lostCreateAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost {
		return resp, err
	}
	_ = resp.Body.Close()
	return nil, context.DeadlineExceeded
}

// closedLoopbackAddress is a loopback address where nothing listens.
func closedLoopbackAddress() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return addr
}

// silentLoopbackAddress is a loopback address that accepts connections and never answers.
func silentLoopbackAddress() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	DeferCleanup(func() {
		_ = l.Close()
		for c := range accepted {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
