package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lendo/loan-operator/internal/devenv"
)

// memory is one program's memory at a moment.
type memory struct {
	// HeapAlloc is go_memstats_heap_alloc_bytes just after a garbage collection: live objects
	// plus the little allocated since. A remote process cannot be made to collect, so its heap is
	// sampled until it has collected once (the Go runtime forces a collection at least every two
	// minutes) and the lowest sample after that collection is kept. Without a collection in the
	// bound, it is the lowest sample, which counts garbage too (AfterGC false).
	HeapAlloc float64 `json:"heap_alloc_bytes"`
	AfterGC   bool    `json:"after_gc"`
	// RSS is the resident set size (VmRSS) at the last sample.
	RSS float64 `json:"rss_bytes"`
}

// Memory sampling: every memorySampleEvery, for at least memoryMinWindow and until a
// collection was seen or the scale's bound passed.
const (
	memorySampleEvery = 250 * time.Millisecond
	memoryMinWindow   = 5 * time.Second
)

// sampleMemory samples a program's heap from its /metrics and its RSS from /proc.
func sampleMemory(ctx context.Context, proc *devenv.Process, scrapeIt func(context.Context) (metricFamilies, error),
	bound time.Duration) (memory, error) {
	m := memory{}
	lowest, lowestAfterGC := math.Inf(1), math.Inf(1)
	firstGC := math.NaN()
	began := time.Now()
	for {
		families, err := scrapeIt(ctx)
		if err != nil {
			return m, fmt.Errorf("%s's metrics: %w", proc.Name(), err)
		}
		heap, err := families.require("go_memstats_heap_alloc_bytes")
		if err != nil {
			return m, fmt.Errorf("%s's metrics: %w", proc.Name(), err)
		}
		lastGC, err := families.require("go_memstats_last_gc_time_seconds")
		if err != nil {
			return m, fmt.Errorf("%s's metrics: %w", proc.Name(), err)
		}
		lowest = min(lowest, heap)
		switch {
		case math.IsNaN(firstGC):
			firstGC = lastGC
		case lastGC != firstGC:
			m.AfterGC = true
			lowestAfterGC = min(lowestAfterGC, heap)
		}
		if m.RSS, err = residentBytes(proc.Pid()); err != nil {
			return m, fmt.Errorf("%s's RSS: %w", proc.Name(), err)
		}
		elapsed := time.Since(began)
		if (m.AfterGC && elapsed >= memoryMinWindow) || elapsed >= bound {
			break
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(memorySampleEvery):
		}
	}
	m.HeapAlloc = lowest
	if m.AfterGC {
		m.HeapAlloc = lowestAfterGC
	}
	return m, nil
}

// sampleBoth samples the gateway's and the controller's memory at the same time.
func (b *bench) sampleBoth(ctx context.Context) (gateway, controller memory, err error) {
	stack := b.sys.stack
	var gwErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		gateway, gwErr = sampleMemory(ctx, stack.Gateway, b.sys.gatewayMetrics, b.scale.gcWait)
	}()
	controller, err = sampleMemory(ctx, stack.Controllers[0], b.sys.controllerMetrics, b.scale.gcWait)
	<-done
	return gateway, controller, errors.Join(gwErr, err)
}

// mib and kib turn bytes into the report's units.
func mib(bytes float64) float64 { return bytes / (1 << 20) }
func kib(bytes float64) float64 { return bytes / (1 << 10) }
