package bank_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

func newClient(t *testing.T, url string, opts bank.Options) *bank.Client {
	t.Helper()
	c, err := bank.New(url, opts)
	if err != nil {
		t.Fatalf("bank.New(%q): %v", url, err)
	}
	return c
}

// newSim serves a simulator over loopback HTTP for the duration of the test.
func newSim(t *testing.T, cfg banksim.Config) (*banksim.Simulator, string) {
	t.Helper()
	sim := banksim.New(cfg)
	server := httptest.NewServer(sim.Handler())
	t.Cleanup(server.Close)
	return sim, server.URL
}

// bankError returns err as a *bank.Error, failing the test if it is not one.
func bankError(t *testing.T, err error) *bank.Error {
	t.Helper()
	var be *bank.Error
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) is not a *bank.Error", err, err)
	}
	return be
}

// metricFamily returns the family name from controller-runtime's registry, where the
// controller's /metrics endpoint finds it.
func metricFamily(t *testing.T, name string) *dto.MetricFamily {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// hasLabels reports whether m carries every label of want.
func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			found++
		}
	}
	return found == len(want)
}

// requestCount is loan_bank_requests_total{operation, code}.
func requestCount(t *testing.T, operation, code string) float64 {
	t.Helper()
	if f := metricFamily(t, "loan_bank_requests_total"); f != nil {
		for _, m := range f.GetMetric() {
			if hasLabels(m, map[string]string{"operation": operation, "code": code}) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// durationCount is the sample count of loan_bank_request_duration_seconds{operation}.
func durationCount(t *testing.T, operation string) uint64 {
	t.Helper()
	if f := metricFamily(t, "loan_bank_request_duration_seconds"); f != nil {
		for _, m := range f.GetMetric() {
			if hasLabels(m, map[string]string{"operation": operation}) {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestNewValidatesTheURL(t *testing.T) {
	for _, url := range []string{"", "127.0.0.1:8000", "ftp://bank", "http://", "http://bank/?x=1", "http://bank/#top", "http://b a nk"} {
		if _, err := bank.New(url, bank.Options{}); err == nil {
			t.Errorf("bank.New(%q) accepted it", url)
		}
	}
	for _, url := range []string{"http://127.0.0.1:8000", "https://bank.example/prefix/"} {
		if _, err := bank.New(url, bank.Options{}); err != nil {
			t.Errorf("bank.New(%q): %v", url, err)
		}
	}
}

func TestCallsAgainstTheSimulator(t *testing.T) {
	_, url := newSim(t, banksim.Config{})
	c := newClient(t, url, bank.Options{})
	ctx := context.Background()
	app := bank.Application{ID: uuid.NewString(), FirstName: "Ada", LastName: "Lovelace"}
	submitsBefore, durationsBefore := requestCount(t, "submit", "201"), durationCount(t, "submit")

	created, err := c.Submit(ctx, app)
	want := app
	want.Status = "pending"
	if err != nil || created != want {
		t.Fatalf("Submit: %+v, %v; want %+v", created, err, want)
	}
	job, err := c.GetJob(ctx, app.ID)
	if err != nil || job.ApplicationID != app.ID || job.Status != bank.JobPending || uuid.Validate(job.ID) != nil {
		t.Fatalf("GetJob: %+v, %v; want a pending job of %s", job, err, app.ID)
	}
	if got := requestCount(t, "submit", "201"); got != submitsBefore+1 {
		t.Errorf("loan_bank_requests_total{submit,201} went from %v to %v, want +1", submitsBefore, got)
	}
	if got := durationCount(t, "submit"); got != durationsBefore+1 {
		t.Errorf("loan_bank_request_duration_seconds{submit} count went from %v to %v, want +1", durationsBefore, got)
	}
}

func TestBaseURLPathPrefixIsKept(t *testing.T) {
	sim := banksim.New(banksim.Config{})
	server := httptest.NewServer(http.StripPrefix("/bank", sim.Handler()))
	t.Cleanup(server.Close)
	c := newClient(t, server.URL+"/bank/", bank.Options{})
	if _, err := c.Submit(context.Background(), bank.Application{ID: uuid.NewString()}); err != nil {
		t.Fatalf("Submit behind /bank: %v", err)
	}
}

func TestErrorClassesOfTheBanksAnswers(t *testing.T) {
	_, url := newSim(t, banksim.Config{})
	c := newClient(t, url, bank.Options{})
	ctx := context.Background()
	known := uuid.NewString()
	if _, err := c.Submit(ctx, bank.Application{ID: known}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		call     func() error
		wantKind bank.Kind
		wantMsg  string
	}{
		{"a second submission is already used", func() error {
			_, err := c.Submit(ctx, bank.Application{ID: known})
			return err
		}, bank.KindAlreadyUsed, "the application ID is already used"},
		{"an id that is not a UUID is an invalid payload", func() error {
			_, err := c.Submit(ctx, bank.Application{ID: "not-a-uuid"})
			return err
		}, bank.KindInvalidPayload, "the request payload is not valid."},
		{"the job of an unknown application is not found", func() error {
			_, err := c.GetJob(ctx, uuid.NewString())
			return err
		}, bank.KindNotFound, "failed to get job, the application_id doesn't exist."},
		{"the job of an id that is not a UUID is an invalid payload", func() error {
			_, err := c.GetJob(ctx, "not-a-uuid")
			return err
		}, bank.KindInvalidPayload, "application_id is not a valid uuid"},
		{"the job of an empty id is an invalid payload", func() error {
			_, err := c.GetJob(ctx, "")
			return err
		}, bank.KindInvalidPayload, "application_id is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := bankError(t, tt.call())
			if be.Kind != tt.wantKind || be.Message != tt.wantMsg || bank.KindOf(be) != tt.wantKind {
				t.Errorf("class %q message %q, want %q %q", be.Kind, be.Message, tt.wantKind, tt.wantMsg)
			}
		})
	}
}

func TestErrorClassesFromTheSimulatorsFaults(t *testing.T) {
	tests := []struct {
		name           string
		faults         banksim.Faults
		wantKind       bank.Kind
		wantStatus     []int // any of these; none means no answer at all
		wantRetryAfter time.Duration
	}{
		{"fail rate 1 is transient", banksim.Faults{FailRate: 1}, bank.KindTransient, []int{500, 503}, 0},
		{"a rate limit is throttled with Retry-After", banksim.Faults{RateLimit: 1}, bank.KindThrottled, []int{429}, time.Second},
		{"a dropped connection is transient", banksim.Faults{DropRate: 1}, bank.KindTransient, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := newSim(t, banksim.Config{Faults: tt.faults})
			c := newClient(t, url, bank.Options{})
			var err error
			for range 2 { // the rate limit lets its burst of one through
				_, err = c.GetJob(context.Background(), uuid.NewString())
			}
			be := bankError(t, err)
			statusOK := len(tt.wantStatus) == 0 && be.StatusCode == 0
			for _, s := range tt.wantStatus {
				statusOK = statusOK || be.StatusCode == s
			}
			if be.Kind != tt.wantKind || !statusOK || be.RetryAfter != tt.wantRetryAfter {
				t.Errorf("class %q status %d retry after %v, want %q %v %v",
					be.Kind, be.StatusCode, be.RetryAfter, tt.wantKind, tt.wantStatus, tt.wantRetryAfter)
			}
		})
	}
}

func TestFaultsTurnedOffMidRunStopFailingCalls(t *testing.T) {
	sim, url := newSim(t, banksim.Config{Faults: banksim.Faults{FailRate: 1}})
	c := newClient(t, url, bank.Options{})
	app := bank.Application{ID: uuid.NewString()}
	if _, err := c.Submit(context.Background(), app); !bank.IsTransient(err) {
		t.Fatalf("Submit with fail rate 1: %v, want transient", err)
	}
	sim.SetFaults(banksim.Faults{})
	if _, err := c.Submit(context.Background(), app); err != nil {
		t.Fatalf("Submit once the faults are off: %v (a 5xx must not have created it)", err)
	}
}
