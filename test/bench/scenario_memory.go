package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// heapPerAppTarget is the bound on the heap each cached application may cost (docs/benchmarks.md).
const heapPerAppTarget = 3 << 10

// memoryAt is scenario 4 at the smaller level: both programs once scenario 1's applications are
// all final and the load has settled.
func (b *bench) memoryAt(n int) func(context.Context) error {
	return func(ctx context.Context) error {
		gw, ctrl, err := b.sampleBoth(ctx)
		if err != nil {
			return err
		}
		b.reportMemory(n, "gateway", gw, b.emptyGateway, "settled, every application final")
		b.reportMemory(n, "controller", ctrl, b.emptyController, "settled, every application final")
		return b.noteHeapProfile(ctx, n)
	}
}

// largeMemory is scenario 4 at the larger level: the gateway, whose cache holds every
// application since fillUp, after the reads; then the controller, stopped while they were
// created, started and weighed as soon as its cache has synced, while it begins work on the
// applications it has not seen.
func (b *bench) largeMemory(ctx context.Context) error {
	stack := b.sys.stack
	gw, err := sampleMemory(ctx, stack.Gateway, b.sys.gatewayMetrics, b.scale.gcWait)
	if err != nil {
		return err
	}
	b.reportMemory(b.scale.large, "gateway", gw, b.emptyGateway, "after the reads, controller stopped")
	ctrl := stack.Controllers[0]
	started := time.Now()
	if err := ctrl.Start(ctx); err != nil {
		return fmt.Errorf("starting the controller: %w", err)
	}
	b.rep.add(scenarioMemory+" at "+strconv.Itoa(b.scale.large), "controller start -> ready (/readyz)",
		seconds(time.Since(started)), "s", "")
	mem, err := sampleMemory(ctx, ctrl, b.sys.controllerMetrics, b.scale.gcWait)
	if err != nil {
		return err
	}
	b.reportMemory(b.scale.large, "controller", mem, b.emptyController,
		"right after its cache synced, while it starts on the applications created while it was stopped")
	return b.noteHeapProfile(ctx, b.scale.large)
}

// noteHeapProfile saves the controller's heap profile at n applications, which explains the
// heap figure, and says where it is.
func (b *bench) noteHeapProfile(ctx context.Context, n int) error {
	path, err := b.saveHeapProfile(ctx, "controller-"+strconv.Itoa(n))
	if err != nil || path == "" {
		return err
	}
	progress("controller heap profile at %d applications: go tool pprof -sample_index=inuse_space -top %s", n, path)
	return nil
}

func (b *bench) reportMemory(n int, program string, m, empty memory, note string) {
	r, sc := b.rep, scenarioMemory+" at "+strconv.Itoa(n)
	how := "go_memstats_heap_alloc_bytes just after a collection; "
	if !m.AfterGC {
		how = "lowest go_memstats_heap_alloc_bytes, no collection seen (garbage included); "
	}
	r.add(sc, program+" heap", mib(m.HeapAlloc), "MiB", how+note)
	r.add(sc, program+" RSS", mib(m.RSS), "MiB", "VmRSS")
	r.atMost(sc, program+" heap per cached application", heapPerApplication(m, empty, n), "KiB",
		kib(heapPerAppTarget), fmt.Sprintf("(heap - heap with no application: %.1f MiB) / %d", mib(empty.HeapAlloc), n))
}

// fillUp stops the controller and creates applications straight through the API, as the
// gateway would, until the gateway's namespace holds the larger level; then it waits for the
// gateway's cache to hold every one of them.
func (b *bench) fillUp(ctx context.Context) error {
	b.sys.stopWatch()
	if err := b.sys.stack.Controllers[0].Stop(); err != nil {
		return fmt.Errorf("%w: stopping the controller: %w", errFatal, err)
	}
	have, err := b.countApplications(ctx)
	if err != nil {
		return fmt.Errorf("%w: counting the applications: %w", errFatal, err)
	}
	missing := b.scale.large - have
	names := make([]string, missing)
	for i := range names {
		names[i] = "fill-" + strconv.Itoa(i)
	}
	load := runLoad(ctx, missing, b.scale.concurrency, 15*time.Minute, func(ctx context.Context, i int) error {
		return b.sys.createDirect(ctx, gatewayNamespace, names[i], i)
	})
	if load.FirstErr != nil {
		return fmt.Errorf("%w: creating %d applications: %d failed: %w", errFatal, missing, load.Failed, load.FirstErr)
	}
	b.filled = names
	b.rep.add(scenarioReads+" at "+strconv.Itoa(b.scale.large), "filling up: direct creates/s", load.Rate(), "/s",
		fmt.Sprintf("%d applications, concurrency %d, controller stopped", missing, b.scale.concurrency))
	return b.waitGatewayHolds(ctx, b.scale.large, 3*time.Minute)
}

// countApplications is how many applications the gateway's namespace holds, as the API server
// counts them (a list of one item tells how many remain).
func (b *bench) countApplications(ctx context.Context) (int, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(loansv1alpha1.GroupVersion.WithKind("LoanApplicationList"))
	if err := b.sys.api.List(ctx, list, client.InNamespace(gatewayNamespace), client.Limit(1)); err != nil {
		return 0, err
	}
	if list.RemainingItemCount == nil {
		return len(list.Items), nil
	}
	return len(list.Items) + int(*list.RemainingItemCount), nil
}

// waitGatewayHolds pages through the gateway until it lists n applications.
func (b *bench) waitGatewayHolds(ctx context.Context, n int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		res, err := b.pageGateway(ctx)
		if err != nil {
			return err
		}
		if res.items == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway listed %d applications, not %d, %s after they were created", res.items, n, bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// allNames are the names of every application in the gateway's namespace.
func (b *bench) allNames() []string {
	out := make([]string, 0, len(b.decided)+len(b.pending)+len(b.filled))
	for _, k := range append(append(b.decided[:0:0], b.decided...), b.pending...) {
		out = append(out, k.Name)
	}
	return append(out, b.filled...)
}

// heapPerApplication is the heap each of n cached applications costs, in KiB: the heap less the
// heap with no application, shared out. A heap below its reference measures nothing (the
// reference counted garbage, or the program restarted lighter): a negative cost would meet any
// bound.
func heapPerApplication(m, empty memory, n int) reading {
	delta := m.HeapAlloc - empty.HeapAlloc
	if delta < 0 {
		return notMeasured("the heap (%.1f MiB) is below the heap with no application (%.1f MiB)", mib(m.HeapAlloc), mib(empty.HeapAlloc))
	}
	return perItem(delta, n).then(kib)
}
