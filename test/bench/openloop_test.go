package main

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestArrivalsAreOnTheClock(t *testing.T) {
	start := time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)
	a := arrivals{start: start, rate: 50}
	for _, c := range []struct {
		i    int
		want time.Duration
	}{{0, 0}, {1, 20 * time.Millisecond}, {50, time.Second}, {125, 2500 * time.Millisecond}} {
		if got := a.due(c.i).Sub(start); got != c.want {
			t.Errorf("call %d due %v after the start, want %v", c.i, got, c.want)
		}
	}
	if got := a.span(1000); got != 20*time.Second {
		t.Errorf("1,000 calls at 50/s span %v, want 20s", got)
	}
}

// Calls start on the clock, not when the previous one ends: 20 calls of 300 ms each at 100/s
// take about 0.5 s in all, where a client waiting for each answer would take 6 s; and none
// starts before it is due.
func TestOpenLoopDoesNotWaitForAnswers(t *testing.T) {
	const n, rate, callTime = 20, 100.0, 300 * time.Millisecond
	var mu sync.Mutex
	started := make([]time.Time, n)
	res := runOpenLoop(context.Background(), n, rate, n, time.Minute, func(ctx context.Context, i int) error {
		mu.Lock()
		started[i] = time.Now()
		mu.Unlock()
		time.Sleep(callTime)
		return nil
	})
	if res.Done != n || res.Dropped != 0 || res.FirstErr != nil {
		t.Fatalf("done %d, dropped %d, error %v; want %d done", res.Done, res.Dropped, res.FirstErr, n)
	}
	if took := res.Elapsed(); took > 3*time.Second {
		t.Errorf("the run took %v: the calls waited for each other", took)
	}
	sched := arrivals{start: res.Start, rate: rate}
	for i, at := range started {
		if early := sched.due(i).Sub(at); early > time.Millisecond {
			t.Errorf("call %d started %v before it was due", i, early)
		}
	}
	for _, l := range res.Latencies {
		if l < callTime {
			t.Errorf("a latency of %v, shorter than the call itself: not counted from the due time", l)
		}
	}
	if res.Offered != rate || res.Scheduled != n {
		t.Errorf("offered %v over %d calls, want %v over %d", res.Offered, res.Scheduled, rate, n)
	}
}

// A call due while maxInFlight calls are unanswered is dropped and counted, never queued.
func TestOpenLoopDropsBeyondItsBound(t *testing.T) {
	release := make(chan struct{})
	timer := time.AfterFunc(2*time.Second, func() { close(release) })
	defer timer.Stop()
	fail := errors.New("refused")
	res := runOpenLoop(context.Background(), 10, 1000, 2, time.Minute, func(ctx context.Context, i int) error {
		<-release
		if i == 1 {
			return fail
		}
		return nil
	})
	if res.Dropped != 8 || res.Done != 1 || res.Failed != 1 {
		t.Errorf("dropped %d, done %d, failed %d; want 8 dropped, 1 done, 1 failed", res.Dropped, res.Done, res.Failed)
	}
	if !errors.Is(res.FirstErr, fail) {
		t.Errorf("first error %v, want the call's", res.FirstErr)
	}
}

// The run stops at its bound; the calls never made are said.
func TestOpenLoopStopsAtItsBound(t *testing.T) {
	res := runOpenLoop(context.Background(), 1000, 10, 100, 300*time.Millisecond, func(ctx context.Context, i int) error { return nil })
	if res.Done >= 1000 || !errors.Is(res.FirstErr, errLoadTimedOut) {
		t.Errorf("done %d, error %v: want the run cut at its bound, said so", res.Done, res.FirstErr)
	}
}
