package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/gateway"
)

// Targets of scenario 4 (docs/benchmarks.md).
const (
	// gatewayHeapPerAppTarget bounds the gateway's heap per cached application, its event ring
	// apart (a cost bounded by the event window, not by the applications).
	gatewayHeapPerAppTarget = 1536
	// controllerHeapTarget bounds the controller's heap with the larger level of final
	// applications and pendingAtLarge pending ones stored.
	controllerHeapTarget = 40 << 20
)

// pendingAtLarge is how many pending applications join the larger level's final ones before
// the controller is weighed there: work in flight, 1,000 at 100,000.
func pendingAtLarge(large int) int { return large / 100 }

// memoryAt is scenario 4 at the smaller level: both programs once scenario 1's applications are
// all final and the load has settled. Run alone (--only), it weighs the empty programs and makes
// the decided applications itself.
func (b *bench) memoryAt(n int) func(context.Context) error {
	return func(ctx context.Context) error {
		if b.only != "" {
			if err := b.weighEmpty(ctx); err != nil {
				return err
			}
			return b.memoryOfDecided(ctx, n)
		}
		return b.weighSettled(ctx, n, "settled, every application final")
	}
}

// weighSettled weighs both programs with n applications stored, all of them cached.
func (b *bench) weighSettled(ctx context.Context, n int, note string) error {
	gw, ctrl, err := b.weighBoth(ctx)
	if err != nil {
		return err
	}
	if err := b.reportGateway(ctx, n, gw, note); err != nil {
		return err
	}
	b.reportMemory(n, "controller", ctrl, b.emptyController, note)
	return b.noteHeapProfile(ctx, n)
}

// weighEmpty takes the programs' memory with no application as the reference, when scenario 4
// runs alone on the stack it has just started, where nothing was created yet.
func (b *bench) weighEmpty(ctx context.Context) error {
	n, err := b.countApplications(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("run alone, scenario 4 needs a stack with no application; it has %d", n)
	}
	b.emptyGateway, b.emptyController, err = b.weighBoth(ctx)
	return err
}

// memoryOfDecided stores n decided applications, as scenario 1 leaves them, and weighs both
// programs at n. The controller is stopped meanwhile, so that it does not submit them between
// their create and their decision.
func (b *bench) memoryOfDecided(ctx context.Context, n int) error {
	ctrl := b.sys.stack.Controllers[0]
	if err := ctrl.Stop(); err != nil {
		return fmt.Errorf("stopping the controller: %w", err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "decided-" + strconv.Itoa(i)
	}
	if _, err := b.createStored(ctx, names, false); err != nil {
		return err
	}
	b.filled = append(b.filled, names...)
	if err := ctrl.Start(ctx); err != nil {
		return fmt.Errorf("starting the controller: %w", err)
	}
	if err := b.waitGatewayHolds(ctx, n, 3*time.Minute); err != nil {
		return err
	}
	return b.weighSettled(ctx, n, "run alone: decided applications stored as the controller leaves them")
}

// largeMemory is scenario 4 at the larger level: the gateway, whose cache holds every
// application since fillUp, after the reads; then pendingAtLarge new applications, and the
// controller, stopped since fillUp, started and weighed as soon as its cache has synced, while
// it begins work on them. Run alone (--only), it first weighs the empty programs and the
// smaller level (as memoryAt run alone), then fills up.
func (b *bench) largeMemory(ctx context.Context) error {
	note := "after the reads, controller stopped"
	if b.only != "" {
		if err := b.weighEmpty(ctx); err != nil {
			return err
		}
		if err := b.memoryOfDecided(ctx, b.scale.apps); err != nil {
			return err
		}
		if err := b.fillUp(ctx); err != nil {
			return err
		}
		note = "run alone: after filling up, controller stopped"
	}
	stack := b.sys.stack
	gw, err := b.gateway().weigh(ctx)
	if err != nil {
		return err
	}
	if err := b.reportGateway(ctx, b.scale.large, gw, note); err != nil {
		return err
	}
	stored, err := b.addPending(ctx)
	if err != nil {
		return err
	}
	ctrl := stack.Controllers[0]
	started := time.Now()
	if err := ctrl.Start(ctx); err != nil {
		return fmt.Errorf("starting the controller: %w", err)
	}
	sc := scenarioMemory + " at " + strconv.Itoa(b.scale.large)
	b.rep.add(sc, "controller start -> ready (/readyz)", seconds(time.Since(started)), "s", "")
	mem, err := b.controller().weigh(ctx)
	if err != nil {
		return err
	}
	b.reportController(sc, mem, stored)
	return b.noteHeapProfile(ctx, b.scale.large)
}

// storedCounts are the applications of the gateway's namespace by their status label.
type storedCounts struct{ final, notFinal int }

// addPending creates pendingAtLarge applications as the gateway creates them, while the
// controller is stopped, and counts what is then stored.
func (b *bench) addPending(ctx context.Context) (storedCounts, error) {
	names := make([]string, pendingAtLarge(b.scale.large))
	for i := range names {
		names[i] = "pending-" + strconv.Itoa(i)
	}
	if _, err := b.createStored(ctx, names, true); err != nil {
		return storedCounts{}, err
	}
	return b.countStored(ctx)
}

// reportController reports the controller's heap at the larger level, against its target.
func (b *bench) reportController(sc string, m memory, stored storedCounts) {
	r, large := b.rep, b.scale.large
	heap := measured(mib(m.HeapAlloc))
	if stored.final < large {
		heap = notMeasured("%d final applications were stored, not %d", stored.final, large)
	}
	r.atMost(sc, "controller heap with "+strconv.Itoa(large/1000)+"k final", heap, "MiB", mib(controllerHeapTarget),
		fmt.Sprintf("%d final and %d pending applications stored; right after its cache synced, while it starts on the "+
			"pending ones; just after a collection (heap with no application: %.1f MiB)", stored.final, stored.notFinal,
			mib(b.emptyController.HeapAlloc)))
	r.add(sc, "controller RSS", mib(m.RSS), "MiB", "VmRSS")
}

// reportGateway reports the gateway's memory with n applications cached: its heap per cached
// application with and without the event ring, and the ring, whose size the gateway exports.
func (b *bench) reportGateway(ctx context.Context, n int, m memory, note string) error {
	families, err := b.sys.gatewayMetrics(ctx)
	if err != nil {
		return fmt.Errorf("the gateway's metrics: %w", err)
	}
	ring := notMeasured("the gateway does not export %s", ringMetric)
	if v, err := families.require(ringMetric); err == nil {
		ring = measured(v)
	}
	r, sc := b.rep, scenarioMemory+" at "+strconv.Itoa(n)
	b.reportMemory(n, "gateway", m, b.emptyGateway, note)
	r.addReading(sc, "gateway event ring", ring.then(mib), "MiB",
		"the encoded changes event streams can resume from: a bounded window, whatever the number of applications")
	r.atMost(sc, "gateway heap per cached application", heapPerApplicationApart(m, b.emptyGateway, ring, n), "KiB",
		kib(gatewayHeapPerAppTarget), fmt.Sprintf("event ring apart: (heap - heap with no application (%.1f MiB) - event ring) / %d",
			mib(b.emptyGateway.HeapAlloc), n))
	return nil
}

// ringMetric is the gateway's gauge of its event ring's size.
const ringMetric = "loan_gateway_event_ring_bytes"

// reportMemory reports a program's heap, RSS and heap per application stored, everything
// included.
func (b *bench) reportMemory(n int, program string, m, empty memory, note string) {
	r, sc := b.rep, scenarioMemory+" at "+strconv.Itoa(n)
	r.add(sc, program+" heap", mib(m.HeapAlloc), "MiB", "go_memstats_heap_alloc_bytes just after a collection; "+note)
	r.add(sc, program+" RSS", mib(m.RSS), "MiB", "VmRSS")
	r.addReading(sc, program+" heap per application, everything included", heapPerApplication(m, empty, n), "KiB",
		fmt.Sprintf("(heap - heap with no application: %.1f MiB) / %d", mib(empty.HeapAlloc), n))
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

// fillUp stops the controller and stores decided applications, as the controller leaves
// them, until the gateway's namespace holds the larger level; then it waits for the gateway's
// cache to hold every one of them.
func (b *bench) fillUp(ctx context.Context) error {
	b.sys.stopWatch()
	if err := b.sys.stack.Controllers[0].Stop(); err != nil {
		return fmt.Errorf("%w: stopping the controller: %w", errFatal, err)
	}
	have, err := b.countApplications(ctx)
	if err != nil {
		return fmt.Errorf("%w: counting the applications: %w", errFatal, err)
	}
	names := make([]string, b.scale.large-have)
	for i := range names {
		names[i] = "fill-" + strconv.Itoa(i)
	}
	load, err := b.createStored(ctx, names, false)
	if err != nil {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	b.filled = append(b.filled, names...)
	b.rep.add(scenarioReads+" at "+strconv.Itoa(b.scale.large), "filling up: decided applications stored/s", load.Rate(), "/s",
		fmt.Sprintf("%d applications, each created, its status written and its label set (3 writes), concurrency %d, controller stopped",
			len(names), b.scale.concurrency))
	return b.waitGatewayHolds(ctx, b.scale.large, 3*time.Minute)
}

// createStored stores an application of each name, in the gateway's namespace: decided, as the
// controller leaves one, or pending, as the gateway creates one.
func (b *bench) createStored(ctx context.Context, names []string, pending bool) (loadResult, error) {
	asController, err := b.controllerClient()
	if err != nil {
		return loadResult{}, err
	}
	load := runLoad(ctx, len(names), b.scale.concurrency, 15*time.Minute, func(ctx context.Context, i int) error {
		app := storedApplication(names[i], i)
		if err := b.sys.api.Create(ctx, app); err != nil || pending {
			return err
		}
		return decideAsController(ctx, asController, app, i)
	})
	if load.FirstErr != nil {
		return load, fmt.Errorf("storing %d applications: %d failed: %w", len(names), load.Failed, load.FirstErr)
	}
	return load, nil
}

// controllerClient reaches the API server as the controller's ServiceAccount: only it may set a
// final status label (config/policy).
func (b *bench) controllerClient() (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", b.sys.stack.ControllerKubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	return client.New(cfg, client.Options{Scheme: b.sys.scheme()})
}

// storedApplication is application i as the gateway creates it under an Idempotency-Key:
// labelled pending, with the hash of its names.
func storedApplication(name string, i int) *loansv1alpha1.LoanApplication {
	spec := loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace " + strconv.Itoa(i)}
	return &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: gatewayNamespace, Name: name,
			Labels:      map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending},
			Annotations: map[string]string{gateway.RequestHashAnnotation: gateway.RequestHash(spec.FirstName, spec.LastName)},
		},
		Spec: spec,
	}
}

// decideAsController writes the status and the label the controller writes for an application
// the bank decided (internal/controller/conditions.go: markSubmitted, then markDecided), through
// the status subresource and as the controller. Half are approved, half rejected.
func decideAsController(ctx context.Context, c client.Client, app *loansv1alpha1.LoanApplication, i int) error {
	decided := time.Now().UTC().Truncate(time.Second)
	submitted := metav1.NewTime(decided.Add(-12 * time.Second))
	phase, label, reason, message := loansv1alpha1.PhaseApproved, loansv1alpha1.LabelApproved, loansv1alpha1.ReasonApproved,
		"the bank approved the loan"
	if i%2 == 1 {
		phase, label, reason, message = loansv1alpha1.PhaseRejected, loansv1alpha1.LabelRejected, loansv1alpha1.ReasonRejected,
			"the bank rejected the loan"
	}
	before := app.DeepCopy()
	app.Status = loansv1alpha1.LoanApplicationStatus{
		Phase: phase, BankApplicationID: string(app.UID), BankJobID: string(uuid.NewUUID()),
		SubmittedAt: &submitted, DecidedAt: &metav1.Time{Time: decided},
		ObservedGeneration: app.Generation, Message: message,
		Conditions: []metav1.Condition{
			{Type: loansv1alpha1.ConditionSubmitted, Status: metav1.ConditionTrue, ObservedGeneration: app.Generation,
				LastTransitionTime: submitted, Reason: loansv1alpha1.ReasonSubmitted, Message: "the bank accepted the application"},
			{Type: loansv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: app.Generation,
				LastTransitionTime: metav1.Time{Time: decided}, Reason: reason, Message: message},
		},
	}
	if err := c.Status().Patch(ctx, app, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("writing the status of %s: %w", app.Name, err)
	}
	before = app.DeepCopy()
	app.Labels[loansv1alpha1.LabelStatus] = label
	if err := c.Patch(ctx, app, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("setting the label of %s: %w", app.Name, err)
	}
	return nil
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

// countStored counts the applications of the gateway's namespace by their status label, as
// the API server lists them. The API server counts what remains of a list only without a
// selector, so the final ones are counted in pages.
func (b *bench) countStored(ctx context.Context) (storedCounts, error) {
	total, err := b.countApplications(ctx)
	if err != nil {
		return storedCounts{}, err
	}
	final := 0
	for token := ""; ; {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(loansv1alpha1.GroupVersion.WithKind("LoanApplicationList"))
		if err := b.sys.api.List(ctx, list, client.InNamespace(gatewayNamespace), client.Limit(10_000), client.Continue(token),
			client.MatchingLabelsSelector{Selector: finalSelector}); err != nil {
			return storedCounts{}, fmt.Errorf("counting the final applications: %w", err)
		}
		final += len(list.Items)
		if token = list.Continue; token == "" {
			return storedCounts{final: final, notFinal: total - final}, nil
		}
	}
}

// finalSelector selects the applications whose status label is final.
var finalSelector = func() labels.Selector {
	final, err := labels.NewRequirement(loansv1alpha1.LabelStatus, selection.In,
		[]string{loansv1alpha1.LabelApproved, loansv1alpha1.LabelRejected, loansv1alpha1.LabelFailed})
	if err != nil {
		panic(err) // constant values, valid
	}
	return labels.NewSelector().Add(*final)
}()

// heapPerApplication is the heap each of n stored applications costs, in KiB: the heap less the
// heap with no application, shared out. A heap below its reference measures nothing (the
// reference counted garbage, or the program restarted lighter): a negative cost would meet any
// bound.
func heapPerApplication(m, empty memory, n int) reading {
	return heapPerApplicationApart(m, empty, measured(0), n)
}

// heapPerApplicationApart is heapPerApplication less apart, a cost that does not grow with the
// applications; nothing is measured when apart is not.
func heapPerApplicationApart(m, empty memory, apart reading, n int) reading {
	if !apart.ok() {
		return apart
	}
	delta := m.HeapAlloc - empty.HeapAlloc - apart.value
	if delta < 0 {
		return notMeasured("the heap (%.1f MiB) is below the heap with no application (%.1f MiB) and %.1f MiB apart",
			mib(m.HeapAlloc), mib(empty.HeapAlloc), mib(apart.value))
	}
	return perItem(delta, n).then(kib)
}
