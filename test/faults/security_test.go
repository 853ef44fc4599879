package faults_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// editorUser is a person with the kubebuilder editor role on LoanApplications: full write
// rights on the resource, read-only on its status.
const editorUser = "alice@lendo.se"

// asEditor are kubectl's impersonation flags for editorUser (the administrator may impersonate).
var asEditor = []string{"--as=" + editorUser, "--as-group=loan-officers", "--as-group=system:authenticated"}

func securitySpecs(sys *system) {
	It("refuses a user with edit rights who forges a decision, through the status subresource or the status label", func(ctx SpecContext) {
		bindClusterRole(ctx, sys.stack, "faults-alice-edits", "loan-operator-loanapplication-editor-role",
			rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: editorUser})
		kubectl := func(args ...string) (string, error) {
			_, stderr, err := sys.stack.Kubectl(ctx, "", append(args, asEditor...)...)
			return stderr, err
		}
		const name = "forged-by-alice"
		manifest := "apiVersion: loans.lendo.se/v1alpha1\nkind: LoanApplication\nmetadata:\n  name: " + name +
			"\n  namespace: default\n  labels:\n    status: pending\nspec:\n  firstName: Alice\n  lastName: Forger\n"
		// Keep the application pending (every bank call 503) while she tries.
		sys.bank.setFaults(ctx, banksim.Faults{FailRate: 1})
		Eventually(func(g Gomega) {
			_, stderr, err := sys.stack.Kubectl(ctx, manifest, append([]string{"apply", "-f", "-"}, asEditor...)...)
			g.Expect(err).NotTo(HaveOccurred(), stderr)
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

		By("setting the status subresource: refused by RBAC")
		stderr, err := kubectl("patch", "loanapplication", name, "-n", appNamespace, "--subresource=status", "--type=merge",
			"-p", `{"status":{"phase":"Approved"}}`)
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring(`cannot patch resource "loanapplications/status"`))
		AddReportEntry("the status subresource", stderr)

		By("setting the status label to approved: refused by the admission policy")
		stderr, err = kubectl("label", "loanapplication", name, "-n", appNamespace, "status=approved", "--overwrite")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring("only the loan-operator controller (" + devenv.ControllerUser + ") may set the status label"))
		AddReportEntry("the status label", stderr)
		Expect(phaseAndLabel(ctx, sys.stack, name)).To(Equal([2]string{"Pending", "pending"}))

		By("letting the bank decide, then changing the decision: refused, the label is final")
		sys.bank.setFaults(ctx, banksim.Faults{})
		var decided [2]string
		Eventually(func(g Gomega) {
			decided = phaseAndLabel(ctx, sys.stack, name)
			g.Expect(decided[0]).To(BeElementOf("Approved", "Rejected"))
			g.Expect(decided[1]).To(Equal(strings.ToLower(decided[0])), "the label follows the status")
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
		flipped := map[string]string{"approved": "rejected", "rejected": "approved"}[decided[1]]
		stderr, err = kubectl("label", "loanapplication", name, "-n", appNamespace, "status="+flipped, "--overwrite")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring("the status label of a LoanApplication is final once it is " + decided[1]))
		stderr, err = kubectl("patch", "loanapplication", name, "-n", appNamespace, "--subresource=status", "--type=merge",
			"-p", `{"status":{"phase":"`+strings.ToUpper(flipped[:1])+flipped[1:]+`"}}`)
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring(`cannot patch resource "loanapplications/status"`))
		Expect(phaseAndLabel(ctx, sys.stack, name)).To(Equal(decided))
	}, SpecTimeout(shortSpecTimeout))

	It("refuses missing and wrong gateway tokens with 401, and never writes a token to the log", func(ctx SpecContext) {
		token := randomToken()
		tokenFile := filepath.Join(sys.stack.DevDir(), "gateway-token")
		Expect(os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)).To(Succeed())
		addrs, err := stacktest.FreeAddrs(1)
		Expect(err).NotTo(HaveOccurred())
		addr := addrs[0]
		gw := startExtra(ctx, "loan-gateway", filepath.Join(sys.stack.DevDir(), "logs", "gateway-auth.log"),
			"http://"+addr+"/readyz", httpClient,
			"--addr="+addr, "--kubeconfig="+sys.stack.GatewayKubeconfig, "--namespace="+appNamespace,
			"--auth-token-file="+tokenFile, "--zap-log-level=debug")
		url := "http://" + addr + "/api/v1/applications?limit=1"
		wrong := randomToken()
		for _, attempt := range []struct {
			what, header string
			want         int
		}{
			{"no Authorization header", "", http.StatusUnauthorized},
			{"a wrong token of the same length", "Bearer " + wrong, http.StatusUnauthorized},
			{"the token with one more character", "Bearer " + token + "x", http.StatusUnauthorized},
			{"a prefix of the token", "Bearer " + token[:len(token)-1], http.StatusUnauthorized},
			{"the token under another scheme", "Basic " + token, http.StatusUnauthorized},
			{"the scheme alone", "Bearer", http.StatusUnauthorized},
			{"the token", "Bearer " + token, http.StatusOK},
			{"the token, scheme in lower case (RFC 9110)", "bearer " + token, http.StatusOK},
		} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			Expect(err).NotTo(HaveOccurred())
			if attempt.header != "" {
				req.Header.Set("Authorization", attempt.header)
			}
			code, body := send(req)
			Expect(code).To(Equal(attempt.want), "%s: %s", attempt.what, body)
			if code == http.StatusUnauthorized {
				Expect(body).To(ContainSubstring("bearer token"), attempt.what)
			}
		}
		code, body := get(ctx, "http://"+addr+"/healthz")
		Expect(code).To(Equal(http.StatusOK), "health needs no token: %s", body)

		gw.stop()
		logged, err := os.ReadFile(gw.logPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(logged)).To(ContainSubstring("serving"), "the log is empty: the check below would prove nothing")
		Expect(string(logged)).NotTo(ContainSubstring(token), "the token is in the gateway's log")
		Expect(string(logged)).NotTo(ContainSubstring(wrong), "a presented token is in the gateway's log")
	}, SpecTimeout(shortSpecTimeout))

	It("serves the controller's metrics only to an authenticated caller allowed to read them", func(ctx SpecContext) {
		const ns = "faults-metrics"
		callers := newMetricsCallers(ctx, sys.stack, ns)
		// A controller as the manifest deploys it (secure metrics: HTTPS behind authentication and
		// authorization), watching a namespace without applications so that it reconciles nothing.
		addrs, err := stacktest.FreeAddrs(2)
		Expect(err).NotTo(HaveOccurred())
		metricsAddr, probeAddr := addrs[0], addrs[1]
		startExtra(ctx, "loan-controller", filepath.Join(sys.stack.DevDir(), "logs", "controller-secure-metrics.log"),
			"http://"+probeAddr+"/readyz", httpClient,
			"--kubeconfig="+sys.stack.ControllerKubeconfig, "--bank-url="+sys.stack.BankURL, "--namespace="+ns,
			"--metrics-bind-address="+metricsAddr, "--health-probe-bind-address="+probeAddr)
		callers.expectOnlyReadersServed(ctx, metricsAddr, "# HELP controller_runtime_")

		By("the deployed manifest keeps the metrics of both programs secure")
		rendered, stderr, err := sys.stack.Kubectl(ctx, "", "kustomize", filepath.Join(programs.RepoDir, "config", "default"))
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(strings.Count(rendered, "--metrics-bind-address=:8443")).To(Equal(2), "the controller's and the gateway's")
		Expect(rendered).NotTo(ContainSubstring("--metrics-secure=false"))
	}, SpecTimeout(shortSpecTimeout))

	It("serves the gateway's metrics only to an authenticated caller allowed to read them, and no longer on its API port",
		func(ctx SpecContext) {
			callers := newMetricsCallers(ctx, sys.stack, "faults-gateway-metrics")
			// A gateway as the manifest deploys it: --metrics-bind-address, secure by default, as
			// its ServiceAccount (whose reviews config/rbac/gateway allows).
			addrs, err := stacktest.FreeAddrs(2)
			Expect(err).NotTo(HaveOccurred())
			addr, metricsAddr := addrs[0], addrs[1]
			startExtra(ctx, "loan-gateway", filepath.Join(sys.stack.DevDir(), "logs", "gateway-secure-metrics.log"),
				"http://"+addr+"/readyz", httpClient,
				"--addr="+addr, "--kubeconfig="+sys.stack.GatewayKubeconfig, "--namespace="+appNamespace,
				"--metrics-bind-address="+metricsAddr)
			code, body := get(ctx, "http://"+addr+"/metrics")
			Expect(code).To(Equal(http.StatusNotFound), "the API port, open to every client, serves no metrics: %s", body)
			// The readiness checks above are counted, under the metric's usual name.
			callers.expectOnlyReadersServed(ctx, metricsAddr, `loan_gateway_requests_total{code="200",method="GET",route="/readyz"}`)
		}, SpecTimeout(shortSpecTimeout))
}

// metricsCallers are the ServiceAccount tokens a metrics endpoint is tried with: a stranger
// without rights and a scraper bound to the metrics-reader ClusterRole of config/rbac.
type metricsCallers struct {
	stranger, scraper string
}

// newMetricsCallers creates the namespace, its two ServiceAccounts, the scraper's binding
// (removed when the test ends) and a token of each.
func newMetricsCallers(ctx context.Context, stack *devenv.Stack, ns string) metricsCallers {
	GinkgoHelper()
	Expect(stack.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	for _, sa := range []string{"scraper", "stranger"} {
		Expect(stack.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}})).To(Succeed())
	}
	bindClusterRole(ctx, stack, ns+"-scraper-reads-metrics", "loan-operator-metrics-reader",
		rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"})
	return metricsCallers{stranger: createToken(ctx, stack, ns, "stranger"), scraper: createToken(ctx, stack, ns, "scraper")}
}

// expectOnlyReadersServed checks the HTTPS metrics endpoint at addr: 401 without a token, no
// metrics for a forged one, 403 for the stranger, 200 with want in the body for the scraper.
func (c metricsCallers) expectOnlyReadersServed(ctx context.Context, addr, want string) {
	GinkgoHelper()
	// The metrics server comes up beside the probes, a moment after them.
	Eventually(func(g Gomega) {
		code, body := scrapeMetrics(ctx, addr, "")
		g.Expect(code).To(Equal(http.StatusUnauthorized), body)
	}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	// controller-runtime's filter answers a token the API server rejects with 500
	// "Authentication failed" (the authenticator reports it as an error, not as "no user"):
	// refused all the same, without a byte of metrics.
	code, body := scrapeMetrics(ctx, addr, "not-a-token")
	Expect(code).To(BeElementOf(http.StatusUnauthorized, http.StatusInternalServerError), body)
	Expect(body).NotTo(ContainSubstring("# HELP"))
	AddReportEntry("a forged token", fmt.Sprintf("%d %s", code, body))
	Eventually(func(g Gomega) {
		code, body := scrapeMetrics(ctx, addr, c.stranger)
		g.Expect(code).To(Equal(http.StatusForbidden), body)
		g.Expect(body).NotTo(ContainSubstring("# HELP"))
	}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	Eventually(func(g Gomega) {
		code, body := scrapeMetrics(ctx, addr, c.scraper)
		g.Expect(code).To(Equal(http.StatusOK), body)
		g.Expect(body).To(ContainSubstring(want))
	}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// insecureHTTPS reaches the programs' self-signed metrics endpoints: what the tests check is
// who may read, not the certificate.
var insecureHTTPS = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a self-signed certificate on loopback
}}

// scrapeMetrics GETs https://addr/metrics with the bearer token (none if empty): the status and
// up to 1 MiB of the body, or 0 and the error.
func scrapeMetrics(ctx context.Context, addr, token string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := insecureHTTPS.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err.Error()
	}
	return resp.StatusCode, string(body)
}

// bindClusterRole binds a ClusterRole to a subject, removed when the test ends, and waits until
// nothing is left to wait for (the binding exists; RBAC applies it within a moment, which the
// callers absorb with Eventually).
func bindClusterRole(ctx context.Context, stack *devenv.Stack, name, role string, subject rbacv1.Subject) {
	GinkgoHelper()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}
	Expect(stack.Client.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(stack.Client.Delete(ctx, binding)).To(Succeed()) }, NodeTimeout(setUpTimeout))
}

// createToken issues a token of a ServiceAccount (kubectl create token, the TokenRequest API).
func createToken(ctx context.Context, stack *devenv.Stack, namespace, sa string) string {
	GinkgoHelper()
	out, stderr, err := stack.Kubectl(ctx, "", "create", "token", sa, "-n", namespace, "--duration=10m")
	Expect(err).NotTo(HaveOccurred(), stderr)
	return strings.TrimSpace(out)
}

// phaseAndLabel is an application's phase and status label.
func phaseAndLabel(ctx context.Context, stack *devenv.Stack, name string) [2]string {
	GinkgoHelper()
	var app loansv1alpha1.LoanApplication
	Expect(stack.Client.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: name}, &app)).To(Succeed())
	phase := string(app.Status.Phase)
	if phase == "" {
		phase = "Pending"
	}
	return [2]string{phase, app.Labels[loansv1alpha1.LabelStatus]}
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
