package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/lendo/loan-operator/internal/gateway"
)

func parse(t *testing.T, args ...string) (flags, error) {
	t.Helper()
	fs := flag.NewFlagSet("loan-gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f, _, err := parseFlags(fs, args)
	return f, err
}

// The local run, the tests and the benchmarks scrape <gateway>/metrics: by default the metrics
// stay on --addr; once moved, they are secure unless said otherwise.
func TestMetricsDefaults(t *testing.T) {
	f, err := parse(t)
	if err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	if f.metricsAddr != "" || !f.secureMetrics {
		t.Errorf("--metrics-bind-address %q, --metrics-secure %v; want empty and true", f.metricsAddr, f.secureMetrics)
	}
	f, err = parse(t, "--addr=:8080", "--metrics-bind-address=:8443")
	if err != nil || f.metricsAddr != ":8443" || !f.secureMetrics {
		t.Errorf("as deployed: %+v, %v", f, err)
	}
}

func TestMetricsAddressMustDifferFromTheAPIs(t *testing.T) {
	_, err := parse(t, "--addr=127.0.0.1:9000", "--metrics-bind-address=127.0.0.1:9000")
	if err == nil || !strings.Contains(err.Error(), "--metrics-bind-address") {
		t.Errorf("the same address for both: %v", err)
	}
}

func TestEveryFlagIsDocumented(t *testing.T) {
	fs := flag.NewFlagSet("loan-gateway", flag.ContinueOnError)
	if _, _, err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if len(strings.TrimSpace(fl.Usage)) < 10 {
			t.Errorf("--%s has no useful help: %q", fl.Name, fl.Usage)
		}
	})
	for _, name := range []string{"addr", "namespace", "auth-token-file", "request-timeout", "kube-api-qps", "kube-api-burst",
		"metrics-bind-address", "metrics-secure", "pprof-bind-address"} {
		if fs.Lookup(name) == nil {
			t.Errorf("no --%s flag", name)
		}
	}
}

// The bounds a deployment sets on the command line reach the gateway, and their defaults are
// the gateway's.
func TestFlagsReachTheGatewaysOptions(t *testing.T) {
	f, err := parse(t, "--namespace=lending", "--auth-token-file=/var/run/token", "--request-timeout=7s",
		"--max-inflight-creates=11", "--max-uncached-gets-per-second=13", "--max-waiters=17", "--max-wait=19s",
		"--max-streams=23", "--metrics-bind-address=:8443")
	if err != nil {
		t.Fatal(err)
	}
	got := gatewayOptions(f)
	want := gateway.Options{Namespace: "lending", AuthTokenFile: "/var/run/token", RequestTimeout: 7 * time.Second,
		MaxInflightCreates: 11, FallbackGetsPerSecond: 13, MaxWaiters: 17, MaxWait: 19 * time.Second, MaxStreams: 23,
		MetricsServedElsewhere: true}
	got.Log, got.MetricsRegistry = logr.Logger{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options\n got %+v\nwant %+v", got, want)
	}

	f, err = parse(t)
	if err != nil {
		t.Fatal(err)
	}
	got = gatewayOptions(f)
	if got.MaxInflightCreates != gateway.DefaultMaxInflightCreates || got.MaxWaiters != gateway.DefaultMaxWaiters ||
		got.MaxStreams != gateway.DefaultMaxStreams || got.MaxWait != gateway.DefaultMaxWait ||
		got.FallbackGetsPerSecond != gateway.DefaultFallbackGetsPerSecond || got.MetricsServedElsewhere {
		t.Errorf("the defaults: %+v", got)
	}
}
