package e2e_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// The load of the gateway spec: this many clients at once, each sending one request after
// another for the whole duration.
const (
	loadClients  = 2000
	loadDuration = 20 * time.Second
)

var _ = Describe("The gateway under 2,000 concurrent clients", Ordered, func() {
	var stack *devenv.Stack

	BeforeAll(func(ctx SpecContext) {
		opts := programs.QuickOptions(GinkgoT().TempDir(), GinkgoWriter)
		// Low bounds, so that a 2-core machine reaches them and the shedding is exercised.
		opts.GatewayArgs = append(opts.GatewayArgs, "--max-inflight-creates=32", "--max-waiters=500")
		var err error
		stack, err = devenv.Start(ctx, opts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(stack.Stop()).To(Succeed()) })
	}, NodeTimeout(3*time.Minute))

	AfterEach(func() { Expect(stacktest.UnexpectedExit(stack)).To(Succeed()) })

	It("answers only 200, 201, 429 and 503 (with Retry-After), stores every 201, and comes back to its baseline",
		func(ctx SpecContext) {
			metricsURL := stack.GatewayURL + "/metrics"
			baseline := gatewayRuntime(ctx, metricsURL)
			seed := createThroughGateway(ctx, stack.GatewayURL, "Load", "Seed")

			tally := runGatewayLoad(ctx, stack.GatewayURL, seed)
			GinkgoWriter.Printf("answers by status: %v; waits refused at --max-waiters: %d; transport errors: %d\n",
				tally.byStatus(), tally.waitsRefused.Load(), tally.errors.Load())
			Expect(tally.errors.Load()).To(BeZero(), "every request got an answer: %s", tally.firstError())
			for status := range tally.byStatus() {
				Expect(status).To(BeElementOf(http.StatusOK, http.StatusCreated, http.StatusTooManyRequests, http.StatusServiceUnavailable))
			}
			Expect(tally.withoutRetryAfter.Load()).To(BeZero(), "a 429 or 503 without Retry-After")
			Expect(tally.byStatus()[http.StatusCreated]).To(BeNumerically(">", 0))
			// The bounds were reached, so the answers above are those of a gateway shedding load.
			Expect(tally.byStatus()[http.StatusTooManyRequests]).To(BeNumerically(">", 0), "no create was shed")
			Expect(tally.waitsRefused.Load()).To(BeNumerically(">", 0), "no wait was refused at --max-waiters")

			var stored loansv1alpha1.LoanApplicationList
			Expect(stack.Client.List(ctx, &stored, client.InNamespace("default"))).To(Succeed())
			names := make(map[string]bool, len(stored.Items))
			for _, app := range stored.Items {
				names[app.Name] = true
			}
			for _, id := range tally.createdIDs() {
				Expect(names).To(HaveKey(id), "a 201 whose application is not stored")
			}

			// Goroutines at once; the heap once the runtime has collected (it forces a collection
			// every 2 minutes at the latest), allowing for the applications the cache now holds.
			allowance := baseline.heap + float64(len(stored.Items)*8<<10+32<<20)
			Eventually(func(g Gomega) {
				now := gatewayRuntime(ctx, metricsURL)
				g.Expect(now.goroutines).To(BeNumerically("<=", baseline.goroutines+20), "goroutines: baseline %v", baseline.goroutines)
				g.Expect(now.heap).To(BeNumerically("<=", allowance), "heap: baseline %v, %d applications", baseline.heap, len(stored.Items))
			}).WithContext(ctx).WithTimeout(150 * time.Second).WithPolling(2 * time.Second).Should(Succeed())
		}, SpecTimeout(5*time.Minute))
})

// loadTally counts the answers of a load run.
type loadTally struct {
	mu                sync.Mutex
	statuses          map[int]int
	created           []string
	firstErr          error
	errors            atomic.Int64
	withoutRetryAfter atomic.Int64
	// waitsRefused counts the 503s of waits refused at --max-waiters.
	waitsRefused atomic.Int64
}

func (t *loadTally) record(status int, header http.Header, createdID string, waitRefused bool) {
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && header.Get("Retry-After") == "" {
		t.withoutRetryAfter.Add(1)
	}
	if waitRefused && status == http.StatusServiceUnavailable {
		t.waitsRefused.Add(1)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.statuses[status]++
	if createdID != "" {
		t.created = append(t.created, createdID)
	}
}

func (t *loadTally) fail(err error) {
	t.errors.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstErr == nil {
		t.firstErr = err
	}
}

func (t *loadTally) byStatus() map[int]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int]int, len(t.statuses))
	for k, v := range t.statuses {
		out[k] = v
	}
	return out
}

func (t *loadTally) createdIDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.created...)
}

func (t *loadTally) firstError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstErr
}

// runGatewayLoad runs loadClients clients for loadDuration, each in a loop: a create (1 in 10),
// a 1-second wait for the decision of the client's latest application, still pending most of
// the time (2 in 10; the seed until the client has created one), a GET of the seed (5 in 10), or
// a list.
func runGatewayLoad(ctx context.Context, gatewayURL, seed string) *loadTally {
	transport := &http.Transport{MaxIdleConnsPerHost: loadClients, MaxConnsPerHost: loadClients}
	defer transport.CloseIdleConnections()
	httpc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	tally := &loadTally{statuses: map[int]int{}}
	deadline := time.Now().Add(loadDuration)
	var wg sync.WaitGroup
	for c := range loadClients {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			latest := seed
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				if created := loadRequest(ctx, httpc, gatewayURL, seed, latest, fmt.Sprintf("c%d-%d", c, i), tally); created != "" {
					latest = created
				}
			}
		}()
	}
	wg.Wait()
	return tally
}

// loadRequest sends one request of the mix, records its answer and returns the id of the
// application it created, if it did.
func loadRequest(ctx context.Context, httpc *http.Client, gatewayURL, seed, latest, tag string, tally *loadTally) string {
	var req *http.Request
	var err error
	isCreate, waits := false, false
	switch n := rand.IntN(10); {
	case n == 0:
		isCreate = true
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/api/v1/applications",
			strings.NewReader(fmt.Sprintf(`{"first_name":"Load","last_name":"Client %s"}`, tag)))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	case n <= 2:
		waits = true
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/api/v1/applications/"+latest+"?wait=1s", nil)
	case n <= 7:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/api/v1/applications/"+seed, nil)
	default:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/api/v1/applications?limit=10", nil)
	}
	if err != nil {
		tally.fail(err)
		return ""
	}
	resp, err := httpc.Do(req)
	if err != nil {
		tally.fail(err)
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	id := ""
	if isCreate && resp.StatusCode == http.StatusCreated {
		id = strings.TrimPrefix(resp.Header.Get("Location"), "/api/v1/applications/")
	}
	body, _ := io.ReadAll(resp.Body)
	tally.record(resp.StatusCode, resp.Header, id, waits && strings.Contains(string(body), waitersRefused))
	return id
}

// waitersRefused is the detail of the gateway's answer to a wait above --max-waiters.
const waitersRefused = "too many requests are waiting for decisions"

// runtimeFigures are the gateway's goroutines and heap, from its /metrics.
type runtimeFigures struct {
	goroutines, heap float64
}

func gatewayRuntime(ctx context.Context, metricsURL string) runtimeFigures {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	value := func(name string) float64 {
		Expect(families).To(HaveKey(name))
		return families[name].GetMetric()[0].GetGauge().GetValue()
	}
	return runtimeFigures{goroutines: value("go_goroutines"), heap: value("go_memstats_heap_alloc_bytes")}
}
