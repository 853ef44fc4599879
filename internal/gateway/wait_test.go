package gateway

import (
	"context"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// maxWait is the test gateway's longest wait. An answer "at once" or "at the decision" is one
// that comes well before a wait of this length would end: a bound half as long holds on a loaded
// machine, and a gateway that waited out the wait still fails it.
const (
	maxWait   = 10 * time.Second
	atOnce    = maxWait / 2
	waitParam = "?wait=10s"
)

var _ = Describe("Waiting for a decision", func() {
	var (
		gw    *testGateway
		calls *apiServerCalls
	)
	BeforeEach(func(ctx context.Context) {
		calls = &apiServerCalls{}
		gw = startGatewayWithCalls(ctx, Options{MaxWait: maxWait, MaxWaiters: 20}, calls)
	})

	// created posts an application and waits until the gateway's cache holds it.
	created := func() string {
		GinkgoHelper()
		id := gw.postJSON(`{"first_name": "Wai", "last_name": "Ter"}`).application().ID
		Eventually(func() error { _, err := gw.store.fromCache(context.Background(), id); return err }).Should(Succeed())
		return id
	}

	// waitingFor starts a GET that waits for id's decision and answers on the channel once the
	// gateway holds it as a waiter.
	waitingFor := func(id string) <-chan answer {
		GinkgoHelper()
		answered := make(chan answer, 1)
		go func() {
			defer GinkgoRecover()
			answered <- gw.get(applicationsPath + "/" + id + waitParam)
		}()
		Eventually(gw.waiters.inUse.Load).Should(BeEquivalentTo(1))
		return answered
	}

	It("answers as soon as the application is decided, with the decision", func(ctx context.Context) {
		id := created()
		answered := waitingFor(id)
		Consistently(answered).WithTimeout(300 * time.Millisecond).ShouldNot(Receive())
		decidedAt := time.Now()
		decide(ctx, gw.namespace, id, loansv1alpha1.LabelApproved)
		var a answer
		Eventually(answered).WithTimeout(maxWait).Should(Receive(&a))
		Expect(time.Since(decidedAt)).To(BeNumerically("<", atOnce), "the wait is answered at the decision, not at its end")
		Expect(a.status).To(Equal(http.StatusOK))
		Expect(a.application().Status).To(Equal(loansv1alpha1.LabelApproved))
		Expect(a.header.Get("Preference-Applied")).To(Equal("wait=10"))
		Expect(gw.waiters.inUse.Load()).To(BeZero())

		// The delay from the cache seeing the decision to the answer is measured, once.
		var delay dto.Metric
		Expect(gw.metrics.waitAnswerDelay.Write(&delay)).To(Succeed())
		Expect(delay.GetHistogram().GetSampleCount()).To(BeEquivalentTo(1))
	})

	It("accepts Prefer: wait=N (RFC 7240) and answers the pending application when the wait ends", func() {
		id := created()
		start := time.Now()
		a := gw.get(applicationsPath+"/"+id, "Prefer", "respond-async, wait=1")
		// It waited the second asked for (less would be no wait), and not the maximum.
		Expect(time.Since(start)).To(And(BeNumerically(">=", time.Second), BeNumerically("<", atOnce)))
		Expect(a.status).To(Equal(http.StatusOK))
		Expect(a.application().Status).To(Equal(loansv1alpha1.LabelPending))
		Expect(a.header.Get("Preference-Applied")).To(Equal("wait=1"))
		Expect(a.header.Values("Vary")).To(ContainElement("Prefer"), "the answer depends on Prefer (RFC 7240)")
	})

	It("names a wait of part of a second as the whole second it falls within", func() {
		id := created()
		start := time.Now()
		a := gw.get(applicationsPath + "/" + id + "?wait=1500ms")
		Expect(time.Since(start)).To(And(BeNumerically(">=", 1500*time.Millisecond), BeNumerically("<", atOnce)))
		Expect(a.application().Status).To(Equal(loansv1alpha1.LabelPending))
		Expect(a.header.Get("Preference-Applied")).To(Equal("wait=2"))
	})

	It("cuts a wait above the maximum to it, and says so", func() {
		id := created()
		start := time.Now()
		a := gw.get(applicationsPath + "/" + id + "?wait=10m")
		Expect(time.Since(start)).To(And(BeNumerically(">=", maxWait), BeNumerically("<", maxWait+atOnce)))
		Expect(a.status).To(Equal(http.StatusOK))
		Expect(a.header.Get("Preference-Applied")).To(Equal("wait=10"))
	})

	It("answers a wait at once, with the application as it is, when the gateway drains for a shutdown", func() {
		id := created()
		answered := waitingFor(id)
		drainedAt := time.Now()
		gw.Drain()
		var a answer
		Eventually(answered).WithTimeout(maxWait).Should(Receive(&a))
		Expect(time.Since(drainedAt)).To(BeNumerically("<", atOnce), "a wait must not hold the shutdown")
		Expect(a.status).To(Equal(http.StatusOK))
		Expect(a.application().Status).To(Equal(loansv1alpha1.LabelPending))
	})

	It("answers a decided application at once", func(ctx context.Context) {
		id := created()
		decide(ctx, gw.namespace, id, loansv1alpha1.LabelRejected)
		Eventually(func() string { return gw.get(applicationsPath + "/" + id).application().Status }).Should(Equal(loansv1alpha1.LabelRejected))
		start := time.Now()
		Expect(gw.get(applicationsPath + "/" + id + waitParam).application().Status).To(Equal(loansv1alpha1.LabelRejected))
		Expect(time.Since(start)).To(BeNumerically("<", atOnce))
	})

	It("answers 404 at once for an unknown id", func() {
		start := time.Now()
		a := gw.get(applicationsPath + "/app-nobody" + waitParam)
		Expect(a.status).To(Equal(http.StatusNotFound))
		Expect(time.Since(start)).To(BeNumerically("<", atOnce))
	})

	It("answers what it has just created when the wait ends before its cache has seen it", func(ctx context.Context) {
		calls.holdWatches.Store(true)
		DeferCleanup(func() { calls.holdWatches.Store(false) })
		id := gw.postJSON(`{"first_name": "Wai", "last_name": "Ter"}`).application().ID
		a := gw.get(applicationsPath + "/" + id + "?wait=1s")
		Expect(a.status).To(Equal(http.StatusOK), "%s", a.body)
		Expect(a.application().ID).To(Equal(id))
		Expect(a.application().Status).To(Equal(loansv1alpha1.LabelPending))
		_, err := gw.store.fromCache(ctx, id)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the cache did not lag: the spec proved nothing (%v)", err)
	})

	It("answers 400 to a wait that is not a duration", func() {
		a := gw.get(applicationsPath + "/app-any?wait=soon")
		Expect(a.status).To(Equal(http.StatusBadRequest))
		Expect(a.problem().Detail).To(ContainSubstring(`wait "soon" must be a duration`))
	})

	It("makes no API server call per waiter", func(ctx context.Context) {
		id := created()
		gets, all := calls.gets.Load(), calls.all.Load()
		concurrently(20, func(int) {
			a := gw.get(applicationsPath + "/" + id + "?wait=1s")
			Expect(a.status).To(Equal(http.StatusOK))
		})
		Expect(calls.gets.Load() - gets).To(BeZero())
		// Of any kind: no list or watch per waiter either. The informer may renew its watch
		// meanwhile (every 5 to 10 minutes), a call or two that no waiter made.
		Expect(calls.all.Load()-all).To(BeNumerically("<=", 2), "API server calls while 20 clients waited")
	})

	It("answers 503 with Retry-After above --max-waiters, and a client that goes away frees its waiter at once", func(ctx context.Context) {
		id := created()
		waitCtx, cancel := context.WithCancel(ctx)
		for range 20 {
			go func() {
				req, _ := http.NewRequestWithContext(waitCtx, http.MethodGet, gw.url+applicationsPath+"/"+id+waitParam, nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_ = resp.Body.Close()
				}
			}()
		}
		Eventually(gw.waiters.inUse.Load).Should(BeEquivalentTo(20))
		a := gw.get(applicationsPath + "/" + id + waitParam)
		Expect(a.status).To(Equal(http.StatusServiceUnavailable))
		Expect(a.header.Get("Retry-After")).To(Equal("1"))
		Expect(a.header.Get("Preference-Applied")).To(BeEmpty(), "a refused wait was not applied")
		Expect(a.problem().Detail).To(ContainSubstring("too many requests are waiting"))

		// Freed well before their waits would have ended.
		cancel()
		Eventually(gw.waiters.inUse.Load).WithTimeout(atOnce).Should(BeZero())
		Eventually(func() int { gw.feed.mu.Lock(); defer gw.feed.mu.Unlock(); return len(gw.feed.waits) }).
			WithTimeout(atOnce).Should(BeZero())
	})
})

var _ = Describe("ETag and If-None-Match", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{MaxWait: 2 * time.Second}) })

	It("tags a GET with the resourceVersion and answers 304 while it is unchanged", func(ctx context.Context) {
		id := gw.postJSON(`{"first_name": "E", "last_name": "Tag"}`).application().ID
		var first answer
		Eventually(func(g Gomega) {
			first = gw.get(applicationsPath + "/" + id)
			g.Expect(first.status).To(Equal(http.StatusOK))
		}).Should(Succeed())
		stored := &loansv1alpha1.LoanApplication{}
		Expect(env.Client.Get(ctx, keyOf(gw.namespace, id), stored)).To(Succeed())
		Expect(first.header.Get("ETag")).To(Equal(`"` + stored.ResourceVersion + `"`))

		again := gw.get(applicationsPath+"/"+id, "If-None-Match", first.header.Get("ETag"))
		Expect(again.status).To(Equal(http.StatusNotModified))
		Expect(again.body).To(BeEmpty())
		Expect(gw.get(applicationsPath+"/"+id, "If-None-Match", `"1", W/`+first.header.Get("ETag")).status).To(Equal(http.StatusNotModified))
		Expect(gw.get(applicationsPath+"/"+id, "If-None-Match", `"0"`).status).To(Equal(http.StatusOK))

		decide(ctx, gw.namespace, id, loansv1alpha1.LabelApproved)
		Eventually(func(g Gomega) {
			a := gw.get(applicationsPath+"/"+id, "If-None-Match", first.header.Get("ETag"))
			g.Expect(a.status).To(Equal(http.StatusOK))
			g.Expect(a.header.Get("ETag")).NotTo(Equal(first.header.Get("ETag")))
		}).Should(Succeed())
	})

	It("answers 304 to a wait that ends with no change", func() {
		id := gw.postJSON(`{"first_name": "E", "last_name": "Tag"}`).application().ID
		var etag string
		Eventually(func() int {
			a := gw.get(applicationsPath + "/" + id)
			etag = a.header.Get("ETag")
			return a.status
		}).Should(Equal(http.StatusOK))
		a := gw.get(applicationsPath+"/"+id+"?wait=1s", "If-None-Match", etag)
		Expect(a.status).To(Equal(http.StatusNotModified))
		Expect(a.header.Get("ETag")).To(Equal(etag))
	})
})
