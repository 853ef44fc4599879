package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/testenv"
)

// The benchmarks compare the gateway with a direct client-go client of the same API server
// (envtest, with the client-side rate limit off), in one run so that the machine's noise hits
// both alike. They print their figures with b.ReportMetric; run them with
//
//	go test ./internal/gateway -run '^$' -bench . -benchtime 1x
const (
	benchConcurrency = 64
	// benchCreates is the number of creates of each round of each path.
	benchCreates = 1000
	// benchWarmup is the number of untimed creates of each path before the rounds.
	benchWarmup = 500
	// benchRounds alternates the two paths, so that a drift of the machine does not favour one.
	benchRounds = 11
	// benchStored is the number of applications stored for the list benchmark.
	benchStored = 10000
	// benchListSamples is the number of timed lists of each path; the median is reported.
	benchListSamples = 31
	// benchDeadline bounds each benchmark, whatever happens.
	benchDeadline = 5 * time.Minute
)

// benchSetup starts a control plane, a namespace and a gateway on a loopback port.
type benchSetup struct {
	env       *testenv.Env
	namespace string
	gateway   *Gateway
	url       string
	http      *http.Client
}

func startBench(b *testing.B, ctx context.Context) *benchSetup {
	b.Helper()
	logf.SetLogger(logr.Discard())
	e, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Stop() })
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := e.Client.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	g, err := New(e.Config, Options{Namespace: ns.Name, Log: logr.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	cacheCtx, stop := context.WithCancel(ctx)
	go func() { _ = g.Start(cacheCtx) }()
	srv := httptest.NewServer(g.Handler())
	b.Cleanup(func() { srv.Close(); stop() })
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = benchConcurrency
	s := &benchSetup{env: e, namespace: ns.Name, gateway: g, url: srv.URL,
		http: &http.Client{Transport: transport, Timeout: time.Minute}}
	for !g.Ready() {
		if ctx.Err() != nil {
			b.Fatal("the gateway's cache never synced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// runConcurrently calls op n times from benchConcurrency goroutines and answers the rate per
// second. It stops early (and fails) at the first error or when ctx ends.
func runConcurrently(b *testing.B, ctx context.Context, n int, op func(ctx context.Context, i int) error) float64 {
	b.Helper()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if err := op(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if ctx.Err() != nil {
		b.Fatal(ctx.Err())
	}
	return float64(n) / elapsed.Seconds()
}

// BenchmarkCreateThroughput compares creates through the gateway (HTTP on loopback, JSON, the
// gateway's create) with creates by a direct client, both at 64 in flight, into the namespace the
// gateway watches (so its informer's watch costs the API server the same in both). The direct
// client is the very client the gateway creates with (client-go REST under controller-runtime's
// typed client, same scheme, mapper and rest.Config), so that the ratio is the cost of the
// gateway's layer alone. (testenv's general-purpose env.Client, built on client-go's global
// scheme and a discovering REST mapper, measured slower than it on this machine, which would
// flatter the gateway.)
func BenchmarkCreateThroughput(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	s := startBench(b, ctx)
	direct := func(ctx context.Context, i int) error {
		return s.gateway.store.direct.Create(ctx, benchApplication(s.namespace, fmt.Sprintf("direct-%d", i), loansv1alpha1.LabelPending))
	}
	body := []byte(`{"first_name": "Ada", "last_name": "Lovelace"}`)
	viaGateway := func(ctx context.Context, _ int) error {
		return s.post(ctx, body)
	}
	created := 0 // names the direct creates uniquely across batches
	directBatch := func(n int) float64 {
		offset := created
		created += n
		return runConcurrently(b, ctx, n, func(ctx context.Context, i int) error { return direct(ctx, offset+i) })
	}
	// Warm up both paths (connections, the API server's caches) before anything is timed.
	directBatch(benchWarmup)
	runConcurrently(b, ctx, benchWarmup, viaGateway)
	for b.Loop() {
		var directSum, gatewaySum float64
		ratios := make([]float64, 0, benchRounds)
		for round := range benchRounds {
			// Alternate which path goes first, so that neither always follows the other; each
			// round's pair of batches ran seconds apart, so their ratio is little touched by the
			// drift of a shared machine, and the median of the rounds' ratios by its outliers.
			var directRate, gatewayRate float64
			if round%2 == 0 {
				directRate = directBatch(benchCreates)
				gatewayRate = runConcurrently(b, ctx, benchCreates, viaGateway)
			} else {
				gatewayRate = runConcurrently(b, ctx, benchCreates, viaGateway)
				directRate = directBatch(benchCreates)
			}
			directSum += directRate
			gatewaySum += gatewayRate
			ratios = append(ratios, gatewayRate/directRate)
		}
		slices.Sort(ratios)
		b.ReportMetric(directSum/benchRounds, "direct-creates/s")
		b.ReportMetric(gatewaySum/benchRounds, "gateway-creates/s")
		b.ReportMetric(ratios[len(ratios)/2], "gateway/direct-median")
		b.ReportMetric(ratios[0], "gateway/direct-min")
		b.ReportMetric(ratios[len(ratios)-1], "gateway/direct-max")
	}
}

func (s *benchSetup) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+applicationsPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST: %d %s", resp.StatusCode, data)
	}
	return nil
}

func benchApplication(namespace, name, status string) *loansv1alpha1.LoanApplication {
	return &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{loansv1alpha1.LabelStatus: status}},
		Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"},
	}
}

// BenchmarkListByStatus stores 10,000 applications (a third each approved, rejected, pending)
// and lists the 3,334 approved ones: by a direct LIST with the label selector status=approved,
// and through the gateway, whose pages hold at most 1,000, so all four pages, following
// continue (each decoded by the client, as the direct LIST is). The gateway's cache lookup alone
// (in process, no HTTP or JSON) is reported too. Medians of 31 interleaved samples.
func BenchmarkListByStatus(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	s := startBench(b, ctx)
	statuses := []string{loansv1alpha1.LabelApproved, loansv1alpha1.LabelRejected, loansv1alpha1.LabelPending}
	runConcurrently(b, ctx, benchStored, func(ctx context.Context, i int) error {
		return s.env.Client.Create(ctx, benchApplication(s.namespace, fmt.Sprintf("app-%05d", i), statuses[i%3]))
	})
	wantApproved := (benchStored + 2) / 3
	s.waitForCache(b, ctx, wantApproved)

	for b.Loop() {
		direct := make([]time.Duration, 0, benchListSamples)
		gateway := make([]time.Duration, 0, benchListSamples)
		cacheOnly := make([]time.Duration, 0, benchListSamples)
		for range benchListSamples {
			direct = append(direct, timed(b, func() int { return s.directList(b, ctx) }, wantApproved))
			gateway = append(gateway, timed(b, func() int { return s.gatewayList(b, ctx) }, wantApproved))
			cacheOnly = append(cacheOnly, timed(b, func() int { return s.cacheList(b, ctx) }, wantApproved))
		}
		d, g, c := median(direct), median(gateway), median(cacheOnly)
		b.ReportMetric(float64(d.Microseconds())/1000, "direct-LIST-ms")
		b.ReportMetric(float64(g.Microseconds())/1000, "gateway-HTTP-ms")
		b.ReportMetric(float64(c.Microseconds())/1000, "gateway-cache-ms")
		b.ReportMetric(float64(d)/float64(g), "direct/gateway")
	}
}

func (s *benchSetup) waitForCache(b *testing.B, ctx context.Context, want int) {
	b.Helper()
	for s.cacheList(b, ctx) != want {
		if ctx.Err() != nil {
			b.Fatal("the gateway's cache never held every application")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timed runs list once and answers how long it took; it fails unless list found want items.
func timed(b *testing.B, list func() int, want int) time.Duration {
	b.Helper()
	start := time.Now()
	got := list()
	elapsed := time.Since(start)
	if got != want {
		b.Fatalf("listed %d applications, want %d", got, want)
	}
	return elapsed
}

func (s *benchSetup) directList(b *testing.B, ctx context.Context) int {
	var list loansv1alpha1.LoanApplicationList
	if err := s.env.Client.List(ctx, &list, client.InNamespace(s.namespace),
		client.MatchingLabels{loansv1alpha1.LabelStatus: loansv1alpha1.LabelApproved}); err != nil {
		b.Fatal(err)
	}
	return len(list.Items)
}

// gatewayList follows the pages of the gateway's list; at most benchStored/maxLimit+1 pages.
func (s *benchSetup) gatewayList(b *testing.B, ctx context.Context) int {
	n, token := 0, ""
	for range benchStored/maxLimit + 1 {
		url := fmt.Sprintf("%s%s?status=%s&limit=%d&continue=%s", s.url, applicationsPath, loansv1alpha1.LabelApproved, maxLimit, token)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := s.http.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var page applicationListView
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("list: %d %v", resp.StatusCode, err)
		}
		n += len(page.Items)
		if token = page.Continue; token == "" {
			return n
		}
	}
	b.Fatal("the gateway's list did not end")
	return 0
}

func (s *benchSetup) cacheList(b *testing.B, ctx context.Context) int {
	n, after := 0, ""
	for range benchStored/maxLimit + 1 {
		pg, err := s.gateway.store.list(ctx, loansv1alpha1.LabelApproved, after, maxLimit)
		if err != nil {
			b.Fatal(err)
		}
		n += len(pg.items)
		if after = pg.next; after == "" {
			return n
		}
	}
	b.Fatal("the cache's list did not end")
	return 0
}

func median(samples []time.Duration) time.Duration {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}
