package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/test/testenv"
)

// The envtest benchmarks compare the gateway with a direct client-go client of the same API
// server (envtest, with the client-side rate limit off), in one run so that the machine's noise
// hits both alike. They print their figures with b.ReportMetric; run them with
//
//	go test ./internal/gateway -run '^$' -bench 'CreateThroughput|ListByStatus' -benchtime 1x
//
// BenchmarkListPage needs no API server: it compares the cost of one page of a list by the
// store's name index with the earlier list-filter-sort, at 10,000 and 100,000 applications.
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

// BenchmarkListPage measures one page of 1,000 approved applications among 10,000 and 100,000
// (a third each approved, rejected, pending), in process and without an API server, by both
// designs on the same objects in the same run:
//
//   - index: the store's page (collectPage): the next names from the name index, each object
//     read by key from a client-go indexer, copied shallowly as the cache's Get with
//     UnsafeDisableDeepCopy does.
//   - list-filter-sort: the earlier design, as the cache's List with a field index did it: every
//     approved object from the indexer's status index, copied into a list, those after the
//     continue name kept, sorted by name, the first 1,000 taken.
//
// The first page is the old design's worst case (it sorts every match); the middle page shows
// that the index's cost does not depend on where the page starts. Run it with
//
//	go test ./internal/gateway -run '^$' -bench ListPage -benchmem
func BenchmarkListPage(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		objects, names := benchIndexedObjects(b, n)
		approved := names.namesAfter(loansv1alpha1.LabelApproved, "", n)
		starts := map[string]string{"first": "", "middle": approved[len(approved)/2]}
		for _, where := range []string{"first", "middle"} {
			after := starts[where]
			b.Run(fmt.Sprintf("n=%d/page=%s/index", n, where), func(b *testing.B) {
				for b.Loop() {
					pg, err := collectPage(context.Background(), names, loansv1alpha1.LabelApproved, after, maxLimit, objects.get)
					benchCheckPage(b, pg.items, err)
				}
			})
			b.Run(fmt.Sprintf("n=%d/page=%s/list-filter-sort", n, where), func(b *testing.B) {
				for b.Loop() {
					benchCheckPage(b, objects.listFilterSort(loansv1alpha1.LabelApproved, after, maxLimit), nil)
				}
			})
		}
	}
}

// benchStatusIndex names the status index of benchObjects, as the cache's field index was named.
const benchStatusIndex = "status"

// benchObjects is a client-go indexer holding applications, as the informer cache holds them.
type benchObjects struct {
	indexer   toolscache.Indexer
	namespace string
}

// benchIndexedObjects fills a client-go indexer and a name index with n applications, added in
// a shuffled order (as creates arrive), a third each approved, rejected and pending.
func benchIndexedObjects(b *testing.B, n int) (benchObjects, *nameIndex) {
	b.Helper()
	objects := benchObjects{namespace: "bench", indexer: toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc,
		toolscache.Indexers{benchStatusIndex: func(obj any) ([]string, error) {
			return []string{obj.(*loansv1alpha1.LoanApplication).Labels[loansv1alpha1.LabelStatus]}, nil
		}})}
	names := newNameIndex()
	statuses := []string{loansv1alpha1.LabelApproved, loansv1alpha1.LabelRejected, loansv1alpha1.LabelPending}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for _, i := range rng.Perm(n) {
		app := benchApplication(objects.namespace, fmt.Sprintf("app-%08x", i*2654435761%(1<<32)), statuses[i%3])
		app.Status = loansv1alpha1.LoanApplicationStatus{Phase: loansv1alpha1.PhasePending,
			SubmittedAt: &metav1.Time{Time: time.Now()}}
		if err := objects.indexer.Add(app); err != nil {
			b.Fatal(err)
		}
		names.OnAdd(app, true)
	}
	return objects, names
}

// get reads one application by name, as the cache's Get does with UnsafeDisableDeepCopy: the
// stored object copied shallowly into a new one.
func (o benchObjects) get(_ context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
	obj, ok, err := o.indexer.GetByKey(o.namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(loansv1alpha1.GroupVersion.WithResource("loanapplications").GroupResource(), name)
	}
	app := *obj.(*loansv1alpha1.LoanApplication)
	return &app, nil
}

// listFilterSort is the earlier store.list on the indexer: every match, the names after `after`,
// sorted, the first limit.
func (o benchObjects) listFilterSort(status, after string, limit int) []*loansv1alpha1.LoanApplication {
	matches, err := o.indexer.ByIndex(benchStatusIndex, status)
	if err != nil {
		panic(err)
	}
	all := make([]loansv1alpha1.LoanApplication, 0, len(matches)) // the cache's List copies into Items
	for _, obj := range matches {
		all = append(all, *obj.(*loansv1alpha1.LoanApplication))
	}
	items := make([]*loansv1alpha1.LoanApplication, 0, len(all))
	for i := range all {
		if all[i].Name > after {
			items = append(items, &all[i])
		}
	}
	slices.SortFunc(items, func(a, b *loansv1alpha1.LoanApplication) int { return strings.Compare(a.Name, b.Name) })
	return items[:min(limit, len(items))]
}

// benchCheckPage fails unless a page is full and in order, so that neither design is timed
// answering less.
func benchCheckPage(b *testing.B, items []*loansv1alpha1.LoanApplication, err error) {
	if err != nil {
		b.Fatal(err)
	}
	if len(items) != maxLimit || !slices.IsSortedFunc(items, func(a, c *loansv1alpha1.LoanApplication) int {
		return strings.Compare(a.Name, c.Name)
	}) {
		b.Fatalf("a page of %d, want %d in name order", len(items), maxLimit)
	}
}
