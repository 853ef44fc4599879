package banksim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lendo/loan-operator/internal/banksim"
)

// fakeClock is a settable clock, so that decisions are tested without sleeping.
type fakeClock struct{ nanos atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.nanos.Store(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.nanos.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.nanos.Add(int64(d)) }

// newSim serves a simulator over loopback HTTP for the duration of the test.
func newSim(t *testing.T, cfg banksim.Config) (*banksim.Simulator, bankUnderTest) {
	t.Helper()
	sim := banksim.New(cfg)
	server := httptest.NewServer(sim.Handler())
	t.Cleanup(server.Close)
	return sim, bankUnderTest{url: server.URL, sim: sim, maxDecisionDelay: cfg.MaxDelay}
}

// sequentialIDs returns n UUIDs that differ in one byte only, the worst case for sharding.
func sequentialIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012x", i)
	}
	return ids
}

func TestDecisionsFollowTheApproveRatio(t *testing.T) {
	tests := []struct {
		name                     string
		ratio                    float64
		minApproved, maxApproved int // of 200
	}{
		{"RejectAll approves none", banksim.RejectAll, 0, 0},
		{"a ratio of 1 approves all", 1, 200, 200},
		{"the default approves about half", 0, 70, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			_, bank := newSim(t, banksim.Config{MinDelay: time.Second, MaxDelay: 2 * time.Second,
				ApproveRatio: tt.ratio, Now: clock.Now})
			ids := sequentialIDs(200)
			for _, id := range ids {
				bank.submit(t, id)
			}
			clock.Advance(2 * time.Second)
			approved := 0
			for _, id := range ids {
				if _, status := bank.job(t, id); status == "completed" {
					approved++
				}
			}
			if approved < tt.minApproved || approved > tt.maxApproved {
				t.Errorf("%d of 200 approved, want %d to %d", approved, tt.minApproved, tt.maxApproved)
			}
		})
	}
}

func TestDecisionBecomesVisibleAtItsMomentAndStays(t *testing.T) {
	clock := newFakeClock()
	sim, bank := newSim(t, banksim.Config{MinDelay: time.Second, MaxDelay: 2 * time.Second, Now: clock.Now})
	id := uuid.NewString()
	created := clock.Now()
	bank.submit(t, id)

	clock.Advance(time.Second - time.Millisecond)
	if _, status := bank.job(t, id); status != "pending" {
		t.Fatalf("status before the shortest delay %q, want pending", status)
	}
	if n := len(sim.Stats().Decisions); n != 0 {
		t.Fatalf("%d decisions in the stats before the decision moment, want 0", n)
	}

	clock.Advance(time.Second + time.Millisecond)
	_, decided := bank.job(t, id)
	seen := clock.Now()
	d, ok := sim.Stats().Decisions[id]
	switch {
	case decided != "completed" && decided != "rejected":
		t.Fatalf("status after the longest delay %q", decided)
	case !ok || d.Status != decided:
		t.Fatalf("stats decision %+v, want status %s", d, decided)
	case d.DecidedAt.Before(created.Add(time.Second)) || d.DecidedAt.After(created.Add(2*time.Second)):
		t.Errorf("decided at %v, want within [1s, 2s] after %v", d.DecidedAt, created)
	case d.SeenAt == nil || !d.SeenAt.Equal(seen):
		t.Errorf("seen at %v, want %v, the first poll that answered the decision", d.SeenAt, seen)
	}

	clock.Advance(time.Hour)
	if _, again := bank.job(t, id); again != decided {
		t.Errorf("decided status changed from %s to %s", decided, again)
	}
	if d2 := sim.Stats().Decisions[id]; !d2.SeenAt.Equal(*d.SeenAt) {
		t.Errorf("seen at moved from %v to %v on a later poll", d.SeenAt, d2.SeenAt)
	}
}

// decisionsOf submits ids in the given order to a simulator seeded with seed and returns, for
// each id, its job id, outcome and delay.
func decisionsOf(t *testing.T, seed int64, ids []string) map[string]string {
	t.Helper()
	clock := newFakeClock()
	sim, bank := newSim(t, banksim.Config{MinDelay: time.Second, MaxDelay: time.Minute, Seed: seed, Now: clock.Now})
	for _, id := range ids {
		bank.submit(t, id)
	}
	clock.Advance(time.Minute)
	got := make(map[string]string, len(ids))
	decisions := sim.Stats().Decisions
	for _, id := range ids {
		jobID, status := bank.job(t, id)
		got[id] = fmt.Sprintf("%s %s %v", jobID, status, decisions[id].DecidedAt.Sub(decisions[id].CreatedAt))
	}
	return got
}

func TestSeedReproducesDecisionsWhateverTheOrder(t *testing.T) {
	ids := sequentialIDs(50)
	reversed := make([]string, len(ids))
	for i, id := range ids {
		reversed[len(ids)-1-i] = id
	}
	first, second, otherSeed := decisionsOf(t, 42, ids), decisionsOf(t, 42, reversed), decisionsOf(t, 43, ids)
	for _, id := range ids {
		if first[id] != second[id] {
			t.Errorf("seed 42, %s: %s, then %s", id, first[id], second[id])
		}
		if first[id] == otherSeed[id] {
			t.Errorf("seeds 42 and 43 drew the same for %s: %s", id, first[id])
		}
	}
}

func TestStatsAreStampedWithTheSimulatorsClock(t *testing.T) {
	clock := newFakeClock()
	sim, bank := newSim(t, banksim.Config{Now: clock.Now})
	clock.Advance(90 * time.Second)
	var served banksim.Stats
	_, _, body := send(t, http.MethodGet, bank.url+"/admin/stats?summary=true", "")
	if err := json.Unmarshal(body, &served); err != nil {
		t.Fatalf("GET /admin/stats: %v: %s", err, body)
	}
	for _, st := range []banksim.Stats{sim.Stats(), served} {
		if !st.At.Equal(clock.Now()) {
			t.Errorf("stats read at %v, the simulator's clock says %v", st.At, clock.Now())
		}
	}
}

func TestStatsCountWhatHappened(t *testing.T) {
	sim, bank := newSim(t, banksim.Config{})
	ids := sequentialIDs(3)
	for _, id := range ids {
		bank.submit(t, id)
	}
	send(t, http.MethodPost, bank.url+"/api/applications", applicationJSON(ids[0]))
	bank.job(t, ids[1])
	send(t, http.MethodGet, bank.url+"/api/jobs?application_id="+uuid.NewString(), "")

	var served banksim.Stats
	_, _, body := send(t, http.MethodGet, bank.url+"/admin/stats", "")
	if err := json.Unmarshal(body, &served); err != nil {
		t.Fatalf("GET /admin/stats: %v: %s", err, body)
	}
	for _, st := range []banksim.Stats{sim.Stats(), served} {
		if st.ApplicationsCreated != 3 || st.DuplicatesRefused != 1 || st.JobPolls != 2 {
			t.Errorf("created %d, duplicates %d, polls %d; want 3, 1, 2",
				st.ApplicationsCreated, st.DuplicatesRefused, st.JobPolls)
		}
		if want := map[string]int64{"201": 3, "400": 1, "200": 1, "404": 1}; fmt.Sprint(st.Responses) != fmt.Sprint(want) {
			t.Errorf("responses %v, want %v", st.Responses, want)
		}
		if len(st.Submissions) != 3 || st.Submissions[ids[0]] != 1 {
			t.Errorf("submissions %v, want one for each of %v", st.Submissions, ids)
		}
	}
	_, _, summary := send(t, http.MethodGet, bank.url+"/admin/stats?summary=true", "")
	if bytes.Contains(summary, []byte(`"submissions"`)) || !bytes.Contains(summary, []byte(`"applications_created":3`)) {
		t.Errorf("summary stats %s, want the counts without the per-application maps", summary)
	}
}

// putFaults replaces the faults through the admin endpoint and returns the status.
func putFaults(t *testing.T, bank bankUnderTest, body string) int {
	t.Helper()
	status, _, _ := send(t, http.MethodPut, bank.url+"/admin/faults", body)
	return status
}

func TestFailRateChangedMidRunTakesEffect(t *testing.T) {
	sim, bank := newSim(t, banksim.Config{})
	id := uuid.NewString()
	bank.submit(t, id)
	if status := putFaults(t, bank, `{"fail_rate":1}`); status != http.StatusOK {
		t.Fatalf("PUT /admin/faults: HTTP %d", status)
	}
	if _, _, body := send(t, http.MethodGet, bank.url+"/admin/faults", ""); !bytes.Contains(body, []byte(`"fail_rate":1`)) {
		t.Errorf("GET /admin/faults %s, want fail_rate 1", body)
	}
	for range 10 {
		status, _, _ := send(t, http.MethodGet, bank.url+"/api/jobs?application_id="+id, "")
		if status != http.StatusInternalServerError && status != http.StatusServiceUnavailable {
			t.Fatalf("status %d with fail_rate 1, want 500 or 503", status)
		}
	}
	putFaults(t, bank, `{}`)
	bank.job(t, id) // fails the test unless 200
	if got := sim.Stats().FaultsInjected.Failures; got != 10 {
		t.Errorf("%d failures injected, want 10", got)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	_, bank := newSim(t, banksim.Config{Faults: banksim.Faults{RateLimit: 5}})
	throttled := 0
	for range 10 { // a burst of 5 passes; the rest, sent within milliseconds, cannot
		status, header, body := send(t, http.MethodGet, bank.url+"/api/jobs?application_id="+uuid.NewString(), "")
		if status != http.StatusTooManyRequests {
			continue
		}
		throttled++
		if header.Get("Retry-After") != "1" || !json.Valid(body) {
			t.Errorf("429 with Retry-After %q and body %s, want 1 and JSON", header.Get("Retry-After"), body)
		}
	}
	if throttled < 4 {
		t.Errorf("%d of 10 requests throttled at 5/s, want at least 4", throttled)
	}
}

func TestDropLosesTheAnswerAfterTheBankActed(t *testing.T) {
	sim, bank := newSim(t, banksim.Config{Faults: banksim.Faults{DropRate: 1}})
	id := uuid.NewString()
	resp, err := http.Post(bank.url+"/api/applications", "application/json", strings.NewReader(applicationJSON(id)))
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("HTTP %d with drop_rate 1, want the connection dropped", resp.StatusCode)
	}
	sim.SetFaults(banksim.Faults{})
	status, _, body := send(t, http.MethodPost, bank.url+"/api/applications", applicationJSON(id))
	if status != http.StatusBadRequest || !bytes.Contains(body, []byte("already used")) {
		t.Errorf("resubmission after a drop: HTTP %d %s, want the duplicate 400", status, body)
	}
	if got := sim.Stats().FaultsInjected.Drops; got != 1 {
		t.Errorf("%d drops counted, want 1", got)
	}
}

func TestLatencyDelaysEachAnswer(t *testing.T) {
	_, bank := newSim(t, banksim.Config{})
	putFaults(t, bank, `{"latency":"100ms"}`)
	start := time.Now()
	send(t, http.MethodGet, bank.url+"/api/jobs", "")
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("answer after %v with latency 100ms", took)
	}
}

func TestInvalidFaultsAreRefusedAndChangeNothing(t *testing.T) {
	_, bank := newSim(t, banksim.Config{Faults: banksim.Faults{FailRate: 0.25}})
	for _, body := range []string{
		`{"fail_rate":1.5}`, `{"drop_rate":-0.1}`, `{"rate_limit":-1}`, `{"latency":"-1s"}`,
		`{"latency":"fast"}`, `{"latency":100}`, `{"fail_rat":1}`, `not json`,
	} {
		if status := putFaults(t, bank, body); status != http.StatusBadRequest {
			t.Errorf("PUT /admin/faults %s: HTTP %d, want 400", body, status)
		}
	}
	if _, _, got := send(t, http.MethodGet, bank.url+"/admin/faults", ""); string(got) !=
		`{"fail_rate":0.25,"latency":"0s","rate_limit":0,"drop_rate":0}` {
		t.Errorf("faults after refused changes %s", got)
	}
}

func TestResetForgetsEverything(t *testing.T) {
	sim, bank := newSim(t, banksim.Config{})
	id := uuid.NewString()
	bank.submit(t, id)
	if status, _, _ := send(t, http.MethodPost, bank.url+"/admin/reset", ""); status != http.StatusNoContent {
		t.Fatalf("POST /admin/reset: HTTP %d", status)
	}
	if status, _, _ := send(t, http.MethodGet, bank.url+"/api/jobs?application_id="+id, ""); status != http.StatusNotFound {
		t.Errorf("poll after reset: HTTP %d, want 404", status)
	}
	if st := sim.Stats(); st.ApplicationsCreated != 0 || len(st.Submissions) != 0 || st.JobPolls != 1 {
		t.Errorf("stats after reset %+v, want only the one poll since", st)
	}
	bank.submit(t, id) // the same id is new again
}

func TestDocsDescribeTheAPI(t *testing.T) {
	_, bank := newSim(t, banksim.Config{})
	status, _, page := send(t, http.MethodGet, bank.url+"/docs", "")
	if status != http.StatusOK || !bytes.Contains(page, []byte(`href="/openapi.json"`)) {
		t.Errorf("GET /docs: HTTP %d %s", status, page)
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	_, _, body := send(t, http.MethodGet, bank.url+"/openapi.json", "")
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	for _, path := range []string{"/api/applications", "/api/jobs", "/admin/stats", "/admin/faults", "/admin/assessment", "/admin/reset"} {
		if doc.Paths[path] == nil {
			t.Errorf("GET /openapi.json does not describe %s", path)
		}
	}
}

func TestConcurrentSubmissionsOfOneIDCreateItOnce(t *testing.T) {
	sim, bank := newSim(t, banksim.Config{})
	id := uuid.NewString()
	var created atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := http.Post(bank.url+"/api/applications", "application/json", strings.NewReader(applicationJSON(id)))
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if st := sim.Stats(); created.Load() != 1 || st.ApplicationsCreated != 1 || st.DuplicatesRefused != 19 {
		t.Errorf("%d answered 201, stats created %d and refused %d; want 1, 1, 19",
			created.Load(), st.ApplicationsCreated, st.DuplicatesRefused)
	}
}

// lockedBuffer is a log sink the server's goroutines and the test can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRequestsAreLoggedOnlyWhenAsked(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		var logs lockedBuffer
		_, bank := newSim(t, banksim.Config{LogRequests: enabled, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		send(t, http.MethodGet, bank.url+"/api/jobs", "")
		if logged := strings.Contains(logs.String(), "uri=/api/jobs status=400"); logged != enabled {
			t.Errorf("LogRequests %v: log %q", enabled, logs.String())
		}
	}
}

func TestForcedAnswersReplaceTheChosenOperationOnly(t *testing.T) {
	const year9999 = "Fri, 31 Dec 9999 23:59:59 GMT"
	sim, bank := newSim(t, banksim.Config{})
	put := func(body string) int {
		status, _, _ := send(t, http.MethodPut, bank.url+"/admin/faults", body)
		return status
	}
	if status := put(`{"answer":{"rate":1,"operation":"poll","status":429,"retry_after":"` + year9999 + `"}}`); status != http.StatusOK {
		t.Fatalf("PUT /admin/faults: HTTP %d", status)
	}
	id := uuid.NewString()
	if status, _, body := send(t, http.MethodPost, bank.url+"/api/applications", applicationJSON(id)); status != http.StatusCreated {
		t.Errorf("a submission while polls are forced: HTTP %d %s", status, body)
	}
	status, header, body := send(t, http.MethodGet, bank.url+"/api/jobs?application_id="+id, "")
	if status != http.StatusTooManyRequests || header.Get("Retry-After") != year9999 || string(body) != `{"error":"Too Many Requests"}` {
		t.Errorf("a forced poll: HTTP %d, Retry-After %q, %s", status, header.Get("Retry-After"), body)
	}

	sim.SetFaults(banksim.Faults{Answer: banksim.ForcedAnswer{Rate: 1, Operation: banksim.OperationSubmit, Status: 401, Body: "Unauthorized"}})
	status, _, body = send(t, http.MethodPost, bank.url+"/api/applications", applicationJSON(uuid.NewString()))
	if status != http.StatusUnauthorized || string(body) != "Unauthorized" {
		t.Errorf("a forced submission: HTTP %d %s", status, body)
	}
	if got := sim.Stats().FaultsInjected.Forced; got != 2 {
		t.Errorf("%d forced answers counted, want 2", got)
	}
	for _, bad := range []string{`{"answer":{"rate":2,"status":401}}`, `{"answer":{"rate":1,"status":99}}`,
		`{"answer":{"rate":1,"status":401,"operation":"delete"}}`} {
		if status := put(bad); status != http.StatusBadRequest {
			t.Errorf("PUT /admin/faults %s: HTTP %d, want 400", bad, status)
		}
	}
}
