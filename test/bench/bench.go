package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/controller"
)

// timing is the bank's and the controller's timing in this run; the targets derive from it.
type timing struct {
	// bankMin and bankMax bound the simulator's assessment: the real bank's 5 to 20 s.
	bankMin, bankMax time.Duration
	// pollInterval is the controller's wait between polls of a pending application.
	pollInterval time.Duration
	// bankQPS and bankBurst are the controller's rate limit towards the bank.
	bankQPS, bankBurst int
}

// defaultTiming is the controller's and the real bank's defaults, given explicitly so that the
// targets below follow them.
func defaultTiming() timing {
	return timing{bankMin: 5 * time.Second, bankMax: 20 * time.Second, pollInterval: 2 * time.Second, bankQPS: 2000, bankBurst: 100}
}

func (t timing) controllerArgs() []string {
	return []string{
		"--poll-interval=" + t.pollInterval.String(),
		"--bank-qps=" + strconv.Itoa(t.bankQPS),
		"--bank-burst=" + strconv.Itoa(t.bankBurst),
		"--max-concurrent-reconciles=" + strconv.Itoa(controller.DefaultMaxConcurrentReconciles),
	}
}

// bench is one run: the system, the report and what scenarios leave for the next ones.
type bench struct {
	sys    *system
	rep    *Report
	scale  scale
	timing timing
	// emptyController and emptyGateway are the programs' memory with no application cached.
	emptyController, emptyGateway memory
	// decided are the applications of scenario 1, final once it ends; pending those of
	// scenario 5. Both live in the gateway's namespace.
	decided, pending []types.NamespacedName
	// filled are the names fillUp created to reach the larger level.
	filled []string
	// perfDir, when set, receives CPU profiles of each step.
	perfDir string
	// outDir receives the reports and the controller's heap profiles.
	outDir string
	// controllerPprofURL and gatewayPprofURL are the programs' pprof endpoints: the heap
	// profiles, and a collection asked for before each is weighed.
	controllerPprofURL, gatewayPprofURL string
	// only, when set, names the steps to run, comma-separated (--only).
	only string
	// floor is the raw write floor, once measured; idle the API server's idle CPU, once
	// measured (after scenario 1).
	floor *floorResult
	idle  idleCPU
}

// Scenario names, as the table shows them.
const (
	scenarioEndToEnd = "1 end to end"
	scenarioCreate   = "2 gateway creates"
	scenarioReads    = "3 reads"
	scenarioMemory   = "4 memory"
	scenarioRestart  = "5 restart"
)

// directNamespace is where no cache watches: the raw write floor and the direct side of scenario 2
// that is compared with the gateway's whole cost write there.
const directNamespace = "bench-direct"

// runAll runs the scenarios in an order that reuses their applications: scenario 2 and the raw
// write floor on an idle system (the controller stopped) whose applications are then deleted;
// scenario 1 (which also measures the API server's idle CPU the later figures subtract) creates the
// applications that scenarios 3 and 4 then read and weigh at the smaller level; scenario 5 adds
// as many, submitted and pending; scenario 7 offers rising rates, which leaves its applications
// final in the gateway's namespace; the larger level of 3 and 4 is filled up last, with the
// controller stopped while the objects are created.
func (b *bench) runAll(ctx context.Context) error {
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{scenarioCreate, b.createComparison},
		{scenarioFloor, b.rawWriteFloor},
		{"clean up scenario 2", b.cleanUpAndMeasureEmpty},
		{scenarioEndToEnd, b.endToEnd},
		{scenarioMemory + " at " + strconv.Itoa(b.scale.apps), b.memoryAt(b.scale.apps)},
		{scenarioReads + " at " + strconv.Itoa(b.scale.apps), b.readsAt(b.scale.apps, loansv1alpha1.LabelApproved)},
		{scenarioRestart, b.restartUnderLoad},
		{scenarioWaiters, b.waitersAndStreams},
		{scenarioSustainable, b.sustainableRateScenario},
		{"fill up to " + strconv.Itoa(b.scale.large), b.fillUp},
		{scenarioReads + " at " + strconv.Itoa(b.scale.large), b.readsAt(b.scale.large, loansv1alpha1.LabelApproved)},
		{scenarioMemory + " at " + strconv.Itoa(b.scale.large), b.largeMemory},
	}
	for _, step := range steps {
		if b.only != "" && !slices.Contains(strings.Split(b.only, ","), step.name) {
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped before %q: %w", step.name, context.Cause(ctx))
		}
		progress("%s", step.name)
		started := time.Now()
		stopProfile := b.profile(step.name)
		err := step.run(ctx)
		stopProfile()
		if err != nil {
			b.rep.fail(step.name, err)
			progress("%s FAILED: %v", step.name, err)
			if errors.Is(err, errFatal) {
				return err
			}
			continue
		}
		progress("%s done in %s", step.name, time.Since(started).Round(100*time.Millisecond))
	}
	return nil
}

// errFatal marks a failure after which the system is in no state to measure anything more.
var errFatal = errors.New("the system is not in a known state")

// cleanUpAndMeasureEmpty deletes scenario 2's applications before the controller ever saw them,
// restarts the gateway so that its cache starts from nothing, starts the controller and the
// benchmark's own watch, and measures both programs' memory with no application cached.
func (b *bench) cleanUpAndMeasureEmpty(ctx context.Context) error {
	for _, ns := range []string{gatewayNamespace, directNamespace} {
		if err := b.sys.api.DeleteAllOf(ctx, &loansv1alpha1.LoanApplication{}, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("%w: deleting scenario 2's applications in %s: %w", errFatal, ns, err)
		}
	}
	if err := b.waitNoApplications(ctx, time.Minute); err != nil {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	stack := b.sys.stack
	if err := stack.Gateway.Stop(); err != nil {
		return fmt.Errorf("%w: restarting the gateway: %w", errFatal, err)
	}
	for _, p := range append(append(stack.Controllers[:0:0], stack.Controllers...), stack.Gateway) {
		if err := p.Start(ctx); err != nil {
			return fmt.Errorf("%w: starting %s: %w", errFatal, p.Name(), err)
		}
	}
	w, err := startWatcher(ctx, b.sys.stack.Config, b.sys.scheme())
	if err != nil {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	b.sys.watch = w
	b.emptyGateway, b.emptyController, err = b.weighBoth(ctx)
	return err
}

// waitNoApplications waits until the API server lists no LoanApplication at all.
func (b *bench) waitNoApplications(ctx context.Context, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		var list loansv1alpha1.LoanApplicationList
		if err := b.sys.api.List(ctx, &list, client.Limit(1)); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("applications were still listed %s after deleting them all", bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensureNamespace creates a namespace unless it exists.
func (b *bench) ensureNamespace(ctx context.Context, name string) error {
	err := b.sys.api.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// keysOf are the gateway namespace's keys of the names.
func keysOf(names []string) []types.NamespacedName {
	keys := make([]types.NamespacedName, 0, len(names))
	for _, n := range names {
		keys = append(keys, types.NamespacedName{Namespace: gatewayNamespace, Name: n})
	}
	return keys
}
