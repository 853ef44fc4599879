package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// httpClient bounds every request of the tests.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// createThroughGateway POSTs an application and returns its id (the resource's name).
func createThroughGateway(ctx context.Context, gatewayURL, first, last string) string {
	GinkgoHelper()
	code, app, body, err := stacktest.PostApplication(ctx, httpClient, gatewayURL, first, last)
	Expect(err).NotTo(HaveOccurred())
	Expect(code).To(Equal(http.StatusCreated), "POST /api/v1/applications: %s", body)
	Expect(app.FirstName).To(Equal(first))
	Expect(app.Status).To(Equal(loansv1alpha1.LabelPending))
	return app.ID
}

// gatewayList reads every page of GET /api/v1/applications?status=..., a few items a page so
// that the continue token is exercised, and returns the ids and the statuses shown.
func gatewayList(ctx context.Context, g Gomega, gatewayURL, status string) (ids []string, shown []string) {
	cont := ""
	for page := 0; page < 100; page++ {
		q := url.Values{"status": {status}, "limit": {"7"}}
		if cont != "" {
			q.Set("continue", cont)
		}
		var list struct {
			Items    []stacktest.Application `json:"items"`
			Continue string                  `json:"continue"`
		}
		getJSON(ctx, g, gatewayURL+"/api/v1/applications?"+q.Encode(), &list)
		g.Expect(len(list.Items)).To(BeNumerically("<=", 7), "the page ignores limit")
		for _, app := range list.Items {
			ids = append(ids, app.ID)
			shown = append(shown, app.Status)
		}
		if cont = list.Continue; cont == "" {
			return ids, shown
		}
	}
	g.Expect("100 pages").To(BeEmpty(), "the gateway's list never ended")
	return nil, nil
}

func getJSON(ctx context.Context, g Gomega, u string, into any) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := httpClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "GET %s: %s", u, data)
	g.Expect(json.Unmarshal(data, into)).To(Succeed(), "GET %s: %s", u, data)
}

// kubectlNames lists the names kubectl shows for `get loanapplications -l status=<status>`.
func kubectlNames(ctx context.Context, g Gomega, stack *devenv.Stack, status string) []string {
	out, errOut, err := stack.Kubectl(ctx, "", "get", "loanapplications", "-n", "default", "-l", "status="+status, "-o", "name")
	g.Expect(err).NotTo(HaveOccurred(), "kubectl get: %s", errOut)
	var names []string
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, strings.TrimPrefix(line, "loanapplication.loans.lendo.se/"))
		}
	}
	return names
}

// applyThroughKubectl creates n applications with `kubectl apply -f -` (every other one without
// the status label, as people write them) and returns their names.
func applyThroughKubectl(ctx context.Context, stack *devenv.Stack, prefix string, n int) []string {
	GinkgoHelper()
	var yaml strings.Builder
	names := make([]string, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s-%02d", prefix, i)
		names = append(names, name)
		labels := ""
		if i%2 == 0 {
			labels = "\n  labels:\n    status: pending"
		}
		fmt.Fprintf(&yaml, "---\napiVersion: loans.lendo.se/v1alpha1\nkind: LoanApplication\nmetadata:\n  name: %s%s\n"+
			"spec:\n  firstName: Grace\n  lastName: Hopper %s\n", name, labels, letters(i))
	}
	out, errOut, err := stack.Kubectl(ctx, yaml.String(), "apply", "-n", "default", "-f", "-")
	Expect(err).NotTo(HaveOccurred(), "kubectl apply: %s\n%s", out, errOut)
	return names
}

// letters spells i in letters, for names that differ without digits.
func letters(i int) string {
	return string(rune('A'+i/26)) + string(rune('a'+i%26))
}

// finalApps waits until the namespace holds exactly want applications, each decided with the
// label matching its phase, and returns them by name.
func finalApps(ctx context.Context, stack *devenv.Stack, want int, within time.Duration) map[string]loansv1alpha1.LoanApplication {
	GinkgoHelper()
	byName := map[string]loansv1alpha1.LoanApplication{}
	Eventually(func(g Gomega) {
		var list loansv1alpha1.LoanApplicationList
		g.Expect(stack.Client.List(ctx, &list, client.InNamespace("default"))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(want))
		clear(byName)
		for _, app := range list.Items {
			g.Expect(app.Status.Phase).To(BeElementOf(loansv1alpha1.PhaseApproved, loansv1alpha1.PhaseRejected),
				"%s is not decided (or failed)", app.Name)
			g.Expect(app.Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, app.Status.Phase.LabelValue()), app.Name)
			byName[app.Name] = app
		}
	}).WithContext(ctx).WithTimeout(within).WithPolling(250 * time.Millisecond).Should(Succeed())
	return byName
}

// namesWithPhase are the sorted names of the applications in that phase.
func namesWithPhase(apps map[string]loansv1alpha1.LoanApplication, phase loansv1alpha1.Phase) []string {
	var names []string
	for name, app := range apps {
		if app.Status.Phase == phase {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
