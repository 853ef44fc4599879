package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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

	It("sends one API server GET per unknown id at a time, whatever the number of clients asking", func(ctx context.Context) {
		calls := &apiServerCalls{getDelay: 300 * time.Millisecond}
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
		Expect(calls.gets.Load() - before).To(BeNumerically("<=", 6))
		Expect(notFound.Load()).To(BeNumerically(">=", 5))
		Expect(busy.Load()).To(BeNumerically(">=", 44))
	})
})
