package gateway

import (
	"crypto/tls"
	"fmt"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// MetricsServerOptions say where and how NewMetricsServer serves /metrics.
type MetricsServerOptions struct {
	// BindAddress is where the server listens (":8443" in a cluster); "0" turns it off.
	BindAddress string
	// Secure serves HTTPS and lets only a caller whose token may GET /metrics (the
	// metrics-reader ClusterRole) read: controller-runtime's filter asks the API server with a
	// TokenReview and a SubjectAccessReview, which the gateway's ServiceAccount must be allowed
	// to create. Without it: plain HTTP, open to anyone who reaches the address.
	Secure bool
}

// NewMetricsServer is controller-runtime's metrics server, the one the controller uses too. It
// serves controller-runtime's registry (metrics.Registry): give that registry to the gateway
// (Options.MetricsRegistry) so that its metrics are served, and set
// Options.MetricsServedElsewhere. cfg is the API server that checks the callers when Secure.
// The server is nil when opts.BindAddress is "0"; Start runs it until its context ends.
func NewMetricsServer(cfg *rest.Config, opts MetricsServerOptions) (metricsserver.Server, error) {
	serverOpts := metricsserver.Options{
		BindAddress:   opts.BindAddress,
		SecureServing: opts.Secure,
		// HTTP/1.1 only: HTTP/2 stream cancellation and rapid reset (CVE-2023-44487,
		// CVE-2023-39325) are avoided as kubebuilder's scaffold and our controller do.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if opts.Secure {
		serverOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: the metrics server's client of the API server: %w", err)
	}
	srv, err := metricsserver.NewServer(serverOpts, cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("gateway: the metrics server: %w", err)
	}
	return srv, nil
}
