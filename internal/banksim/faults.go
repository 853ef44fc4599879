package banksim

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// faultState is one immutable set of faults with the limiter that enforces its RateLimit.
// SetFaults swaps it whole, so the hot path reads it with one atomic load.
type faultState struct {
	Faults
	limiter    *rate.Limiter // nil when RateLimit is off
	retryAfter string        // whole seconds until the limiter has a token again
}

func newFaultState(f Faults) *faultState {
	fs := &faultState{Faults: f}
	if f.RateLimit > 0 {
		fs.limiter = rate.NewLimiter(rate.Limit(f.RateLimit), max(1, int(f.RateLimit)))
		fs.retryAfter = strconv.Itoa(max(1, int(math.Ceil(1/f.RateLimit))))
	}
	return fs
}

// preempt returns the answer that replaces the bank's own when a fault strikes before any
// processing: throttling first (a rate limiter sits in front of a service), then failures.
func (fs *faultState) preempt(op string, counts *counters) (answer, bool) {
	if fs.limiter != nil && !fs.limiter.Allow() {
		counts.throttled.Add(1)
		ans := errorAnswer(http.StatusTooManyRequests, "too many requests")
		ans.retryAfter = fs.retryAfter
		return ans, true
	}
	if fs.FailRate > 0 && rand.Float64() < fs.FailRate {
		counts.failures.Add(1)
		if rand.IntN(2) == 0 {
			return errorAnswer(http.StatusInternalServerError, "internal server error"), true
		}
		return errorAnswer(http.StatusServiceUnavailable, "service unavailable"), true
	}
	if forced := fs.Answer; forced.Rate > 0 && (forced.Operation == "" || forced.Operation == op) && rand.Float64() < forced.Rate {
		counts.forced.Add(1)
		return forced.answer(), true
	}
	return answer{}, false
}

// answer is the forced answer as the simulator writes it.
func (a ForcedAnswer) answer() answer {
	ans := errorAnswer(a.Status, http.StatusText(a.Status))
	if a.Body != "" {
		ans.body, ans.raw = nil, []byte(a.Body)
	}
	ans.retryAfter = a.RetryAfter
	return ans
}

// api wraps a handler of the bank API with the faults: preemptive errors, then the handler,
// then the extra latency, then either a dropped connection or the answer.
func (s *Simulator) api(op string, handle func(*http.Request, *lifetime) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		life, faults := s.life.Load(), s.faults.Load()
		ans, preempted := faults.preempt(op, &life.counts)
		if !preempted {
			ans = handle(r, life)
		}
		if faults.Latency > 0 {
			life.counts.delayed.Add(1)
			if !sleep(r.Context(), time.Duration(faults.Latency)) {
				return // the caller left; nobody to answer
			}
		}
		if faults.DropRate > 0 && rand.Float64() < faults.DropRate {
			life.counts.drops.Add(1)
			dropConnection(w)
			return
		}
		life.counts.countResponse(ans.status)
		if ans.retryAfter != "" {
			w.Header().Set("Retry-After", ans.retryAfter)
		}
		if ans.raw != nil {
			w.WriteHeader(ans.status)
			_, _ = w.Write(ans.raw)
			return
		}
		writeJSON(w, ans.status, ans.body)
	}
}

// sleep waits for d unless ctx ends first, and reports whether it waited in full.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dropConnection closes the connection without a byte of answer. Half of the drops reset the
// connection (RST, "connection reset by peer") and half close it (FIN, an unexpected EOF),
// the two ways a network loses an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil { // not HTTP/1: abort the stream instead
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok && rand.IntN(2) == 0 {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
