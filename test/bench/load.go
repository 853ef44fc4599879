package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a bounded load run measured.
type loadResult struct {
	// Done counts the calls that succeeded; Failed those that returned an error.
	Done, Failed int
	// Latencies are the durations of the successful calls.
	Latencies []time.Duration
	// Start is when the first call began; End when the last one ended.
	Start, End time.Time
	// FirstErr is the first error a call returned, to say why calls failed.
	FirstErr error
}

// Elapsed is the wall time from the first call to the end of the last.
func (r loadResult) Elapsed() time.Duration { return r.End.Sub(r.Start) }

// Rate is successful calls per second of wall time.
func (r loadResult) Rate() float64 {
	if r.Elapsed() <= 0 {
		return 0
	}
	return float64(r.Done) / r.Elapsed().Seconds()
}

// rate is Rate as a reading: a run with no successful call measures no rate.
func (r loadResult) rate() reading {
	if r.Done == 0 || r.Elapsed() <= 0 {
		return notMeasured("no call succeeded")
	}
	return measured(r.Rate())
}

// errLoadTimedOut reports a load run that did not finish its count within its time bound.
var errLoadTimedOut = errors.New("the load did not finish within its time bound")

// runLoad calls call(i) for i in [0, count) from `concurrency` goroutines, and stops early when
// ctx ends or `bound` passes: every load loop of the benchmark is bounded in count and time.
func runLoad(ctx context.Context, count, concurrency int, bound time.Duration, call func(ctx context.Context, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
		result   = loadResult{Latencies: make([]time.Duration, 0, count)}
		failures int
	)
	result.Start = time.Now()
	for range min(concurrency, count) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				began := time.Now()
				err := call(ctx, i)
				took := time.Since(began)
				mu.Lock()
				if err != nil {
					failures++
					if result.FirstErr == nil {
						result.FirstErr = fmt.Errorf("call %d: %w", i, err)
					}
				} else {
					result.Latencies = append(result.Latencies, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	result.End = time.Now()
	result.Done, result.Failed = len(result.Latencies), failures
	if result.Done+result.Failed < count && result.FirstErr == nil {
		result.FirstErr = fmt.Errorf("%w (%s): %d of %d calls made", errLoadTimedOut, bound, result.Done+result.Failed, count)
	}
	return result
}

// merge adds another run's calls to r, as one run whose wall time is the sum of both (the runs
// of one side of an interleaved comparison).
func (r loadResult) merge(o loadResult) loadResult {
	if r.Start.IsZero() {
		return o
	}
	out := r
	out.Done += o.Done
	out.Failed += o.Failed
	out.Latencies = append(slices.Clone(r.Latencies), o.Latencies...)
	out.End = out.End.Add(o.Elapsed())
	if out.FirstErr == nil {
		out.FirstErr = o.FirstErr
	}
	return out
}

// percentile is the p-th percentile (0 < p <= 100) of the durations by the nearest-rank method,
// and false when there are none.
func percentile(durations []time.Duration, p float64) (time.Duration, bool) {
	if len(durations) == 0 {
		return 0, false
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)], true
}

// seconds turns a duration into the unit of the report.
func seconds(d time.Duration) float64 { return d.Seconds() }

// sample is a counter's value at a moment.
type sample struct {
	at    time.Time
	value float64
}

// peakRate is the highest increase per second of a sampled counter over any window of at
// least `window`. Fewer than two samples, or samples that span less than one window, measure
// no rate.
func peakRate(samples []sample, window time.Duration) reading {
	peak, windows := 0.0, 0
	j := 0
	for i := range samples {
		for j < len(samples) && samples[j].at.Sub(samples[i].at) < window {
			j++
		}
		if j == len(samples) {
			break
		}
		span := samples[j].at.Sub(samples[i].at).Seconds()
		peak = max(peak, (samples[j].value-samples[i].value)/span)
		windows++
	}
	switch {
	case len(samples) < 2:
		return notMeasured("%d samples: a rate needs two", len(samples))
	case windows == 0:
		return notMeasured("%d samples over %s, less than one %s window", len(samples),
			samples[len(samples)-1].at.Sub(samples[0].at).Round(time.Millisecond), window)
	}
	return measured(peak)
}

// firstAbove is the first sample whose value is above `base`, and whether there is one.
func firstAbove(samples []sample, base float64) (sample, bool) {
	for _, s := range samples {
		if s.value > base {
			return s, true
		}
	}
	return sample{}, false
}
