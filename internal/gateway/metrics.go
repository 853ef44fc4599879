package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// unmatchedRoute is the route label of requests that matched no route, so that a scan of random
// paths cannot grow the number of series.
const unmatchedRoute = "unmatched"

// metrics are the gateway's Prometheus metrics and the registry that holds them: one of the
// gateway's own by default (so that several gateways can run in one process, as in the tests),
// or the one the caller gives (the program gives controller-runtime's, which its metrics server
// serves).
type metrics struct {
	registry ctrlmetrics.RegistererGatherer
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// waitAnswerDelay is, for each wait a decision ended, the time from the cache seeing the
	// decision to the answer.
	waitAnswerDelay prometheus.Histogram
}

// newMetrics registers the gateway's metrics in registry (a new registry when nil). It fails
// when the registry already holds them: one registry serves one gateway.
func newMetrics(registry ctrlmetrics.RegistererGatherer) (*metrics, error) {
	if registry == nil {
		registry = prometheus.NewRegistry()
	}
	m := &metrics{
		registry: registry,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loan_gateway_requests_total",
			Help: "REST requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loan_gateway_request_duration_seconds",
			Help: "Time to answer a REST request, by route pattern and method.",
			// From a cache read (sub-millisecond) to a create waiting on a busy API server.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		waitAnswerDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loan_gateway_wait_answer_delay_seconds",
			Help: "Time from the gateway's cache seeing an application decided to the answer of each GET waiting for it.",
			// 100 ms is the bound the gateway is held to: a bucket ends there.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.waitAnswerDelay} {
		if err := registry.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: registering its metrics: %w", err)
		}
	}
	if err := registerRuntimeCollectors(registry); err != nil {
		return nil, fmt.Errorf("gateway: registering the Go and process metrics: %w", err)
	}
	return m, nil
}

// registerLoad exports what is in flight against each bound: the creates, the waiting GETs
// and the open event streams.
func (m *metrics) registerLoad(creates, waiters, streams *slots) error {
	for name, s := range map[string]*slots{
		"loan_gateway_creates_in_flight": creates,
		"loan_gateway_waiting_requests":  waiters,
		"loan_gateway_event_streams":     streams,
	} {
		gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name,
			Help: "Requests in flight of this kind; above its bound (--max-...) they are refused with Retry-After."},
			func() float64 { return float64(s.inUse.Load()) })
		if err := m.registry.Register(gauge); err != nil {
			return fmt.Errorf("gateway: registering its metrics: %w", err)
		}
	}
	return nil
}

// registerFeed exports the size of the event feed's ring, a heap cost bounded by the event
// window (DefaultEventWindow changes) whatever the number of applications cached.
func (m *metrics) registerFeed(f *feed) error {
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "loan_gateway_event_ring_bytes",
		Help: "Bytes of the encoded changes that event streams can resume from (the latest changes, a bounded number)."},
		func() float64 { return float64(f.heldBytes()) })
	if err := m.registry.Register(gauge); err != nil {
		return fmt.Errorf("gateway: registering its metrics: %w", err)
	}
	return nil
}

// registerRuntimeCollectors adds the Go and process collectors (go_goroutines, process_*...)
// unless the registry exports them already: controller-runtime's does, with every Go runtime
// metric, once its controller package is linked in (as in the program), and a second Go or
// process collector cannot join a registry that holds one.
func registerRuntimeCollectors(registry ctrlmetrics.RegistererGatherer) error {
	families, err := registry.Gather()
	if err != nil {
		return err
	}
	exported := make(map[string]bool, len(families))
	for _, family := range families {
		exported[family.GetName()] = true
	}
	if !exported["go_goroutines"] {
		if err := registry.Register(collectors.NewGoCollector()); err != nil {
			return err
		}
	}
	if !exported["process_start_time_seconds"] {
		return registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return nil
}

// statusClientClosedRequest is the code counted for a request whose client went away before it
// was answered (nginx's 499; nothing is sent).
const statusClientClosedRequest = 499

// middleware counts and times each request under its route pattern (never the raw path, which
// holds ids) and its method (only the methods HTTP defines; anything else is "other").
func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		// A route pattern comes from the fixed set of routes; a request that matched none has none.
		route := unmatchedRoute
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
			route = rctx.RoutePattern()
		}
		method := methodLabel(r.Method)
		code := ww.Status()
		switch {
		case code == 0 && r.Context().Err() != nil:
			// The client went away before an answer: not the gateway's error, so not a 5xx.
			code = statusClientClosedRequest
		case code == 0:
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
