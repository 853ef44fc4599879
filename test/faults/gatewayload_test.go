package faults_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/test/stacktest"
)

// The gateway load: clients at once, for how long, and at most how many creates among their
// requests (the rest are gets and lists), so that the controller and the bank finish the
// created applications within the test.
const (
	loadClients    = 200
	loadDuration   = 20 * time.Second
	loadMaxCreates = 400
)

// loadResult counts the answers of the gateway under load.
type loadResult struct {
	mu       sync.Mutex
	byCode   map[string]int // "create 201", "get 200", "list 200", "list error"...
	creates  []string
	failures []string // the first few non-2xx answers or errors, for the failure message
	requests atomic.Int64
}

func (r *loadResult) count(op string, code int, body string, created string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byCode[op+" "+strconv.Itoa(code)]++
	if created != "" {
		r.creates = append(r.creates, created)
	}
	if (code < 200 || code > 299) && len(r.failures) < 10 {
		r.failures = append(r.failures, fmt.Sprintf("%s: %d %s", op, code, body))
	}
}

// count5xx counts the answers of 500 and above, and those with no answer (code 0).
func (r *loadResult) count5xx() (n, noAnswer, other int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, count := range r.byCode {
		var op string
		var code int
		_, _ = fmt.Sscanf(key, "%s %d", &op, &code)
		switch {
		case code == 0:
			noAnswer += count
		case code >= 500:
			n += count
		case code >= 300:
			other += count
		}
	}
	return n, noAnswer, other
}

func loadSpecs(sys *system) {
	It("answers 200 concurrent clients mixing creates, gets and lists without a 5xx, and leaks no goroutine", func(ctx SpecContext) {
		test := faultTest(testGatewayLoad)
		gw := sys.stack.GatewayURL
		goroutines := func() float64 {
			var v float64
			Eventually(func(g Gomega) { v = metricValue(ctx, g, gw+"/metrics", "go_goroutines") }).WithContext(ctx).Should(Succeed())
			return v
		}
		baseline := goroutines()
		transport := &http.Transport{MaxIdleConnsPerHost: loadClients, MaxConnsPerHost: loadClients}
		clients := &http.Client{Transport: transport, Timeout: 15 * time.Second}
		res := &loadResult{byCode: map[string]int{}}
		var createsLeft atomic.Int64
		createsLeft.Store(loadMaxCreates)
		// A few applications to read from the start.
		seed, err := createApplications(ctx, sys.stack, "load-seed", 10, 10*time.Millisecond)
		Expect(err).NotTo(HaveOccurred())
		res.creates = append(res.creates, seed.names...)

		var peak atomic.Int64
		stopSampling := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(sampled)
			for {
				select {
				case <-stopSampling:
					return
				case <-time.After(time.Second):
					code, body := get(ctx, gw+"/metrics")
					if code == http.StatusOK {
						peak.Store(max(peak.Load(), int64(parseSample(body, "go_goroutines"))))
					}
				}
			}
		}()
		deadline := time.Now().Add(loadDuration)
		var wg sync.WaitGroup
		for i := range loadClients {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				runLoadClient(ctx, clients, gw, uint64(i), deadline, &createsLeft, res)
			}()
		}
		wg.Wait()
		close(stopSampling)
		<-sampled
		requests := res.requests.Load()
		By(fmt.Sprintf("%d requests in %s: %v", requests, loadDuration, res.byCode))

		// The clients hang up: the gateway's goroutines for their connections must end too.
		transport.CloseIdleConnections()
		var after float64
		Eventually(func(g Gomega) {
			after = metricValue(ctx, g, gw+"/metrics", "go_goroutines")
			g.Expect(after).To(BeNumerically("<=", baseline+10), "goroutines: %v before the load, %v now", baseline, after)
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		serverErrors, noAnswer, other := res.count5xx()
		c := &created{names: res.creates, viaGateway: len(res.creates) - len(seed.names) + seed.viaGateway, viaAPI: seed.viaAPI}
		sys.record(ctx, test, c, nil, 0, "none: load only", map[string]string{
			"requests":   fmt.Sprintf("%d in %s (%.0f/s)", requests, loadDuration, float64(requests)/loadDuration.Seconds()),
			"answers":    fmt.Sprint(res.byCode),
			"goroutines": fmt.Sprintf("%.0f before, %d at peak, %.0f after", baseline, peak.Load(), after),
		})
		Expect(serverErrors).To(BeZero(), "5xx answers under load: %v", res.failures)
		Expect(noAnswer).To(BeZero(), "requests without an answer under load: %v", res.failures)
		Expect(other).To(BeZero(), "other non-2xx answers under load: %v", res.failures)
		Expect(requests).To(BeNumerically(">", loadClients), "the load did not run")
	}, SpecTimeout(faultTestTimeout))
}

// runLoadClient is one client: until the deadline, one request after the other, a create
// (while the creates last) one time in ten, else a get of a known application or a list.
func runLoadClient(ctx context.Context, httpc *http.Client, gw string, id uint64, deadline time.Time,
	createsLeft *atomic.Int64, res *loadResult) {
	rng := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), id))
	statuses := []string{"", "pending", "approved", "rejected"}
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		res.requests.Add(1)
		switch roll := rng.IntN(10); {
		case roll == 0 && createsLeft.Add(-1) >= 0:
			code, app, body, err := stacktest.PostApplication(ctx, httpc, gw, "Load", fmt.Sprintf("Client %d request %d", id, i))
			if err != nil {
				body = err.Error()
			}
			res.count("create", code, body, app.ID)
		case roll < 6:
			res.mu.Lock()
			name := res.creates[rng.IntN(len(res.creates))]
			res.mu.Unlock()
			code, body := getWith(ctx, httpc, gw+"/api/v1/applications/"+name)
			res.count("get", code, body, "")
		default:
			url := gw + "/api/v1/applications?limit=50"
			if s := statuses[rng.IntN(len(statuses))]; s != "" {
				url += "&status=" + s
			}
			code, body := getWith(ctx, httpc, url)
			res.count("list", code, body, "")
		}
	}
}

func getWith(ctx context.Context, httpc *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		data = nil
	}
	return resp.StatusCode, string(data)
}
