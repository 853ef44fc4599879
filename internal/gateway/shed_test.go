package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

var _ = Describe("Shedding load", func() {
	It("answers 429 with Retry-After above --max-inflight-creates, and stores every 201", func(ctx context.Context) {
		calls := &apiServerCalls{postDelay: 500 * time.Millisecond}
		gw := startGatewayWithCalls(ctx, Options{MaxInflightCreates: 3}, calls)
		var created, refused atomic.Int64
		var ids = make(chan string, 12)
		concurrently(12, func(i int) {
			a := gw.postJSON(fmt.Sprintf(`{"first_name": "Burst%d", "last_name": "Y"}`, i))
			switch a.status {
			case http.StatusCreated:
				created.Add(1)
				ids <- a.application().ID
			case http.StatusTooManyRequests:
				refused.Add(1)
				Expect(a.header.Get("Retry-After")).To(Equal("1"))
				Expect(a.problem().Detail).To(ContainSubstring("too many applications are being created at once"))
			default:
				Fail(fmt.Sprintf("answer %d: %s", a.status, a.body))
			}
		})
		Expect(created.Load()).To(BeEquivalentTo(3))
		Expect(refused.Load()).To(BeEquivalentTo(9))
		Expect(calls.posts.Load()).To(BeEquivalentTo(3), "a refused create never reaches the API server")
		close(ids)
		stored := map[string]bool{}
		for _, app := range applicationsIn(ctx, gw.namespace) {
			stored[app.Name] = true
		}
		for id := range ids {
			Expect(stored).To(HaveKey(id))
		}
		Expect(gw.creates.inUse.Load()).To(BeZero())
	})

	It("answers a GET of what it has just created while its cache lags, without the API server", func(ctx context.Context) {
		calls := &apiServerCalls{}
		gw := startGatewayWithCalls(ctx, Options{FallbackGetsPerSecond: 1}, calls)
		calls.holdWatches.Store(true)
		DeferCleanup(func() { calls.holdWatches.Store(false) })
		id := gw.postJSON(`{"first_name": "Read", "last_name": "Back"}`).application().ID
		before := calls.gets.Load()
		for range 5 { // more than the fallback's rate lets through
			a := gw.get(applicationsPath + "/" + id)
			Expect(a.status).To(Equal(http.StatusOK))
			Expect(a.application().ID).To(Equal(id))
		}
		Expect(calls.gets.Load()-before).To(BeZero(), "answered from what the gateway created, not by the API server")
		_, err := gw.store.fromCache(ctx, id)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the cache did not lag: the spec proved nothing (%v)", err)
	})

	It("sends one API server GET per unknown id at a time, whatever the number of clients asking", func(ctx context.Context) {
		// The API server holds each GET long enough for all 30 clients to arrive while the first
		// is in flight, even on a loaded machine.
		calls := &apiServerCalls{getDelay: 3 * time.Second}
		gw := startGatewayWithCalls(ctx, Options{}, calls)
		before := calls.gets.Load()
		concurrently(30, func(int) {
			Expect(gw.get(applicationsPath + "/app-same-unknown-id").status).To(Equal(http.StatusNotFound))
		})
		Expect(calls.gets.Load() - before).To(BeEquivalentTo(1))
	})

	It("bounds the rate of API server GETs for ids the cache does not hold: 503 with Retry-After above it", func(ctx context.Context) {
		calls := &apiServerCalls{}
		gw := startGatewayWithCalls(ctx, Options{FallbackGetsPerSecond: 5}, calls)
		before := calls.gets.Load()
		var notFound, busy atomic.Int64
		start := time.Now()
		concurrently(50, func(i int) {
			a := gw.get(fmt.Sprintf("%s/app-random-%d", applicationsPath, i))
			switch a.status {
			case http.StatusNotFound:
				notFound.Add(1)
			case http.StatusServiceUnavailable:
				busy.Add(1)
				Expect(a.header.Get("Retry-After")).To(Equal("1"))
			default:
				Fail(fmt.Sprintf("answer %d: %s", a.status, a.body))
			}
		})
		// The limiter lets a burst of 5 through, then 5 a second: the bound follows from how long
		// the 50 requests took, so a slow machine does not fail the spec, and a missing limiter
		// (50 GETs) still does.
		allowed := 5 + int64(math.Ceil(5*time.Since(start).Seconds()))
		Expect(allowed).To(BeNumerically("<", 50), "the requests took too long to say anything about the rate")
		Expect(calls.gets.Load() - before).To(BeNumerically("<=", allowed))
		Expect(notFound.Load()).To(BeNumerically(">=", 5))
		Expect(busy.Load()).To(BeNumerically(">=", 50-allowed))
	})
})
