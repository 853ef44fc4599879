package manifests_test

import (
	"context"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// API Priority and Fairness as config/dev applied it in BeforeSuite: the API server tells in
// two response headers which FlowSchema and which priority level served a request, so each
// identity's requests show where they land. Without config/flowcontrol both programs land in
// the cluster's "service-accounts" FlowSchema, sharing the workload-low level.
var _ = Describe("API Priority and Fairness", func() {
	It("serves the controller and the gateway each in its own level, the gateway's with fewer seats", func(ctx context.Context) {
		controllerSchema, controllerLevel := flowControlUIDs(ctx, "loan-operator-controller")
		gatewaySchema, gatewayLevel := flowControlUIDs(ctx, "loan-operator-gateway")
		Expect(controllerLevel).NotTo(Equal(gatewayLevel))

		controller := newIdentity(controllerUser, serviceAccountGroups...)
		gateway := newIdentity(gatewayUser, serviceAccountGroups...)
		// Another ServiceAccount of the same namespace: the FlowSchemas name two identities, not
		// the namespace.
		other := newIdentity("system:serviceaccount:"+systemNamespace+":someone-else", serviceAccountGroups...)
		otherSchema, _ := flowControlUIDs(ctx, "service-accounts")
		// The API server's flow-control configuration follows the objects through its own
		// informer: config/dev was applied moments ago.
		Eventually(func(g Gomega) {
			g.Expect(servedBy(ctx, g, controller, "/apis/loans.lendo.se/v1alpha1/loanapplications")).
				To(Equal([2]types.UID{controllerSchema, controllerLevel}), "the controller's list")
			g.Expect(servedBy(ctx, g, controller, "/apis")).
				To(Equal([2]types.UID{controllerSchema, controllerLevel}), "the controller's discovery")
			g.Expect(servedBy(ctx, g, gateway, "/apis/loans.lendo.se/v1alpha1/namespaces/"+gatewayNamespace+"/loanapplications")).
				To(Equal([2]types.UID{gatewaySchema, gatewayLevel}), "the gateway's list")
			g.Expect(servedBy(ctx, g, other, "/apis")[0]).
				To(Equal(otherSchema), "another ServiceAccount")
		}).Should(Succeed())

		var controllerPL, gatewayPL flowcontrolv1.PriorityLevelConfiguration
		Expect(env.Client.Get(ctx, client.ObjectKey{Name: "loan-operator-controller"}, &controllerPL)).To(Succeed())
		Expect(env.Client.Get(ctx, client.ObjectKey{Name: "loan-operator-gateway"}, &gatewayPL)).To(Succeed())
		Expect(*gatewayPL.Spec.Limited.NominalConcurrencyShares).To(BeNumerically("<", *controllerPL.Spec.Limited.NominalConcurrencyShares))
		Expect(gatewayPL.Spec.Limited.BorrowingLimitPercent).To(HaveValue(BeZero()), "the gateway never borrows seats")
		// The seats the API server gave each level, from its own metrics.
		Eventually(func(g Gomega) {
			seats := nominalSeats(ctx, g)
			g.Expect(seats).To(HaveKeyWithValue("loan-operator-gateway", BeNumerically(">", 0)))
			g.Expect(seats).To(HaveKeyWithValue("loan-operator-controller", BeNumerically(">", 5*seats["loan-operator-gateway"])))
		}).Should(Succeed())
	})
})

// nominalSeats reads apiserver_flowcontrol_nominal_limit_seats by priority level from the API
// server's /metrics, as an administrator.
func nominalSeats(ctx context.Context, g Gomega) map[string]float64 {
	httpClient, err := rest.HTTPClientFor(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(env.Config.Host, "/")+"/metrics", nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := httpClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	seats := map[string]float64{}
	for _, m := range families["apiserver_flowcontrol_nominal_limit_seats"].GetMetric() {
		for _, label := range m.GetLabel() {
			if label.GetName() == "priority_level" {
				seats[label.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return seats
}

// flowControlUIDs answers the UIDs of the FlowSchema of that name and of the priority level it
// names.
func flowControlUIDs(ctx context.Context, name string) (schema, level types.UID) {
	GinkgoHelper()
	var fs flowcontrolv1.FlowSchema
	Expect(env.Client.Get(ctx, client.ObjectKey{Name: name}, &fs)).To(Succeed())
	var pl flowcontrolv1.PriorityLevelConfiguration
	Expect(env.Client.Get(ctx, client.ObjectKey{Name: fs.Spec.PriorityLevelConfiguration.Name}, &pl)).To(Succeed())
	return fs.UID, pl.UID
}

// servedBy makes a GET of path as id and answers the UIDs of the FlowSchema and the priority
// level that served it, from the response headers.
func servedBy(ctx context.Context, g Gomega, id *identity, path string) [2]types.UID {
	httpClient, err := rest.HTTPClientFor(id.config)
	g.Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(id.config.Host, "/")+path+"?limit=1", nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := httpClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.Body.Close()).To(Succeed())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "GET %s as %s", path, id.name)
	return [2]types.UID{
		types.UID(resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID)),
		types.UID(resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)),
	}
}
