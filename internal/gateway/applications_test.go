package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

var _ = Describe("Creating an application", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	It("stores a pending LoanApplication and answers 201 with it and its Location", func(ctx context.Context) {
		a := gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`)
		Expect(a.status).To(Equal(http.StatusCreated), string(a.body))
		created := a.application()
		Expect(created.ID).To(HavePrefix(namePrefix))
		Expect(created.FirstName).To(Equal("Ada"))
		Expect(created.LastName).To(Equal("Lovelace"))
		Expect(created.Status).To(Equal(loansv1alpha1.LabelPending))
		Expect(created.CreatedAt).To(BeTemporally("~", time.Now(), time.Minute))
		Expect(created.Submitted).To(BeNil())
		Expect(created.Decided).To(BeNil())
		Expect(a.header.Get("Location")).To(Equal(applicationsPath + "/" + created.ID))

		stored := applicationsIn(ctx, gw.namespace)
		Expect(stored).To(HaveLen(1))
		Expect(stored[0].Name).To(Equal(created.ID))
		Expect(stored[0].Spec).To(Equal(loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"}))
		Expect(stored[0].Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, loansv1alpha1.LabelPending))
	})

	It("finds every application with a GET right after the POST that created it", func() {
		for i := range 50 {
			created := gw.postJSON(fmt.Sprintf(`{"first_name": "Reader%d", "last_name": "Writes"}`, i))
			Expect(created.status).To(Equal(http.StatusCreated))
			id := created.application().ID
			got := gw.get(created.header.Get("Location"))
			Expect(got.status).To(Equal(http.StatusOK), "GET %s right after its POST: %s", id, got.body)
			Expect(got.application()).To(Equal(created.application()))
		}
	})

	It("accepts a charset parameter on the JSON media type", func() {
		a := gw.call(http.MethodPost, applicationsPath, []byte(`{"first_name":"Émilie","last_name":"du Châtelet"}`),
			"Content-Type", "application/json; charset=utf-8")
		Expect(a.status).To(Equal(http.StatusCreated), string(a.body))
		Expect(a.application().FirstName).To(Equal("Émilie"))
	})

	Describe("with an Idempotency-Key", func() {
		It("answers the same application to a retry with the same body, and creates it once", func(ctx context.Context) {
			first := gw.postJSON(`{"first_name": "Grace", "last_name": "Hopper"}`, idempotencyHeader, "7d1c52b4-retry")
			Expect(first.status).To(Equal(http.StatusCreated), string(first.body))
			retry := gw.postJSON(`{"last_name": "Hopper", "first_name": "Grace"}`, idempotencyHeader, "7d1c52b4-retry")
			Expect(retry.status).To(Equal(http.StatusOK), string(retry.body))
			Expect(retry.application()).To(Equal(first.application()))
			Expect(retry.header.Get("Location")).To(Equal(first.header.Get("Location")))
			Expect(applicationsIn(ctx, gw.namespace)).To(HaveLen(1))
		})

		It("answers 422 to the same key with a different body, and creates nothing more", func(ctx context.Context) {
			Expect(gw.postJSON(`{"first_name": "Grace", "last_name": "Hopper"}`, idempotencyHeader, "k-409").status).
				To(Equal(http.StatusCreated))
			a := gw.postJSON(`{"first_name": "Grace", "last_name": "Brewster"}`, idempotencyHeader, "k-409")
			Expect(a.status).To(Equal(http.StatusUnprocessableEntity))
			Expect(a.problem().Detail).To(ContainSubstring("Idempotency-Key was already used with a different request body"))
			stored := applicationsIn(ctx, gw.namespace)
			Expect(stored).To(HaveLen(1))
			Expect(stored[0].Spec.LastName).To(Equal("Hopper"))
		})

		It("keeps the promise across gateways: another replica answers the same application", func(ctx context.Context) {
			first := gw.postJSON(`{"first_name": "Alan", "last_name": "Turing"}`, idempotencyHeader, "replica-key")
			Expect(first.status).To(Equal(http.StatusCreated))
			other := startGatewayAt(env.Config, Options{Namespace: gw.namespace})
			Eventually(other.Ready).Should(BeTrue())
			retry := other.postJSON(`{"first_name": "Alan", "last_name": "Turing"}`, idempotencyHeader, "replica-key")
			Expect(retry.status).To(Equal(http.StatusOK))
			Expect(retry.application().ID).To(Equal(first.application().ID))
			Expect(applicationsIn(ctx, gw.namespace)).To(HaveLen(1))
		})

		It("creates different applications for different keys", func(ctx context.Context) {
			Expect(gw.postJSON(`{"first_name": "A", "last_name": "B"}`, idempotencyHeader, "key-one").status).To(Equal(http.StatusCreated))
			Expect(gw.postJSON(`{"first_name": "A", "last_name": "B"}`, idempotencyHeader, "key-two").status).To(Equal(http.StatusCreated))
			Expect(applicationsIn(ctx, gw.namespace)).To(HaveLen(2))
		})
	})
})

var _ = Describe("Getting an application", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	It("answers what the controller recorded: status label, times and the bank's ids", func(ctx context.Context) {
		app := storeApplication(ctx, gw.namespace, "decided", loansv1alpha1.LabelApproved)
		submitted := metav1.NewTime(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC))
		decided := metav1.NewTime(time.Date(2026, 5, 4, 10, 0, 12, 0, time.UTC))
		app.Status = loansv1alpha1.LoanApplicationStatus{Phase: loansv1alpha1.PhaseApproved,
			BankApplicationID: "9f2c1c3e-3b0f-4a55-a2a4-6c1e4a0f3a21", BankJobID: "job-1",
			SubmittedAt: &submitted, DecidedAt: &decided}
		Expect(env.Client.Status().Update(ctx, app)).To(Succeed())

		Eventually(func(g Gomega) {
			a := gw.get(applicationsPath + "/decided")
			g.Expect(a.status).To(Equal(http.StatusOK))
			v := a.application()
			g.Expect(v.Status).To(Equal(loansv1alpha1.LabelApproved))
			g.Expect(v.BankApplicationID).To(Equal("9f2c1c3e-3b0f-4a55-a2a4-6c1e4a0f3a21"))
			g.Expect(v.BankJobID).To(Equal("job-1"))
			g.Expect(v.Submitted).To(HaveValue(BeTemporally("==", submitted.Time)))
			g.Expect(v.Decided).To(HaveValue(BeTemporally("==", decided.Time)))
		}).Should(Succeed())
	})

	It("answers 404 for an id nobody created", func() {
		a := gw.get(applicationsPath + "/app-nobody")
		Expect(a.status).To(Equal(http.StatusNotFound))
		Expect(a.problem().Detail).To(Equal("no application has this id"))
	})

	It("answers 404 for an application in another namespace", func(ctx context.Context) {
		other := startGateway(ctx, Options{})
		Expect(other.postJSON(`{"first_name": "Else", "last_name": "Where"}`).status).To(Equal(http.StatusCreated))
		id := applicationsIn(ctx, other.namespace)[0].Name
		Expect(gw.get(applicationsPath + "/" + id).status).To(Equal(http.StatusNotFound))
	})

	DescribeTable("answers 400 for an id that cannot be a resource name",
		func(id string) {
			a := gw.get(applicationsPath + "/" + id)
			Expect(a.status).To(Equal(http.StatusBadRequest))
			Expect(a.problem().Detail).To(ContainSubstring("cannot be an application id"))
		},
		Entry("upper case", "App-ABC"),
		Entry("underscore", "app_1"),
		Entry("starting with a dash", "-app"),
		Entry("escaped space", "app%20one"),
		Entry("longer than 253 characters", strings.Repeat("a", 254)),
	)
})

var _ = Describe("Listing applications", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	// seed stores applications labelled as the controller would, and waits for the cache.
	seed := func(ctx context.Context, byStatus map[string]int) {
		total := 0
		for status, n := range byStatus {
			for i := range n {
				storeApplication(ctx, gw.namespace, fmt.Sprintf("%s-%03d", status, i), status)
			}
			total += n
		}
		Eventually(func(g Gomega) {
			g.Expect(gw.get(applicationsPath + "?limit=1000").list().Items).To(HaveLen(total))
		}).Should(Succeed())
	}

	It("selects by the status label, in id order", func(ctx context.Context) {
		seed(ctx, map[string]int{loansv1alpha1.LabelApproved: 5, loansv1alpha1.LabelRejected: 3, loansv1alpha1.LabelPending: 2})
		a := gw.get(applicationsPath + "?status=approved")
		Expect(a.status).To(Equal(http.StatusOK))
		page := a.list()
		Expect(page.Continue).To(BeEmpty())
		Expect(ids(page.Items)).To(Equal([]string{"approved-000", "approved-001", "approved-002", "approved-003", "approved-004"}))
		for _, item := range page.Items {
			Expect(item.Status).To(Equal(loansv1alpha1.LabelApproved))
		}
		Expect(gw.get(applicationsPath + "?status=rejected").list().Items).To(HaveLen(3))
		Expect(gw.get(applicationsPath + "?status=failed").list().Items).To(BeEmpty())
		Expect(gw.get(applicationsPath).list().Items).To(HaveLen(10))
	})

	It("answers the same selection as kubectl's label selector", func(ctx context.Context) {
		seed(ctx, map[string]int{loansv1alpha1.LabelApproved: 4, loansv1alpha1.LabelRejected: 4})
		var direct loansv1alpha1.LoanApplicationList
		Expect(env.Client.List(ctx, &direct, client.InNamespace(gw.namespace),
			client.MatchingLabels{loansv1alpha1.LabelStatus: loansv1alpha1.LabelRejected})).To(Succeed())
		want := make([]string, 0, len(direct.Items))
		for _, item := range direct.Items {
			want = append(want, item.Name)
		}
		slices.Sort(want)
		Expect(ids(gw.get(applicationsPath + "?status=rejected").list().Items)).To(Equal(want))
	})

	It("pages with limit and continue through every application once, in a stable order", func(ctx context.Context) {
		seed(ctx, map[string]int{loansv1alpha1.LabelApproved: 7, loansv1alpha1.LabelPending: 4})
		var seen []string
		path := applicationsPath + "?status=approved&limit=3"
		for pages := 0; ; pages++ {
			Expect(pages).To(BeNumerically("<", 10), "paging does not end")
			page := gw.get(path).list()
			Expect(len(page.Items)).To(BeNumerically("<=", 3))
			seen = append(seen, ids(page.Items)...)
			if page.Continue == "" {
				break
			}
			path = applicationsPath + "?status=approved&limit=3&continue=" + page.Continue
		}
		Expect(seen).To(HaveLen(7))
		Expect(slices.IsSorted(seen)).To(BeTrue())
		Expect(slices.Compact(slices.Clone(seen))).To(HaveLen(7), "no application twice")
	})

	It("defaults to pages of 100", func(ctx context.Context) {
		seed(ctx, map[string]int{loansv1alpha1.LabelPending: 101})
		page := gw.get(applicationsPath).list()
		Expect(page.Items).To(HaveLen(defaultLimit))
		Expect(page.Continue).NotTo(BeEmpty())
		Expect(gw.get(applicationsPath + "?continue=" + page.Continue).list().Items).To(HaveLen(1))
	})

	DescribeTable("answers 400 to a bad query, naming what is wrong",
		func(query, wantDetail string) {
			a := gw.get(applicationsPath + "?" + query)
			Expect(a.status).To(Equal(http.StatusBadRequest))
			Expect(a.problem().Detail).To(ContainSubstring(wantDetail))
		},
		Entry("an unknown status", "status=done", `status "done" is not one of pending, approved, rejected, failed`),
		Entry("a status in the wrong case", "status=Approved", "is not one of"),
		Entry("a limit of 0", "limit=0", "must be a whole number from 1 to 1000"),
		Entry("a negative limit", "limit=-5", "must be a whole number from 1 to 1000"),
		Entry("a limit over 1000", "limit=1001", "must be a whole number from 1 to 1000"),
		Entry("a limit that is not a number", "limit=ten", "must be a whole number from 1 to 1000"),
		Entry("a continue token that is not base64", "continue=%21%21", "continue token is not one this API gave out"),
		Entry("a continue token that holds no name", "continue=Tk9UIEEgTkFNRQ", "continue token is not one this API gave out"),
	)
})

// storeApplication creates an application straight in the API server, labelled with status.
func storeApplication(ctx context.Context, namespace, name, status string) *loansv1alpha1.LoanApplication {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{loansv1alpha1.LabelStatus: status}},
		Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "First " + name, LastName: "Last"},
	}
	Expect(env.Client.Create(ctx, app)).To(Succeed())
	return app
}

func ids(items []applicationView) []string {
	out := make([]string, 0, len(items))
	for _, item := range items {
		out = append(out, item.ID)
	}
	return out
}
