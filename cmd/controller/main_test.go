package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/controller"
)

func parse(t *testing.T, args ...string) (flags, error) {
	t.Helper()
	fs := flag.NewFlagSet("loan-controller", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f, _, err := parseFlags(fs, args)
	return f, err
}

func TestDefaults(t *testing.T) {
	f, err := parse(t)
	if err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	if f.bankURL != "http://127.0.0.1:8000" {
		t.Errorf("--bank-url defaults to %q", f.bankURL)
	}
	if f.timing != controller.DefaultTiming {
		t.Errorf("timing defaults to %+v, want %+v", f.timing, controller.DefaultTiming)
	}
	// The API client's limit must not cap the controller: three writes per application for a
	// thousand applications deciding within 15s is 200/s.
	if f.kubeAPIQPS < 200 || f.kubeAPIBurst < int(f.kubeAPIQPS) {
		t.Errorf("--kube-api-qps %v / --kube-api-burst %d would cap the controller", f.kubeAPIQPS, f.kubeAPIBurst)
	}
	if f.pprofAddr != "0" {
		t.Errorf("--pprof-bind-address defaults to %q: an unauthenticated profile endpoint must be asked for", f.pprofAddr)
	}
	if f.maxConcurrentReconciles < 2 || f.bankQPS <= 0 || f.bankBurst <= 0 {
		t.Errorf("concurrency and bank limits: %d, %v, %d", f.maxConcurrentReconciles, f.bankQPS, f.bankBurst)
	}
}

func TestEveryFlagIsDocumented(t *testing.T) {
	fs := flag.NewFlagSet("loan-controller", flag.ContinueOnError)
	if _, _, err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if len(strings.TrimSpace(fl.Usage)) < 10 {
			t.Errorf("--%s has no useful help: %q", fl.Name, fl.Usage)
		}
	})
	for _, name := range []string{"bank-url", "bank-qps", "bank-burst", "max-concurrent-reconciles", "kube-api-qps",
		"kube-api-burst", "leader-elect", "first-poll-delay", "poll-interval", "poll-jitter", "not-found-grace", "pprof-bind-address",
		"poll-budget", "max-poll-interval"} {
		if fs.Lookup(name) == nil {
			t.Errorf("no --%s flag", name)
		}
	}
}

func TestFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--poll-interval=500ms", "--first-poll-delay=0s", "--poll-jitter=0"}, true},
		{[]string{"--poll-interval=0s"}, false},
		{[]string{"--first-poll-delay=-1s"}, false},
		{[]string{"--poll-jitter=1.5"}, false},
		{[]string{"--poll-jitter=-0.1"}, false},
		{[]string{"--not-found-grace=-1s"}, false},
		{[]string{"--max-concurrent-reconciles=0"}, false},
		{[]string{"--retry-base-delay=0s"}, false},
		{[]string{"--retry-base-delay=5m", "--retry-max-delay=1m"}, false},
		{[]string{"--bank-qps=-1"}, false},
		{[]string{"--bank-qps=0"}, true}, // unlimited
		{[]string{"--poll-budget=0"}, false},
		{[]string{"--poll-budget=1.2"}, false},
		{[]string{"--poll-budget=1", "--max-poll-interval=0s"}, true}, // never stretches
		{[]string{"--max-poll-interval=-1s"}, false},
		{[]string{"--no-such-flag"}, false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if _, err := parse(t, tc.args...); (err == nil) != tc.ok {
				t.Errorf("parse(%v) = %v, want ok: %v", tc.args, err, tc.ok)
			}
		})
	}
	if f, _ := parse(t, "--poll-interval=3s"); f.timing.PollInterval != 3*time.Second {
		t.Errorf("--poll-interval=3s gives %v", f.timing.PollInterval)
	}
}

func TestTheBankURLIsLoggedWithoutItsPassword(t *testing.T) {
	var logged strings.Builder
	log := funcr.New(func(prefix, args string) { logged.WriteString(prefix + args + "\n") }, funcr.Options{})
	f, err := parse(t, "--bank-url=https://lender:s3cret@bank.example:8443/api")
	if err != nil {
		t.Fatal(err)
	}
	logStart(log, f)
	if strings.Contains(logged.String(), "s3cret") || !strings.Contains(logged.String(), "bank.example:8443") {
		t.Errorf("the start-up log shows %q", logged.String())
	}
	if _, err := bank.New("https://lender:s3cret@bank.example/?q=1", bank.Options{}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bank.New's error shows the password: %v", err)
	}
	if _, err := bank.New("https://lender:s3cret@bank example/", bank.Options{}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bank.New's error shows the password: %v", err)
	}
}

// The program caches what the tests' managers cache: the applications in flight only.
func TestTheCacheHoldsTheApplicationsInFlight(t *testing.T) {
	f, err := parse(t, "--namespace=loans")
	if err != nil {
		t.Fatal(err)
	}
	opts := managerOptions(f).Cache
	if _, ok := opts.DefaultNamespaces["loans"]; !ok {
		t.Errorf("--namespace=loans watches %v", opts.DefaultNamespaces)
	}
	for obj, byObject := range opts.ByObject {
		if _, ok := obj.(*loansv1alpha1.LoanApplication); ok {
			if got, want := byObject.Label.String(), controller.InFlightSelector().String(); got != want {
				t.Errorf("LoanApplications selected by %q, want %q", got, want)
			}
			return
		}
	}
	t.Error("no cache settings for LoanApplications: the controller would hold every application ever made")
}
