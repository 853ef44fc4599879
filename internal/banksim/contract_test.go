package banksim_test

// The contract suite: every case of the bank contract (docs/design.md), with each status code and error
// string exactly. It runs against an in-process simulator, or against any bank at all when
// BANK_URL is set (for example BANK_URL=http://127.0.0.1:8000 with the real image running):
// then it uses only the documented API and the real bank's delays.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lendo/loan-operator/internal/banksim"
)

// bankUnderTest is the bank a test talks to.
type bankUnderTest struct {
	url string
	// sim is the in-process simulator, nil for an external bank (BANK_URL): checks of
	// undocumented details (compact bodies, stable job ids) run on the simulator only.
	sim *banksim.Simulator
	// maxDecisionDelay bounds how long the bank takes to decide.
	maxDecisionDelay time.Duration
}

// startBank returns the bank at BANK_URL, or a simulator configured by cfg served over real
// loopback HTTP for the duration of the test.
func startBank(t *testing.T, cfg banksim.Config) bankUnderTest {
	t.Helper()
	if url := os.Getenv("BANK_URL"); url != "" {
		return bankUnderTest{url: strings.TrimSuffix(url, "/"), maxDecisionDelay: banksim.DefaultMaxDelay}
	}
	sim := banksim.New(cfg)
	server := httptest.NewServer(sim.Handler())
	t.Cleanup(server.Close)
	maxDelay := cfg.MaxDelay
	if maxDelay == 0 {
		maxDelay = banksim.DefaultMaxDelay
	}
	return bankUnderTest{url: server.URL, sim: sim, maxDecisionDelay: maxDelay}
}

// send makes one request and returns the status, the header and the whole body.
func send(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, data
}

func applicationJSON(id string) string {
	return `{"id":"` + id + `","first_name":"Ada","last_name":"Lovelace"}`
}

// submit creates the application id and fails the test unless the bank answers 201.
func (b bankUnderTest) submit(t *testing.T, id string) {
	t.Helper()
	if status, _, body := send(t, http.MethodPost, b.url+"/api/applications", applicationJSON(id)); status != http.StatusCreated {
		t.Fatalf("submitting %s: HTTP %d %s", id, status, body)
	}
}

// job polls the job of id and fails the test unless the bank answers 200 with a job.
func (b bankUnderTest) job(t *testing.T, id string) (jobID, status string) {
	t.Helper()
	code, _, body := send(t, http.MethodGet, b.url+"/api/jobs?application_id="+id, "")
	var job struct{ ID, ApplicationID, Status string }
	if code != http.StatusOK || json.Unmarshal(body, &job) != nil {
		t.Fatalf("polling %s: HTTP %d %s", id, code, body)
	}
	return job.ID, job.Status
}

// uuidPattern matches a job id in an expected body.
const uuidPattern = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

// checkBody compares a body with the documented one. want is compact JSON in which {id}
// stands for the application id and {job} for any UUID. The comparison is on the compacted
// body, so that it holds for a bank that indents or ends with a newline; the simulator must
// already be compact, without a trailing newline.
func checkBody(t *testing.T, got []byte, want, id string, strict bool) {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if strict && !bytes.Equal(compact.Bytes(), got) {
		t.Errorf("body %q is not compact JSON without a trailing newline", got)
	}
	pattern := regexp.QuoteMeta(strings.ReplaceAll(want, "{id}", id))
	pattern = "^" + strings.ReplaceAll(pattern, regexp.QuoteMeta("{job}"), uuidPattern) + "$"
	if !regexp.MustCompile(pattern).Match(compact.Bytes()) {
		t.Errorf("body\n got %s\nwant %s", compact.Bytes(), strings.ReplaceAll(want, "{id}", id))
	}
}

func TestContract(t *testing.T) {
	bank := startBank(t, banksim.Config{}) // the real bank's delays: nothing decides during the suite
	const (
		invalidPayload = `{"error":"the request payload is not valid."}`
		alreadyUsed    = `{"error":"the application ID is already used"}`
		missingAppID   = `{"error":"application_id is missing"}`
		invalidAppID   = `{"error":"application_id is not a valid uuid"}`
		unknownAppID   = `{"error":"failed to get job, the application_id doesn't exist."}`
	)
	tests := []struct {
		name       string
		submitted  bool   // whether the application {id} is created before the request
		method     string // the request; {id} in path and body is a fresh UUID
		path       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"a new application is created pending", false, http.MethodPost, "/api/applications",
			applicationJSON("{id}"), http.StatusCreated,
			`{"id":"{id}","first_name":"Ada","last_name":"Lovelace","status":"pending"}`},
		{"a second submission of an id is refused as already used", true, http.MethodPost, "/api/applications",
			applicationJSON("{id}"), http.StatusBadRequest, alreadyUsed},
		{"a body that is not JSON is not valid", false, http.MethodPost, "/api/applications",
			`{"id": "{id}", "first_name": `, http.StatusBadRequest, invalidPayload},
		{"an empty body is not valid", false, http.MethodPost, "/api/applications",
			``, http.StatusBadRequest, invalidPayload},
		{"an id that is not a UUID is not valid", false, http.MethodPost, "/api/applications",
			applicationJSON("not-a-uuid"), http.StatusBadRequest, invalidPayload},
		{"an application without id is not valid", false, http.MethodPost, "/api/applications",
			`{"first_name":"Ada","last_name":"Lovelace"}`, http.StatusBadRequest, invalidPayload},
		{"the job of a new application is pending", true, http.MethodGet, "/api/jobs?application_id={id}",
			``, http.StatusOK, `{"id":"{job}","application_id":"{id}","status":"pending"}`},
		{"a job request without application_id is refused", false, http.MethodGet, "/api/jobs",
			``, http.StatusBadRequest, missingAppID},
		{"a job request with an empty application_id is refused", false, http.MethodGet, "/api/jobs?application_id=",
			``, http.StatusBadRequest, missingAppID},
		{"a job request for an id that is not a UUID is refused", false, http.MethodGet,
			"/api/jobs?application_id=not-a-uuid", ``, http.StatusBadRequest, invalidAppID},
		{"the job of an unknown application is not found", false, http.MethodGet, "/api/jobs?application_id={id}",
			``, http.StatusNotFound, unknownAppID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.NewString()
			if tt.submitted {
				bank.submit(t, id)
			}
			status, header, body := send(t, tt.method, bank.url+strings.ReplaceAll(tt.path, "{id}", id),
				strings.ReplaceAll(tt.body, "{id}", id))
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			checkBody(t, body, tt.wantBody, id, bank.sim != nil)
		})
	}
}

// TestContractDecision checks the behaviour over time: pending first, then completed or
// rejected within the bank's delay, and never changing again. Against the real bank it takes
// up to its 20 seconds.
func TestContractDecision(t *testing.T) {
	t.Parallel()
	bank := startBank(t, banksim.Config{MinDelay: 50 * time.Millisecond, MaxDelay: 150 * time.Millisecond})
	id := uuid.NewString()
	bank.submit(t, id)
	firstJobID, status := bank.job(t, id)
	if status != "pending" {
		t.Fatalf("status right after submission %q, want pending", status)
	}

	pollEvery := bank.maxDecisionDelay / 40
	deadline := time.Now().Add(bank.maxDecisionDelay + 5*time.Second)
	for status == "pending" && time.Now().Before(deadline) {
		time.Sleep(pollEvery)
		_, status = bank.job(t, id)
	}
	if status != "completed" && status != "rejected" {
		t.Fatalf("status %q after the longest delay, want completed or rejected", status)
	}
	for range 5 {
		time.Sleep(pollEvery)
		jobID, again := bank.job(t, id)
		if again != status {
			t.Fatalf("decided status changed from %q to %q", status, again)
		}
		if bank.sim != nil && jobID != firstJobID { // undocumented, so checked on the simulator only
			t.Fatalf("job id changed from %s to %s", firstJobID, jobID)
		}
	}
}
