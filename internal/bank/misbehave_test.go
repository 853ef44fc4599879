package bank_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

// answer returns a handler that always answers status with body and the given headers.
func answer(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hangUp returns a handler that closes the connection without answering; with reset, it
// resets it (RST) instead of closing it (FIN).
func hangUp(reset bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		if reset {
			_ = conn.(*net.TCPConn).SetLinger(0)
		}
		_ = conn.Close()
	}
}

// truncated promises a longer body than it sends, then hangs up.
func truncated(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "100")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"id":`)
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// slow answers after a second, long after the tests' timeout, unless the caller leaves.
func slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(time.Second):
		answer(http.StatusOK, `{}`)(w, r)
	case <-r.Context().Done():
	}
}

func TestErrorClassesFromMisbehavingServers(t *testing.T) {
	inThirtySeconds := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name           string
		handler        http.HandlerFunc
		op             string // "submit" or "get_job"
		wantKind       bank.Kind
		wantStatus     int
		wantMsg        string        // when not empty
		wantRetryAfter time.Duration // within two seconds: an HTTP date keeps whole seconds, and the test takes time
		wantCode       string        // the code label counted
	}{
		{"slow beyond the timeout is transient", slow, "get_job", bank.KindTransient, 0, "", 0, "timeout"},
		{"a reset connection is transient", hangUp(true), "submit", bank.KindTransient, 0, "", 0, "connection_error"},
		{"a connection closed without answer is transient", hangUp(false), "get_job", bank.KindTransient, 0, "", 0, "connection_error"},
		{"a body cut short is transient", truncated, "get_job", bank.KindTransient, 200, "", 0, "connection_error"},
		{"a garbage 200 is transient", answer(200, `<html>hello</html>`), "get_job", bank.KindTransient, 200, "", 0, "invalid_response"},
		{"a 201 without id and status is transient", answer(201, `{"first_name":"Ada"}`),
			"submit", bank.KindTransient, 201, "", 0, "invalid_response"},
		{"a 200 job without id is transient", answer(200, `{"status":"pending"}`),
			"get_job", bank.KindTransient, 200, "", 0, "invalid_response"},
		{"a 200 job with an unknown status is transient",
			answer(200, `{"id":"1","application_id":"2","status":"approved"}`), "get_job", bank.KindTransient, 200, "", 0, "invalid_response"},
		{"429 with Retry-After in seconds is throttled", answer(429, `{"error":"slow down"}`, "Retry-After", "7"),
			"submit", bank.KindThrottled, 429, "slow down", 7 * time.Second, "429"},
		{"429 with Retry-After as a date is throttled", answer(429, ``, "Retry-After", inThirtySeconds),
			"get_job", bank.KindThrottled, 429, "Too Many Requests", 30 * time.Second, "429"},
		{"429 without Retry-After is throttled", answer(429, `too many`), "get_job", bank.KindThrottled, 429, "too many", 0, "429"},
		{"429 with Retry-After in the year 9999 saturates, never wraps", answer(429, ``, "Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),
			"get_job", bank.KindThrottled, 429, "", math.MaxInt64, "429"},
		{"429 with billions of seconds saturates, never wraps", answer(429, ``, "Retry-After", "99999999999999999999"),
			"submit", bank.KindThrottled, 429, "", math.MaxInt64, "429"},
		{"a job about another application is transient, not a decision",
			answer(200, `{"id":"1","application_id":"`+uuid.NewString()+`","status":"completed"}`), "get_job", bank.KindTransient, 200, "", 0,
			"invalid_response"},
		{"418 is refused with its message", answer(418, `{"error":"I'm a teapot"}`),
			"submit", bank.KindRefused, 418, "I'm a teapot", 0, "418"},
		{"401 from a proxy is refused", answer(401, `Unauthorized`), "submit", bank.KindRefused, 401, "Unauthorized", 0, "401"},
		{"403 from a proxy is refused", answer(403, ``), "get_job", bank.KindRefused, 403, "Forbidden", 0, "403"},
		{"404 to a submission is refused, not not-found", answer(404, `no route`), "submit", bank.KindRefused, 404, "no route", 0, "404"},
		{"the duplicate 400 is already submitted", answer(400, `{"error":"the application ID is already used"}`),
			"submit", bank.KindAlreadyUsed, 400, "the application ID is already used", 0, "400"},
		{"another 400 is an invalid payload", answer(400, `{"error":"the request payload is not valid."}`),
			"submit", bank.KindInvalidPayload, 400, "the request payload is not valid.", 0, "400"},
		{"404 is not found", answer(404, `{"error":"failed to get job, the application_id doesn't exist."}`),
			"get_job", bank.KindNotFound, 404, "failed to get job, the application_id doesn't exist.", 0, "404"},
		{"408 from a proxy is transient", answer(408, ``), "submit", bank.KindTransient, 408, "", 0, "408"},
		{"500 is transient", answer(500, `{"error":"boom"}`), "submit", bank.KindTransient, 500, "boom", 0, "500"},
		{"502 with an HTML page is transient", answer(502, `<html>bad gateway</html>`), "get_job", bank.KindTransient, 502, "", 0, "502"},
		{"a redirect is transient, not followed", answer(302, ``, "Location", "/elsewhere"), "submit", bank.KindTransient, 302, "", 0, "302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := httptest.NewServer(tt.handler)
			t.Cleanup(server.Close)
			c := newClient(t, server.URL, bank.Options{Timeout: 100 * time.Millisecond})
			before := requestCount(t, tt.op, tt.wantCode)

			be := bankError(t, call(c, tt.op))
			switch {
			case be.Kind != tt.wantKind || be.StatusCode != tt.wantStatus || be.Op != tt.op:
				t.Errorf("%v: class %q status %d op %s, want %q %d %s", be, be.Kind, be.StatusCode, be.Op, tt.wantKind, tt.wantStatus, tt.op)
			case tt.wantMsg != "" && be.Message != tt.wantMsg:
				t.Errorf("message %q, want %q", be.Message, tt.wantMsg)
			case (be.RetryAfter - tt.wantRetryAfter).Abs() > 2*time.Second:
				t.Errorf("retry after %v, want %v", be.RetryAfter, tt.wantRetryAfter)
			}
			if _, given := bank.RetryAfter(be); given != (tt.wantRetryAfter > 0) {
				t.Errorf("bank.RetryAfter says given=%v, want %v", given, tt.wantRetryAfter > 0)
			}
			if got := requestCount(t, tt.op, tt.wantCode); got != before+1 {
				t.Errorf("loan_bank_requests_total{%s,%s} went from %v to %v, want +1", tt.op, tt.wantCode, before, got)
			}
		})
	}
}

// call makes the call op with a fresh id.
func call(c *bank.Client, op string) error {
	if op == "submit" {
		_, err := c.Submit(context.Background(), bank.Application{ID: uuid.NewString()})
		return err
	}
	_, err := c.GetJob(context.Background(), uuid.NewString())
	return err
}

func TestRefusedConnectionIsTransient(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	_ = listener.Close() // nothing listens there any more
	c := newClient(t, "http://"+addr, bank.Options{})
	if be := bankError(t, call(c, "get_job")); be.Kind != bank.KindTransient || be.StatusCode != 0 {
		t.Errorf("class %q status %d, want transient without status", be.Kind, be.StatusCode)
	}
}

func TestConnectionsAreKeptAliveAcrossAnswers(t *testing.T) {
	sim := banksim.New(banksim.Config{})
	server := httptest.NewUnstartedServer(sim.Handler())
	var opened atomic.Int64
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			opened.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	c := newClient(t, server.URL, bank.Options{})
	for range 20 { // 201s, then 400s and 404s: every body is drained, whatever the answer
		_ = call(c, "submit")
		_, _ = c.Submit(context.Background(), bank.Application{ID: "not-a-uuid"})
		_ = call(c, "get_job")
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("%d connections opened for 60 sequential calls, want 1", n)
	}
}

func TestRateLimiterHonoursQPS(t *testing.T) {
	_, url := newSim(t, banksim.Config{})
	c := newClient(t, url, bank.Options{QPS: 20, Burst: 1})
	start := time.Now()
	for range 6 {
		_ = call(c, "get_job")
	}
	// The first call uses the burst; the next five wait 50ms each.
	if took := time.Since(start); took < 240*time.Millisecond || took > 2*time.Second {
		t.Errorf("6 calls at 20 QPS took %v, want about 250ms", took)
	}
}

func TestRateLimiterGivesUpWithTheContext(t *testing.T) {
	sim, url := newSim(t, banksim.Config{})
	c := newClient(t, url, bank.Options{QPS: 0.1}) // one call, then one every 10 seconds
	_ = call(c, "get_job")

	deadlineCtx, cancelDeadline := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelDeadline()
	cancelCtx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	for name, ctx := range map[string]context.Context{"deadline": deadlineCtx, "canceled": cancelCtx} {
		start := time.Now()
		_, err := c.GetJob(ctx, uuid.NewString())
		if took := time.Since(start); !bank.IsTransient(err) || took > time.Second {
			t.Errorf("%s: %v after %v, want transient within the context's life", name, err, took)
		}
	}
	if polls := sim.Stats().JobPolls; polls != 1 {
		t.Errorf("the bank saw %d polls, want only the first", polls)
	}
	if _, err := c.GetJob(cancelCtx, uuid.NewString()); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestConcurrentCallsShareTheClient(t *testing.T) {
	sim, url := newSim(t, banksim.Config{})
	c := newClient(t, url, bank.Options{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			app := bank.Application{ID: uuid.NewString()}
			if _, err := c.Submit(context.Background(), app); err != nil {
				t.Error(err)
				return
			}
			for range 10 {
				if _, err := c.GetJob(context.Background(), app.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if st := sim.Stats(); st.ApplicationsCreated != 32 || st.JobPolls != 320 {
		t.Errorf("the bank saw %d applications and %d polls, want 32 and 320", st.ApplicationsCreated, st.JobPolls)
	}
}
