package main

import (
	"context"
	"fmt"
	"io"

	"github.com/lendo/loan-operator/internal/devenv"
)

// memory is one program's memory at a moment.
type memory struct {
	// HeapAlloc is go_memstats_heap_alloc_bytes read right after a garbage collection the
	// benchmark asked the program for (its pprof endpoint's heap?gc=1): the live objects, and
	// only the little allocated between the collection's end and the scrape.
	HeapAlloc float64 `json:"heap_alloc_bytes"`
	// RSS is the resident set size (VmRSS) at the same moment.
	RSS float64 `json:"rss_bytes"`
}

// weighedProgram is a program whose memory the benchmark reads: its process, its /metrics,
// and its pprof endpoint.
type weighedProgram struct {
	proc     *devenv.Process
	metrics  func(context.Context) (metricFamilies, error)
	pprofURL string
}

// weigh asks the program to collect its garbage, then reads its heap from its /metrics and its
// RSS from /proc.
func (p weighedProgram) weigh(ctx context.Context) (memory, error) {
	// The profile is thrown away: it is asked for the collection that comes before it.
	if err := heapProfile(ctx, p.pprofURL, io.Discard); err != nil {
		return memory{}, fmt.Errorf("%s: asking for a garbage collection: %w", p.proc.Name(), err)
	}
	families, err := p.metrics(ctx)
	if err != nil {
		return memory{}, fmt.Errorf("%s's metrics: %w", p.proc.Name(), err)
	}
	heap, err := families.require("go_memstats_heap_alloc_bytes")
	if err != nil {
		return memory{}, fmt.Errorf("%s's metrics: %w", p.proc.Name(), err)
	}
	rss, err := residentBytes(p.proc.Pid())
	if err != nil {
		return memory{}, fmt.Errorf("%s's RSS: %w", p.proc.Name(), err)
	}
	return memory{HeapAlloc: heap, RSS: rss}, nil
}

// gateway and controller are the two programs the benchmark weighs.
func (b *bench) gateway() weighedProgram {
	return weighedProgram{proc: b.sys.stack.Gateway, metrics: b.sys.gatewayMetrics, pprofURL: b.gatewayPprofURL}
}

func (b *bench) controller() weighedProgram {
	return weighedProgram{proc: b.sys.stack.Controllers[0], metrics: b.sys.controllerMetrics, pprofURL: b.controllerPprofURL}
}

// weighBoth weighs the gateway, then the controller.
func (b *bench) weighBoth(ctx context.Context) (gateway, controller memory, err error) {
	if gateway, err = b.gateway().weigh(ctx); err != nil {
		return gateway, controller, err
	}
	controller, err = b.controller().weigh(ctx)
	return gateway, controller, err
}

// mib and kib turn bytes into the report's units.
func mib(bytes float64) float64 { return bytes / (1 << 20) }
func kib(bytes float64) float64 { return bytes / (1 << 10) }
