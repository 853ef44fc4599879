package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

var _ = Describe("An Idempotency-Key under concurrency", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	It("gives 50 concurrent POSTs with one key and one body one application, and 50 answers naming it", func(ctx context.Context) {
		var mu sync.Mutex
		statuses := map[int]int{}
		named := map[string]int{}
		concurrently(50, func(int) {
			a := gw.postJSON(`{"first_name": "Fifty", "last_name": "Times"}`, idempotencyHeader, "burst-key")
			mu.Lock()
			defer mu.Unlock()
			statuses[a.status]++
			if a.status == http.StatusCreated || a.status == http.StatusOK {
				named[a.application().ID]++
				Expect(a.header.Get("Location")).To(Equal(applicationsPath + "/" + a.application().ID))
			}
		})
		Expect(statuses).To(Equal(map[int]int{http.StatusCreated: 1, http.StatusOK: 49}))
		stored := applicationsIn(ctx, gw.namespace)
		Expect(stored).To(HaveLen(1))
		Expect(named).To(Equal(map[string]int{stored[0].Name: 50}))
	})

	It("sends one create to the API server for duplicates that arrive while the first is in flight", func(ctx context.Context) {
		// The first create is held until all ten requests are in the gateway's handler.
		calls := &apiServerCalls{postGate: make(chan struct{})}
		held := startGatewayWithCalls(ctx, Options{}, calls)
		var arrived atomic.Int64
		counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived.Add(1)
			held.Handler().ServeHTTP(w, r)
		}))
		DeferCleanup(counting.Close)
		held.url = counting.URL

		var mu sync.Mutex
		statuses := map[int]int{}
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			concurrently(10, func(int) {
				a := held.postJSON(`{"first_name": "In", "last_name": "Flight"}`, idempotencyHeader, "flight-key")
				mu.Lock()
				defer mu.Unlock()
				statuses[a.status]++
			})
		}()
		Eventually(arrived.Load).Should(BeEquivalentTo(10))
		// Arrived in the handler, each joins the flight once it has read its body: a moment.
		time.Sleep(200 * time.Millisecond)
		close(calls.postGate)
		Eventually(done).Should(BeClosed())

		Expect(statuses).To(Equal(map[int]int{http.StatusCreated: 1, http.StatusOK: 9}))
		// The duplicates joined the first create here instead of each making one that the API
		// server refused as AlreadyExists.
		Expect(calls.posts.Load()).To(BeEquivalentTo(1))
	})

	It("lets exactly one of two bodies win under one key; the others are answered 422", func(ctx context.Context) {
		var mu sync.Mutex
		won := map[string]int{}
		var refused int
		concurrently(50, func(i int) {
			last := []string{"Even", "Odd"}[i%2]
			a := gw.postJSON(fmt.Sprintf(`{"first_name": "Two", "last_name": %q}`, last), idempotencyHeader, "contested-key")
			mu.Lock()
			defer mu.Unlock()
			switch a.status {
			case http.StatusCreated, http.StatusOK:
				Expect(a.application().LastName).To(Equal(last))
				won[last]++
			case http.StatusUnprocessableEntity:
				Expect(a.problem().Detail).To(ContainSubstring("Idempotency-Key was already used with a different request body"))
				refused++
			default:
				Fail(fmt.Sprintf("answer %d: %s", a.status, a.body))
			}
		})
		Expect(won).To(HaveLen(1), "one body wins")
		stored := applicationsIn(ctx, gw.namespace)
		Expect(stored).To(HaveLen(1))
		Expect(won).To(HaveKeyWithValue(stored[0].Spec.LastName, 25))
		Expect(refused).To(Equal(25))
	})

	It("does not hand back an object planted under the key's name with the body's hash but other names", func(ctx context.Context) {
		const key = "predictable-key"
		body := names{first: "Real", last: "Customer"}
		planted := &loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Namespace: gw.namespace, Name: nameForKey(key),
				Labels:      map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending},
				Annotations: map[string]string{RequestHashAnnotation: requestHash(body)}},
			Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Mallory", LastName: "Planted"},
		}
		Expect(env.Client.Create(ctx, planted)).To(Succeed())
		a := gw.postJSON(`{"first_name": "Real", "last_name": "Customer"}`, idempotencyHeader, key)
		Expect(a.status).To(Equal(http.StatusUnprocessableEntity))
		Expect(string(a.body)).NotTo(ContainSubstring("Mallory"))
	})
})

var _ = Describe("An Idempotency-Key when the API server's answer to the create times out", func() {
	var (
		gw    *testGateway
		calls *apiServerCalls
	)
	BeforeEach(func(ctx context.Context) {
		// The API server stores each create, but its answer is lost: the gateway must look.
		calls = &apiServerCalls{}
		calls.failPostAfter.Store(true)
		gw = startGatewayWithCalls(ctx, Options{}, calls)
	})

	It("answers 201 with the application the create stored, then replays it to a retry", func(ctx context.Context) {
		first := gw.postJSON(`{"first_name": "Time", "last_name": "Out"}`, idempotencyHeader, "timeout-key")
		Expect(first.status).To(Equal(http.StatusCreated), string(first.body))
		stored := applicationsIn(ctx, gw.namespace)
		Expect(stored).To(HaveLen(1))
		Expect(first.application().ID).To(Equal(stored[0].Name))

		calls.failPostAfter.Store(false) // the retry's answer comes
		retry := gw.postJSON(`{"first_name": "Time", "last_name": "Out"}`, idempotencyHeader, "timeout-key")
		Expect(retry.status).To(Equal(http.StatusOK), string(retry.body))
		Expect(retry.application().ID).To(Equal(stored[0].Name))

		other := gw.postJSON(`{"first_name": "Time", "last_name": "Other"}`, idempotencyHeader, "timeout-key")
		Expect(other.status).To(Equal(http.StatusUnprocessableEntity))
		Expect(applicationsIn(ctx, gw.namespace)).To(HaveLen(1))
	})

	It("answers 503, not 201, when an object planted under the key's name has other names", func(ctx context.Context) {
		const key = "planted-timeout-key"
		body := names{first: "Real", last: "One"}
		Expect(env.Client.Create(ctx, &loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Namespace: gw.namespace, Name: nameForKey(key),
				Annotations: map[string]string{RequestHashAnnotation: requestHash(body)}},
			Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Mallory", LastName: "Planted"},
		})).To(Succeed())
		a := gw.postJSON(`{"first_name": "Real", "last_name": "One"}`, idempotencyHeader, key)
		Expect(a.status).To(Or(Equal(http.StatusUnprocessableEntity), Equal(http.StatusServiceUnavailable)))
		Expect(string(a.body)).NotTo(ContainSubstring("Mallory"))
	})
})
