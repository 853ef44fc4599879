package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// controllerRuntimeLike is a registry holding what controller-runtime's holds once its
// controller package is linked in, as in the program: every Go runtime metric and the process's.
func controllerRuntimeLike() ctrlmetrics.RegistererGatherer {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll)))
	return r
}

func TestNewMetricsRegistries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		registry func() ctrlmetrics.RegistererGatherer
	}{
		{"no registry given: one of the gateway's own, with the Go and process metrics added",
			func() ctrlmetrics.RegistererGatherer { return nil }},
		{"an empty registry: the Go and process metrics are added",
			func() ctrlmetrics.RegistererGatherer { return prometheus.NewRegistry() }},
		{"a registry like controller-runtime's: its Go and process metrics are kept, not added twice",
			controllerRuntimeLike},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newMetrics(tc.registry())
			if err != nil {
				t.Fatalf("newMetrics: %v", err)
			}
			m.requests.WithLabelValues("/healthz", http.MethodGet, "200").Inc()
			m.duration.WithLabelValues("/healthz", http.MethodGet).Observe(0.001)
			rec := httptest.NewRecorder()
			m.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			body := rec.Body.String()
			for _, want := range []string{`loan_gateway_requests_total{code="200",method="GET",route="/healthz"} 1`,
				`loan_gateway_request_duration_seconds_count{method="GET",route="/healthz"} 1`, "go_goroutines ", "process_start_time_seconds "} {
				if !strings.Contains(body, want) {
					t.Errorf("the scrape lacks %q", want)
				}
			}
		})
	}
}

func TestNewMetricsRefusesARegistryHoldingAnotherGateway(t *testing.T) {
	registry := prometheus.NewRegistry()
	if _, err := newMetrics(registry); err != nil {
		t.Fatalf("the first gateway: %v", err)
	}
	if _, err := newMetrics(registry); err == nil {
		t.Fatal("a second gateway's metrics joined the same registry")
	}
}

func TestARequestWhoseClientWentAwayIsNotCountedAsAServerError(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("newMetrics: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client has gone: the handler answers nothing
	handler := m.middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/applications/app-x", nil).WithContext(ctx))
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/applications/app-y", nil))

	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`loan_gateway_requests_total{code="499",method="GET",route="unmatched"} 1`,
		`loan_gateway_requests_total{code="200",method="GET",route="unmatched"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %q:\n%s", want, body)
		}
	}
}
