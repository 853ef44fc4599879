package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/lendo/loan-operator/internal/devenv"
)

// memory is one program's memory at a moment.
type memory struct {
	// HeapAlloc is the lowest go_memstats_heap_alloc_bytes seen while sampling. A remote
	// process cannot be made to collect garbage, so the heap is sampled for a while and the
	// lowest value (the one closest after a collection) is kept: live objects plus the little
	// allocated since.
	HeapAlloc float64 `json:"heap_alloc_bytes"`
	// NextGC is the heap size at which the next collection starts (about twice the live heap
	// with GOGC=100), from the last sample.
	NextGC float64 `json:"next_gc_bytes"`
	// RSS is the resident set size (VmRSS) at the last sample.
	RSS float64 `json:"rss_bytes"`
}

// memorySampleWindow is how long memory is sampled, and memorySampleEvery how often.
const (
	memorySampleWindow = 5 * time.Second
	memorySampleEvery  = 250 * time.Millisecond
)

// sampleMemory samples a program's heap from its /metrics and its RSS from /proc.
func sampleMemory(ctx context.Context, proc *devenv.Process, scrapeIt func(context.Context) (metricFamilies, error)) (memory, error) {
	m := memory{HeapAlloc: math.Inf(1)}
	deadline := time.Now().Add(memorySampleWindow)
	for time.Now().Before(deadline) {
		families, err := scrapeIt(ctx)
		if err != nil {
			return m, fmt.Errorf("%s's metrics: %w", proc.Name(), err)
		}
		m.HeapAlloc = min(m.HeapAlloc, families.sum("go_memstats_heap_alloc_bytes", nil))
		m.NextGC = families.sum("go_memstats_next_gc_bytes", nil)
		if m.RSS, err = residentBytes(proc.Pid()); err != nil {
			return m, fmt.Errorf("%s's RSS: %w", proc.Name(), err)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(memorySampleEvery):
		}
	}
	return m, nil
}

// mib and kib turn bytes into the report's units.
func mib(bytes float64) float64 { return bytes / (1 << 20) }
func kib(bytes float64) float64 { return bytes / (1 << 10) }
