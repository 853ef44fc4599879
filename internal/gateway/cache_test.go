package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

var _ = Describe("The cache of applications", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	It("keeps only what the gateway serves, and answers as from the whole object", func(ctx context.Context) {
		body := `{"first_name": "Grace", "last_name": "Hopper"}`
		first := gw.postJSON(body, idempotencyHeader, "cache-key")
		Expect(first.status).To(Equal(http.StatusCreated), string(first.body))
		id := first.application().ID
		other := gw.postJSON(`{"first_name": "Alan", "last_name": "Turing"}`).application().ID
		stored := decideWithConditions(ctx, gw.namespace, id, loansv1alpha1.PhaseApproved)
		decideWithConditions(ctx, gw.namespace, other, loansv1alpha1.PhaseApproved)

		By("answering the view and ETag of the object the API server stores")
		want, err := json.Marshal(viewOf(stored))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			a := gw.get(applicationsPath + "/" + id)
			g.Expect(a.status).To(Equal(http.StatusOK))
			g.Expect(a.body).To(MatchJSON(want))
			g.Expect(a.header.Get("ETag")).To(Equal(`"` + stored.ResourceVersion + `"`))
		}).Should(Succeed())
		page := gw.get(applicationsPath + "?status=approved")
		Expect(page.status).To(Equal(http.StatusOK))
		var listed []byte
		for _, item := range page.list().Items {
			if item.ID == id {
				listed, err = json.Marshal(item)
				Expect(err).NotTo(HaveOccurred())
			}
		}
		Expect(listed).To(MatchJSON(want))

		By("keeping no condition, message or managed field, and one labels map for every approved application")
		cached, err := gw.store.cached(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(cached.Status.Conditions).To(BeEmpty())
		Expect(cached.Status.Message).To(BeEmpty())
		Expect(cached.ManagedFields).To(BeEmpty())
		Eventually(func(g Gomega) {
			otherCached, err := gw.store.cached(ctx, other)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(reflect.ValueOf(otherCached.Labels).UnsafePointer()).To(Equal(reflect.ValueOf(cached.Labels).UnsafePointer()))
		}).Should(Succeed())

		By("answering a retry under the same Idempotency-Key from the cached object")
		retry := gw.postJSON(body, idempotencyHeader, "cache-key")
		Expect(retry.status).To(Equal(http.StatusOK), string(retry.body))
		Expect(retry.body).To(MatchJSON(want))
		reused := gw.postJSON(`{"first_name": "Grace", "last_name": "Brewster"}`, idempotencyHeader, "cache-key")
		Expect(reused.status).To(Equal(http.StatusUnprocessableEntity))
	})

	It("forgets the applications it created once the cache holds them", func() {
		ids := make([]string, 20)
		for i := range ids {
			ids[i] = gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace ` + strconv.Itoa(i) + `"}`).application().ID
		}
		for _, id := range ids {
			// The watch brings an application to the cache within milliseconds; the copy would
			// otherwise stay for createdTTL (30 s) at least.
			Eventually(func() bool { _, ok := gw.store.justCreated(id); return ok }).WithTimeout(5*time.Second).Should(BeFalse(), id)
			Expect(gw.get(applicationsPath + "/" + id).status).To(Equal(http.StatusOK))
		}
	})

	It("exports the size of its event ring", func() {
		Expect(ringBytes(gw)).To(BeZero())
		Expect(gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`).status).To(Equal(http.StatusCreated))
		Eventually(func() float64 { return ringBytes(gw) }).Should(BeNumerically(">", 100), "the encoded created event")
	})
})

// ringBytes is the gateway's loan_gateway_event_ring_bytes.
func ringBytes(gw *testGateway) float64 {
	GinkgoHelper()
	text := string(gw.get("/metrics").body)
	m := regexp.MustCompile(`(?m)^loan_gateway_event_ring_bytes (\S+)$`).FindStringSubmatch(text)
	Expect(m).NotTo(BeNil(), "loan_gateway_event_ring_bytes is not exported")
	v, err := strconv.ParseFloat(m[1], 64)
	Expect(err).NotTo(HaveOccurred())
	return v
}

// decideWithConditions writes the status the controller writes for a decided application
// (internal/controller/conditions.go), conditions and messages included, and then its label; it
// answers the object as the API server then stores it.
func decideWithConditions(ctx context.Context, namespace, name string, phase loansv1alpha1.Phase) *loansv1alpha1.LoanApplication {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{}
	Expect(env.Client.Get(ctx, keyOf(namespace, name), app)).To(Succeed())
	submitted := metav1.NewTime(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC))
	decided := metav1.NewTime(submitted.Add(12 * time.Second))
	app.Status = loansv1alpha1.LoanApplicationStatus{
		Phase: phase, BankApplicationID: string(app.UID), BankJobID: "1b2c1c3e-3b0f-4a55-a2a4-6c1e4a0f3a21",
		SubmittedAt: &submitted, DecidedAt: &decided, ObservedGeneration: 1, Message: "the bank approved the loan",
		Conditions: []metav1.Condition{
			{Type: loansv1alpha1.ConditionSubmitted, Status: metav1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: submitted,
				Reason: loansv1alpha1.ReasonSubmitted, Message: "the bank accepted the application"},
			{Type: loansv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: decided,
				Reason: loansv1alpha1.ReasonApproved, Message: "the bank approved the loan"},
		},
	}
	Expect(env.Client.Status().Update(ctx, app)).To(Succeed())
	app.Labels[loansv1alpha1.LabelStatus] = phase.LabelValue()
	Expect(env.Client.Update(ctx, app)).To(Succeed())
	return app
}
