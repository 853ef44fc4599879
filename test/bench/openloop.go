package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// arrivals is an open-loop schedule: call i is due at start + i/rate, whether or not the calls
// before it have ended. A closed loop (a fixed number of clients, each waiting for its answer)
// slows down with the system it measures and so never shows it overloaded; users arrive on
// their own clock.
type arrivals struct {
	start time.Time
	// rate is calls per second.
	rate float64
}

// due is when call i is due.
func (a arrivals) due(i int) time.Time {
	return a.start.Add(time.Duration(float64(i) / a.rate * float64(time.Second)))
}

// span is how long the schedule of count calls lasts: count/rate.
func (a arrivals) span(count int) time.Duration {
	return time.Duration(float64(count) / a.rate * float64(time.Second))
}

// lateTolerance is how far behind its due time a call may start and still count as on time:
// the dispatcher's own timer on a busy machine.
const lateTolerance = 100 * time.Millisecond

// openLoopResult is what an open-loop run measured. Latencies run from each call's due time, so
// that a call the client could only start late counts its wait (no coordinated omission).
type openLoopResult struct {
	loadResult
	// Offered is the rate asked for, calls per second.
	Offered float64
	// Scheduled counts the calls of the schedule; Dropped those not made because maxInFlight
	// calls were already waiting at their due time.
	Scheduled, Dropped int
	// Late counts the calls that started more than lateTolerance after their due time; MaxLate
	// is the most any started after it.
	Late    int
	MaxLate time.Duration
}

// achieved is the rate of successful calls, from the first due time to the last answer.
func (r openLoopResult) achieved() reading { return r.rate() }

// describe says in words what the run offered and what came of it, for a figure's note.
func (r openLoopResult) describe() string {
	return fmt.Sprintf("open loop: %d calls offered at %.0f/s over %s; %d succeeded, %d failed, %d dropped (in flight at the bound), "+
		"%d started more than %s late (at most %s)", r.Scheduled, r.Offered, r.schedule().Round(100*time.Millisecond),
		r.Done, r.Failed, r.Dropped, r.Late, lateTolerance, r.MaxLate.Round(time.Millisecond))
}

func (r openLoopResult) schedule() time.Duration {
	return arrivals{rate: r.Offered}.span(r.Scheduled)
}

// runOpenLoop makes count calls, call i at its due time on an arrivals schedule at `rate` per
// second, each in its own goroutine, with at most maxInFlight unanswered at once: a call due
// while maxInFlight are in flight is dropped and counted, never queued, so the client cannot
// turn back into a closed loop. Everything stops when ctx ends or `bound` passes.
func runOpenLoop(ctx context.Context, count int, rate float64, maxInFlight int, bound time.Duration,
	call func(ctx context.Context, i int) error) openLoopResult {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	sched := arrivals{start: time.Now(), rate: rate}
	res := openLoopResult{Offered: rate, Scheduled: count,
		loadResult: loadResult{Start: sched.start, Latencies: make([]time.Duration, 0, count)}}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = make(chan struct{}, maxInFlight)
		made  int
	)
	for i := range count {
		due := sched.due(i)
		if !sleepUntil(ctx, due) {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			res.Dropped++
			continue
		}
		made++
		if late := time.Since(due); late > lateTolerance {
			res.Late++
			res.MaxLate = max(res.MaxLate, late)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			err := call(ctx, i)
			took := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				if res.FirstErr == nil {
					res.FirstErr = fmt.Errorf("call %d: %w", i, err)
				}
				return
			}
			res.Latencies = append(res.Latencies, took)
		})
	}
	wg.Wait()
	res.End = time.Now()
	res.Done = len(res.Latencies)
	if made+res.Dropped < count && res.FirstErr == nil {
		res.FirstErr = fmt.Errorf("%w (%s): %d of %d calls due", errLoadTimedOut, bound, made+res.Dropped, count)
	}
	return res
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// reportArrivals adds what an open loop offered and what it achieved.
func (r *Report) reportArrivals(sc string, load openLoopResult) {
	r.add(sc, "offered arrival rate", load.Offered, "/s", load.describe())
	r.addReading(sc, "achieved creation rate through the gateway", load.achieved(), "/s",
		"creates answered / (first due time -> last answer)")
	r.add(sc, "creates dropped (in flight at the bound)", float64(load.Dropped), "", "bound: "+fmt.Sprint(maxInFlightCreates)+" in flight")
	r.add(sc, "creates started late", float64(load.Late), "", "more than "+lateTolerance.String()+" after their due time")
}
