package gateway

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// Load-shedding defaults: the gateway answers 429 or 503 with Retry-After above these, instead
// of queueing work without bound.
const (
	DefaultMaxInflightCreates = 512
	DefaultMaxWaiters         = 10_000
	DefaultMaxStreams         = 1_000
	// DefaultFallbackGetsPerSecond bounds the GETs of ids the cache does not hold that go on to
	// the API server (a GET right after a create, before the watch delivers it).
	DefaultFallbackGetsPerSecond = 100
)

// slots counts what is in flight against a bound; taking a slot never waits.
type slots struct {
	max   int64
	inUse atomic.Int64
}

func newSlots(maxInUse int) *slots {
	return &slots{max: int64(maxInUse)}
}

// tryAcquire takes a slot, or answers false when all are taken.
func (s *slots) tryAcquire() bool {
	if s.inUse.Add(1) > s.max {
		s.inUse.Add(-1)
		return false
	}
	return true
}

func (s *slots) release() { s.inUse.Add(-1) }

// tooBusy is a 429 or 503 that asks the client to come back in a second.
func tooBusy(status int, detail string) *problem {
	p := newProblem(status, detail)
	p.retryAfter = 1
	return p
}

// errFallbackBusy is the answer of a fallback read above its rate.
var errFallbackBusy = tooBusy(http.StatusServiceUnavailable,
	"too many reads of applications the gateway has not seen yet; retry in a moment")

// fallbackReads bounds the reads that go past the cache to the API server: one call per id at a
// time (the others for the same id share its answer) and a global rate, so that a flood of
// random ids costs the API server at most that rate, not --kube-api-qps.
type fallbackReads struct {
	limiter *rate.Limiter
	mu      sync.Mutex
	calls   map[string]*fallbackCall
}

type fallbackCall struct {
	done chan struct{}
	app  *loansv1alpha1.LoanApplication
	err  error
}

func newFallbackReads(perSecond int) *fallbackReads {
	return &fallbackReads{limiter: rate.NewLimiter(rate.Limit(perSecond), perSecond), calls: map[string]*fallbackCall{}}
}

// get reads name with read, sharing a call in flight for the same name; errFallbackBusy when
// the rate is spent. Each caller waits for the shared answer or its own context, whichever comes
// first.
func (f *fallbackReads) get(ctx context.Context, name string,
	read func(context.Context, string) (*loansv1alpha1.LoanApplication, error)) (*loansv1alpha1.LoanApplication, error) {
	f.mu.Lock()
	call, ok := f.calls[name]
	if !ok {
		if !f.limiter.Allow() {
			f.mu.Unlock()
			return nil, errFallbackBusy
		}
		call = &fallbackCall{done: make(chan struct{})}
		f.calls[name] = call
		go f.run(ctx, name, call, read)
	}
	f.mu.Unlock()
	select {
	case <-call.done:
		return call.app, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run makes the shared read. It serves every caller that joins it, so the one that started it
// going away must not cancel it for the others: it keeps that caller's deadline only.
func (f *fallbackReads) run(ctx context.Context, name string, call *fallbackCall,
	read func(context.Context, string) (*loansv1alpha1.LoanApplication, error)) {
	readCtx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		readCtx, cancel = context.WithDeadline(readCtx, deadline)
	}
	defer cancel()
	call.app, call.err = read(readCtx, name)
	f.mu.Lock()
	delete(f.calls, name)
	f.mu.Unlock()
	close(call.done)
}
