package bank

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Operation label values, one per call of the client.
const (
	opSubmit = "submit"
	opGetJob = "get_job"
)

// Code label values for calls that got no HTTP status to report. With the HTTP status codes
// they keep the label's values bounded.
const (
	codeTimeout         = "timeout"          // the per-call timeout or the caller's deadline passed
	codeCanceled        = "canceled"         // the caller gave up, possibly while rate limited
	codeConnectionError = "connection_error" // refused, reset, closed before the whole answer
	codeInvalidResponse = "invalid_response" // a 2xx whose body is not the documented JSON
)

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loan_bank_requests_total",
		Help: "Requests to the bank partner by operation and outcome: the HTTP status code, " +
			"or timeout, canceled, connection_error or invalid_response.",
	}, []string{"operation", "code"})

	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "loan_bank_request_duration_seconds",
		Help: "Time from sending a request to the bank partner to having read its answer.",
		// The bank answers in milliseconds; the tail shows its slow days, up to the timeout.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation"})
)

func init() {
	metrics.Registry.MustRegister(requestsTotal, requestDuration)
}
