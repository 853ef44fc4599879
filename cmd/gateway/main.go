/*
Copyright 2026 The loan-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command loan-gateway serves the REST API through which loan applications enter from outside
// Kubernetes: it creates LoanApplications and answers reads from its informer cache.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/lendo/loan-operator/internal/gateway"
)

var setupLog = ctrl.Log.WithName("setup")

// shutdownTimeout is how long requests in flight may take to finish after SIGTERM; it stays
// under the Deployment's terminationGracePeriodSeconds (10s).
const shutdownTimeout = 8 * time.Second

// flags are the program's settings; every one has a default that works on a laptop.
type flags struct {
	addr           string
	namespace      string
	authTokenFile  string
	requestTimeout time.Duration
	kubeAPIQPS     float64
	kubeAPIBurst   int
	metricsAddr    string
	secureMetrics  bool
	pprofAddr      string
	// Load shedding: above these bounds the gateway answers 429 or 503 with Retry-After.
	maxInflightCreates    int
	fallbackGetsPerSecond int
	maxWaiters            int
	maxWait               time.Duration
	maxStreams            int
}

// parseFlags reads the program's flags from args into fs (flag.CommandLine in main, where
// controller-runtime has registered --kubeconfig), and checks them.
func parseFlags(fs *flag.FlagSet, args []string) (flags, zap.Options, error) {
	var f flags
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080",
		"Address of the REST API, /healthz, /readyz, /openapi.json, /docs and, without --metrics-bind-address, /metrics (:8080 in a cluster).")
	fs.StringVar(&f.namespace, "namespace", "default", "Namespace where the gateway creates LoanApplications and which it reads.")
	fs.StringVar(&f.authTokenFile, "auth-token-file", "",
		"File holding a bearer token that every /api/ request must carry, read again when it changes (default: no authentication).")
	fs.DurationVar(&f.requestTimeout, "request-timeout", gateway.DefaultRequestTimeout,
		"Longest wait for the Kubernetes API server in one request; past it the client gets a 503.")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 5000, "Most requests per second to the Kubernetes API (-1: unlimited).")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 10000, "Burst of requests to the Kubernetes API above --kube-api-qps.")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "",
		"Serve /metrics at this address instead of --addr (:8443 in a cluster), with controller-runtime's metrics server; "+
			"0 turns /metrics off. Empty: /metrics is on --addr, open to every caller.")
	fs.BoolVar(&f.secureMetrics, "metrics-secure", true,
		"With --metrics-bind-address: serve /metrics over HTTPS to callers allowed to GET /metrics (authentication and "+
			"authorization by the Kubernetes API). Use --metrics-secure=false for plain HTTP.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "0",
		"Serve Go's /debug/pprof/ (CPU and heap profiles) at this address, plain HTTP without authentication: bind it to "+
			"loopback (127.0.0.1:6060). 0 turns it off.")
	fs.IntVar(&f.maxInflightCreates, "max-inflight-creates", gateway.DefaultMaxInflightCreates,
		"Most creates in flight to the Kubernetes API at once; above it POST answers 429 with Retry-After, never a queue.")
	fs.IntVar(&f.fallbackGetsPerSecond, "max-uncached-gets-per-second", gateway.DefaultFallbackGetsPerSecond,
		"Most GETs per second of ids the cache does not hold that go on to the Kubernetes API (one per id at a time); above it, 503.")
	fs.IntVar(&f.maxWaiters, "max-waiters", gateway.DefaultMaxWaiters,
		"Most GETs waiting for a decision (?wait=, Prefer: wait) at once; above it they answer 503 with Retry-After.")
	fs.DurationVar(&f.maxWait, "max-wait", gateway.DefaultMaxWait, "Longest wait of one GET for a decision; a longer wait is cut to it.")
	fs.IntVar(&f.maxStreams, "max-streams", gateway.DefaultMaxStreams,
		"Most open event streams (GET /api/v1/applications/events); above it they answer 503 with Retry-After.")
	opts := zap.Options{Development: false}
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return f, opts, err
	}
	if f.pprofAddr == f.addr || (f.pprofAddr == f.metricsAddr && f.pprofAddr != "" && f.pprofAddr != "0") {
		return f, opts, errors.New("--pprof-bind-address must differ from --addr and --metrics-bind-address")
	}
	if f.metricsAddr != "" && f.metricsAddr == f.addr {
		return f, opts, errors.New("--metrics-bind-address must differ from --addr: the metrics get a server of their own")
	}
	return f, opts, nil
}

func main() {
	f, zapOpts, err := parseFlags(flag.CommandLine, os.Args[1:])
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(1)
	}
	if err := run(f); err != nil {
		setupLog.Error(err, "gateway failed")
		os.Exit(1)
	}
}

// gatewayOptions are the gateway's options as the flags set them.
func gatewayOptions(f flags) gateway.Options {
	return gateway.Options{
		Namespace: f.namespace,
		// Read again every second: a rotated token needs no restart.
		AuthTokenFile:         f.authTokenFile,
		RequestTimeout:        f.requestTimeout,
		MaxInflightCreates:    f.maxInflightCreates,
		FallbackGetsPerSecond: f.fallbackGetsPerSecond,
		MaxWaiters:            f.maxWaiters,
		MaxWait:               f.maxWait,
		MaxStreams:            f.maxStreams,
		Log:                   ctrl.Log.WithName("gateway"),
		// One gateway per process: its metrics go to controller-runtime's registry, the one
		// controller-runtime's metrics server serves.
		MetricsRegistry:        ctrlmetrics.Registry,
		MetricsServedElsewhere: f.metricsAddr != "",
	}
}

func run(f flags) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	gw, err := gateway.New(restConfig(cfg, f), gatewayOptions(f))
	if err != nil {
		return err
	}

	ctx := ctrl.SetupSignalHandler()
	cacheCtx, stopCache := context.WithCancel(context.Background())
	defer stopCache()
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- gw.Start(cacheCtx) }()
	metricsDone, err := startMetricsServer(ctx, cfg, f)
	if err != nil {
		return err
	}

	pprofDone := startPprofServer(ctx, f.pprofAddr)

	srv := gateway.NewHTTPServer(f.addr, gw.Handler())
	srv.RegisterOnShutdown(gw.Drain)
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.ListenAndServe() }()
	setupLog.Info("serving", "addr", f.addr, "namespace", f.namespace, "auth", f.authTokenFile != "")

	select {
	case err := <-serveDone:
		return fmt.Errorf("serving on %s: %w", f.addr, err)
	case err := <-cacheDone:
		return fmt.Errorf("informer cache stopped: %w", err)
	case err := <-metricsDone:
		return fmt.Errorf("serving metrics on %s: %w", f.metricsAddr, err)
	case err := <-pprofDone:
		return fmt.Errorf("serving pprof on %s: %w", f.pprofAddr, err)
	case <-ctx.Done():
	}
	// Graceful: stop accepting, let the requests in flight finish, then stop the cache they read.
	setupLog.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// startMetricsServer starts the metrics server of --metrics-bind-address until ctx ends. The
// channel receives the error that stops it early; it is nil (never ready) when there is no such
// server.
func startMetricsServer(ctx context.Context, cfg *rest.Config, f flags) (<-chan error, error) {
	if f.metricsAddr == "" {
		return nil, nil
	}
	srv, err := gateway.NewMetricsServer(cfg, gateway.MetricsServerOptions{BindAddress: f.metricsAddr, Secure: f.secureMetrics})
	if err != nil || srv == nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		if err := srv.Start(ctx); err != nil {
			done <- err
		}
	}()
	setupLog.Info("serving metrics", "addr", f.metricsAddr, "secure", f.secureMetrics)
	return done, nil
}

// restConfig applies the client-side rate limit, high enough not to cap thousands of creates per
// second; the request timeout is applied per request by the gateway.
func restConfig(cfg *rest.Config, f flags) *rest.Config {
	cfg.QPS = float32(f.kubeAPIQPS)
	cfg.Burst = f.kubeAPIBurst
	return cfg
}
