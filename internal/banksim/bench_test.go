package banksim_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
)

// loadedApplications is how many applications the benchmark's bank holds: the size the
// simulator is built for.
const loadedApplications = 100_000

// loadedSimulator returns a simulator holding loadedApplications, created once for all runs
// of the benchmark through the handler itself (no network: the benchmark measures polls).
var loadedSimulator = sync.OnceValues(func() (*banksim.Simulator, []string) {
	sim := banksim.New(banksim.Config{Seed: 1})
	handler := sim.Handler()
	ids := make([]string, loadedApplications)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, rand.Uint64()>>16)
		req := httptest.NewRequest(http.MethodPost, "/api/applications",
			strings.NewReader(`{"id":"`+ids[i]+`","first_name":"Ada","last_name":"Lovelace"}`))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			panic(fmt.Sprintf("seeding %s: HTTP %d %s", ids[i], rec.Code, rec.Body))
		}
	}
	return sim, ids
})

// BenchmarkJobPoll polls random applications of a loaded simulator over real loopback HTTP
// with keep-alive connections, 32 pollers per core, and reports the polls per second.
func BenchmarkJobPoll(b *testing.B) {
	sim, ids := loadedSimulator()
	server := httptest.NewServer(sim.Handler())
	defer server.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[rand.IntN(len(ids))]
			resp, err := client.Get(server.URL + "/api/jobs?application_id=" + id)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "polls/s")
	if created := sim.Stats().ApplicationsCreated; created != loadedApplications {
		b.Errorf("the bank holds %d applications, want %d", created, loadedApplications)
	}
}
