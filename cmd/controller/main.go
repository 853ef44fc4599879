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

// Command loan-controller runs the LoanApplication controller: it submits applications to the
// bank partner and follows them until the bank decides.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"os"
	"time"

	"github.com/go-logr/logr"
	// The bank is reached over HTTPS. The image carries no CA bundle of the machine that built
	// it (so that a commit gives the same image digest everywhere): the Mozilla roots compiled in
	// here are used where the system has none; a system bundle, when mounted, still wins.
	_ "golang.org/x/crypto/x509roots/fallback"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/controller"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(loansv1alpha1.AddToScheme(scheme))
}

// flags are the program's settings; every one has a default that works on a laptop.
type flags struct {
	metricsAddr, probeAddr     string
	pprofAddr                  string
	secureMetrics, enableHTTP2 bool
	leaderElect                bool
	leaderElectionNamespace    string
	namespace                  string
	bankURL                    string
	bankTimeout                time.Duration
	bankQPS                    float64
	bankBurst                  int
	timing                     controller.Timing
	maxConcurrentReconciles    int
	retryBaseDelay             time.Duration
	kubeAPIQPS                 float64
	kubeAPIBurst               int
}

// parseFlags reads the program's flags from args into fs (flag.CommandLine in main, where
// controller-runtime has registered --kubeconfig), and checks them.
func parseFlags(fs *flag.FlagSet, args []string) (flags, zap.Options, error) {
	var f flags
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "0", "The address the pprof endpoint (/debug/pprof/) binds to, "+
		"for profiling CPU and heap; plain HTTP without authentication, so bind it to loopback. 0 disables it.")
	fs.BoolVar(&f.secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served over HTTPS behind authentication and authorization. Use --metrics-secure=false for HTTP.")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false,
		"If set, HTTP/2 is enabled for the metrics server (off by default: see the HTTP/2 Rapid Reset CVEs).")
	fs.BoolVar(&f.leaderElect, "leader-elect", false,
		"Enable leader election, so that only one replica reconciles at a time (on in the deployed manifest).")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; in a cluster, the pod's own. Needed when running outside a cluster.")
	fs.StringVar(&f.namespace, "namespace", "", "Only watch LoanApplications in this namespace (default: all namespaces).")
	fs.StringVar(&f.bankURL, "bank-url", "http://127.0.0.1:8000", "Base URL of the bank partner's API.")
	fs.DurationVar(&f.bankTimeout, "bank-timeout", bank.DefaultTimeout, "Timeout of one call to the bank.")
	fs.Float64Var(&f.bankQPS, "bank-qps", 2000, "Most calls per second to the bank, across all applications (0: unlimited).")
	fs.IntVar(&f.bankBurst, "bank-burst", 100, "Burst of calls to the bank above --bank-qps.")
	fs.DurationVar(&f.timing.FirstPollDelay, "first-poll-delay", controller.DefaultTiming.FirstPollDelay,
		"Earliest poll after a submission: the bank's minimum assessment time.")
	fs.DurationVar(&f.timing.PollInterval, "poll-interval", controller.DefaultTiming.PollInterval,
		"Wait between two polls of a pending application; bounds how late a decision is noticed.")
	fs.DurationVar(&f.timing.NotFoundGrace, "not-found-grace", controller.DefaultTiming.NotFoundGrace,
		"How long after a submission a 404 from the bank is taken for lag; after it, the application is submitted again.")
	fs.Float64Var(&f.timing.Jitter, "poll-jitter", controller.DefaultTiming.Jitter,
		"Spread of the polls, so that applications do not poll in lockstep: each application's first poll comes up to this "+
			"fraction later than --first-poll-delay (a share fixed by its UID), the next ones every --poll-interval after it.")
	fs.Float64Var(&f.timing.PollBudget, "poll-budget", controller.DefaultTiming.PollBudget,
		"Share of --bank-qps the polls may take, the rest being left to submissions: when the pending applications would poll "+
			"faster, --poll-interval stretches (up to --max-poll-interval).")
	fs.DurationVar(&f.timing.MaxPollInterval, "max-poll-interval", controller.DefaultTiming.MaxPollInterval,
		"Longest the poll interval stretches to under --poll-budget; at or below --poll-interval it never stretches.")
	fs.IntVar(&f.maxConcurrentReconciles, "max-concurrent-reconciles", controller.DefaultMaxConcurrentReconciles,
		"Applications reconciled at once; reconciles wait on the bank and the API server, so this is well above the number of cores.")
	fs.DurationVar(&f.retryBaseDelay, "retry-base-delay", 500*time.Millisecond, "First retry delay after a transient bank error.")
	fs.DurationVar(&f.timing.MaxWait, "retry-max-delay", controller.DefaultTiming.MaxWait,
		"Longest wait before asking the bank again: caps the backoff after repeated bank errors, and any Retry-After the bank sends.")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 2000, "Most requests per second to the Kubernetes API (-1: unlimited).")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 4000, "Burst of requests to the Kubernetes API above --kube-api-qps.")
	opts := zap.Options{Development: false}
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return f, opts, err
	}
	return f, opts, f.validate()
}

// validate refuses settings that would make the controller poll in a tight loop or never.
func (f flags) validate() error {
	switch {
	case f.timing.FirstPollDelay < 0:
		return errors.New("--first-poll-delay must not be negative")
	case f.timing.PollInterval <= 0:
		return errors.New("--poll-interval must be positive")
	case f.timing.NotFoundGrace < 0:
		return errors.New("--not-found-grace must not be negative")
	case f.timing.Jitter < 0 || f.timing.Jitter > 1:
		return errors.New("--poll-jitter must be within [0, 1]")
	case f.timing.PollBudget <= 0 || f.timing.PollBudget > 1:
		return errors.New("--poll-budget must be within (0, 1]")
	case f.timing.MaxPollInterval < 0:
		return errors.New("--max-poll-interval must not be negative")
	case f.maxConcurrentReconciles < 1:
		return errors.New("--max-concurrent-reconciles must be at least 1")
	case f.retryBaseDelay <= 0 || f.timing.MaxWait < f.retryBaseDelay:
		return errors.New("--retry-base-delay must be positive and at most --retry-max-delay")
	case f.bankQPS < 0 || f.bankBurst < 0:
		return errors.New("--bank-qps and --bank-burst must not be negative")
	}
	return nil
}

func main() {
	f, zapOpts, err := parseFlags(flag.CommandLine, os.Args[1:])
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(1)
	}

	bankClient, err := bank.New(f.bankURL, bank.Options{Timeout: f.bankTimeout, QPS: f.bankQPS, Burst: f.bankBurst})
	if err != nil {
		setupLog.Error(err, "invalid bank settings")
		os.Exit(1)
	}

	mgr, err := ctrl.NewManager(restConfig(f), managerOptions(f))
	if err != nil {
		setupLog.Error(err, "unable to create manager")
		os.Exit(1)
	}

	timing := f.timing
	// The polls' budget is a share of the bank client's own limit.
	timing.BankQPS = f.bankQPS
	reconciler := &controller.LoanApplicationReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Bank:     bankClient,
		Recorder: mgr.GetEventRecorder("loan-controller"),
		Timing:   timing,
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{
		MaxConcurrentReconciles: f.maxConcurrentReconciles,
		RetryBaseDelay:          f.retryBaseDelay,
		RetryMaxDelay:           f.timing.MaxWait,
	}); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "LoanApplication")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	// Ready once the cache holds every application: before that, the controller knows of nothing.
	if err := mgr.AddReadyzCheck("readyz", controller.ReadyWhenSynced(mgr.GetCache())); err != nil {
		setupLog.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	logStart(setupLog, f)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}

// restConfig is the API client configuration: from --kubeconfig, KUBECONFIG or in-cluster, with
// a client-side rate limit high enough not to cap the controller (each application costs three
// writes; thousands are in flight at once).
func restConfig(f flags) *rest.Config {
	cfg := ctrl.GetConfigOrDie()
	cfg.QPS = float32(f.kubeAPIQPS)
	cfg.Burst = f.kubeAPIBurst
	return cfg
}

func managerOptions(f flags) ctrl.Options {
	var tlsOpts []func(*tls.Config)
	if !f.enableHTTP2 {
		// HTTP/2 stream cancellation and rapid reset (CVE-2023-44487, CVE-2023-39325) are
		// avoided by serving HTTP/1.1 only, as kubebuilder's scaffold does.
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   f.metricsAddr,
		SecureServing: f.secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if f.secureMetrics {
		// Only callers whose token may get /metrics (the metrics-reader role) can scrape.
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        f.probeAddr,
		PprofBindAddress:              f.pprofAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "loan-operator.loans.lendo.se",
		LeaderElectionNamespace:       f.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Only the applications not final yet, and without what the controller never reads.
		Cache: controller.CacheOptions(f.namespace),
	}
}

// logStart says what the controller starts with. The bank URL may carry credentials
// (https://user:password@bank): they are never logged.
func logStart(log logr.Logger, f flags) {
	log.Info("starting manager", "bank", bank.RedactURL(f.bankURL), "pollInterval", f.timing.PollInterval)
}
