package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/lendo/loan-operator/internal/banksim"
)

// counts are the cumulative counters scenario 1 takes before and after its load.
type counts struct {
	bankCalls        float64
	reconciles       float64
	appWrites        float64 // writes to LoanApplications, as the API server counted them
	controllerWrites float64 // every write the controller's client made (Events included)
	// queueWait and patchLatency are histogram sums and counts: how long applications waited in
	// the controller's workqueue for a worker, and how long its PATCHes took.
	queueWait, patchLatency meanOf
	// apiLatency is the API server's own latency histogram of each kind of application write.
	apiLatency apiWriteLatencies
}

// meanOf is a histogram's sum and count; the mean over an interval is the ratio of their deltas.
type meanOf struct{ sum, count float64 }

// addMean reports, in milliseconds, the mean of a histogram's observations between two scrapes;
// nothing when there were none (the program does not export it), rather than a false zero.
func (b *bench) addMean(scenario, name string, before, after meanOf, note string) {
	if after.count <= before.count {
		return
	}
	b.rep.add(scenario, name, 1000*(after.sum-before.sum)/(after.count-before.count), "ms", note)
}

// writeVerbs are the API server's verbs of a write to an existing object (the controller never
// creates or deletes a LoanApplication).
var writeVerbs = []string{"PATCH", "PUT", "APPLY", "UPDATE"}

func (b *bench) takeCounts(ctx context.Context) (counts, error) {
	var c counts
	st, err := b.sys.bankStats(ctx, false)
	if err != nil {
		return c, err
	}
	ctrlMetrics, err := b.sys.controllerMetrics(ctx)
	if err != nil {
		return c, err
	}
	apiMetrics, err := b.sys.apiServerMetrics(ctx)
	if err != nil {
		return c, err
	}
	c.bankCalls = bankCalls(st)
	c.apiLatency = apiWriteLatenciesOf(apiMetrics)
	c.queueWait.sum, c.queueWait.count = ctrlMetrics.histogram("workqueue_queue_duration_seconds", nil)
	c.patchLatency.sum, c.patchLatency.count = ctrlMetrics.histogram("rest_client_request_duration_seconds", labelIn("verb", "PATCH"))
	isAppWrite := labelIn("verb", writeVerbs...)
	// The per-application figures divide these: a family the program did not export would
	// count 0 writes and meet its target, so its absence ends the scenario instead.
	var errs []error
	for _, want := range []struct {
		into     *float64
		families metricFamilies
		name     string
		keep     func(map[string]string) bool
	}{
		{&c.reconciles, ctrlMetrics, "controller_runtime_reconcile_total", nil},
		{&c.controllerWrites, ctrlMetrics, "rest_client_requests_total", labelIn("method", "POST", "PUT", "PATCH", "DELETE")},
		{&c.appWrites, apiMetrics, "apiserver_request_total", func(l map[string]string) bool {
			return l["resource"] == loanApplications && isAppWrite(l)
		}},
	} {
		v, err := want.families.requireWhere(want.name, want.keep)
		*want.into = v
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// endToEnd is scenario 1: applications created through the gateway at a fixed arrival rate
// (open loop), the bank deciding in its real 5 to 20 s, until every one is final. The API
// server's CPU is taken over that window, with no scrape of its /metrics in it (before and
// after only: it is expensive to render), and its idle CPU over as long right after, before the
// last scrape. Its Go CPU profile of the window goes to the out dir.
func (b *bench) endToEnd(ctx context.Context) error {
	before, err := b.takeCounts(ctx)
	if err != nil {
		return err
	}
	n, rate := b.scale.apps, b.scale.arrivalRate
	profilePath := filepath.Join(b.outDir, apiServerProfileFile)
	profile := b.profileAPIServerInto(ctx, profilePath, arrivals{rate: rate}.span(n)+apiServerProfileTail)
	cpuBefore, started := b.sys.takeCPU(), time.Now()
	keys, load, retries := b.createOpenLoop(ctx, n, rate)
	b.decided = keys // kept on failure too: the later steps read them
	if err := b.reportOpenLoopCreated(scenarioEndToEnd, n, load.loadResult, retries); err != nil {
		return err
	}
	if err := b.waitAllFinal(ctx, b.decided, b.timing.bankMax+2*time.Minute); err != nil {
		return err
	}
	cpu, window := b.sys.takeCPU().since(cpuBefore), time.Since(started)
	if err := <-profile; err != nil {
		progress("the API server's CPU profile of scenario 1: %v", err)
		profilePath = "none (" + err.Error() + ")"
	} else {
		progress("the API server's CPU profile of scenario 1: %s (go tool pprof -top %s)", profilePath, profilePath)
	}
	// Idle over as long as the window (at most idleWindow; the rate is what is subtracted), with
	// every application final and the same processes up.
	if b.idle, err = b.measureIdle(ctx, min(window, b.scale.idleWindow)); err != nil {
		return err
	}
	after, err := b.takeCounts(ctx)
	if err != nil {
		return err
	}
	stats, err := b.sys.bankStats(ctx, true)
	if err != nil {
		return err
	}
	b.reportEndToEnd(load, before, after, stats)
	b.rep.reportCPU(scenarioEndToEnd, "application, from its create to its final status", cpu, len(b.decided))
	b.reportAPIServerCPU(busyCPU{seconds: cpu[apiServerProcess], window: window}, b.idle, len(b.decided),
		"profile: "+profilePath)
	b.rep.reportAPIWriteLatency(scenarioEndToEnd, before.apiLatency, after.apiLatency)
	return nil
}

// apiServerProfileTail is how long the API server's profile of scenario 1 runs past the
// creates: within the window, which lasts until the last application is final (up to the
// bank's 20 s after the last create), so that the idle window after it is not profiled.
const apiServerProfileTail = 15 * time.Second

// waitAllFinal waits until the watch saw every application final and its final label, then a
// little more: the controller's last reconciles (of its own label write) end just after the
// label shows.
func (b *bench) waitAllFinal(ctx context.Context, keys []types.NamespacedName, bound time.Duration) error {
	if err := b.sys.watch.waitFor(ctx, keys, isFinal, bound); err != nil {
		return fmt.Errorf("waiting for every application to be final: %w", err)
	}
	if err := b.sys.watch.waitFor(ctx, keys, isSettled, 30*time.Second); err != nil {
		return fmt.Errorf("waiting for every final status label: %w", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
		return nil
	}
}

func (b *bench) reportEndToEnd(load openLoopResult, before, after counts, stats banksim.Stats) {
	r, sc, n := b.rep, scenarioEndToEnd, len(b.decided)
	r.reportArrivals(sc, load)
	lastFinal := b.lastFinal(b.decided)
	r.add(sc, "floor: the bank's longest assessment", seconds(b.timing.bankMax), "s", "")
	r.atMost(sc, "last creation -> every application final", sinceLoad(lastFinal, load.loadResult), "s",
		seconds(b.timing.bankMax+15*time.Second), "target: the bank's longest assessment + 15 s")
	r.atMost(sc, "bank calls per application", perItem(after.bankCalls-before.bankCalls, n), "", 8,
		"submissions + duplicate submissions + polls, counted by the simulator")
	r.atMost(sc, "API writes per application", perItem(after.appWrites-before.appWrites, n), "", 4,
		"PATCH/PUT/APPLY of loanapplications, counted by kube-apiserver (the gateway's create not included)")
	r.addReading(sc, "controller's API writes per application, Events included",
		perItem(after.controllerWrites-before.controllerWrites, n), "", "POST/PUT/PATCH/DELETE from the controller's client-go metrics")
	r.addReading(sc, "reconciles per application", perItem(after.reconciles-before.reconciles, n), "", "controller_runtime_reconcile_total")
	b.addMean(sc, "controller: wait in the workqueue for a worker, mean", before.queueWait, after.queueWait,
		"workqueue_queue_duration_seconds: from due (added, or its requeue time come) to a worker taking it")
	b.addMean(sc, "controller: PATCH latency to the API server, mean", before.patchLatency, after.patchLatency,
		"rest_client_request_duration_seconds{verb=PATCH}: what a worker waits for each status or label write")
	toStatus, toPoll, pollToStatus, missing := b.decisionDelays(b.decided, stats)
	note := "bank decision -> status seen by a watch of the API, over " + strconv.Itoa(len(toStatus)) + " applications"
	if missing > 0 {
		note += fmt.Sprintf("; %d without a bank decision on record", missing)
	}
	r.addReading(sc, "decision -> status, median", percentileIn(toStatus, 50, secondUnit), "s", note)
	r.atMost(sc, "decision -> status, p99", percentileIn(toStatus, 99, secondUnit), "s",
		seconds(b.timing.pollInterval+time.Second), "target: poll interval + 1 s")
	r.addReading(sc, "decision -> first poll that saw it, p99", percentileIn(toPoll, 99, secondUnit), "s",
		"from the simulator's own record: how much of the above is waiting for the next poll")
	r.addReading(sc, "poll that saw it -> status seen, p99", percentileIn(pollToStatus, 99, secondUnit), "s",
		"the rest: the controller's status write and the watch delivering it")
	r.check(sc, "every application final, one accepted submission each", missing == 0 && b.onceEach(b.decided, stats), "")
}

// sinceLoad is the time from the end of the load to t, in seconds; a t never seen (zero) measures
// nothing.
func sinceLoad(t time.Time, load loadResult) reading {
	if t.IsZero() {
		return notMeasured("no application was seen final")
	}
	return measured(seconds(t.Sub(load.End)))
}

// createThroughGateway creates n applications through the gateway at the run's concurrency
// (closed loop), as a careful client does (createSafely), and answers those that were created.
// The retries are reported; a create that fails even so is reported too, and more than 1% of
// them end the scenario.
func (b *bench) createThroughGateway(ctx context.Context, scenario string, n int) ([]types.NamespacedName, loadResult, error) {
	keys, load, retries := b.createApplications(n, func(call func(context.Context, int) error) loadResult {
		return runLoad(ctx, n, b.scale.concurrency, createBatchBound, call)
	})
	return keys, load, b.reportCreated(scenario, n, load, retries)
}

// maxInFlightCreates bounds the open loop's creates waiting for an answer: a create due beyond
// it is dropped and counted.
const maxInFlightCreates = 1024

// createOpenLoop creates n applications through the gateway, as createThroughGateway does, but
// at a fixed arrival rate (open loop). A create dropped at the in-flight bound is not an error:
// the report counts it.
func (b *bench) createOpenLoop(ctx context.Context, n int, rate float64) ([]types.NamespacedName, openLoopResult, int64) {
	var res openLoopResult
	keys, _, retries := b.createApplications(n, func(call func(context.Context, int) error) loadResult {
		res = runOpenLoop(ctx, n, rate, maxInFlightCreates, createBatchBound, call)
		return res.loadResult
	})
	return keys, res, retries
}

// createApplications runs n careful creates (createSafely) with run, and answers those that were
// created and how many retries it took.
func (b *bench) createApplications(n int, run func(call func(context.Context, int) error) loadResult) ([]types.NamespacedName,
	loadResult, int64) {
	names := make([]string, n)
	var retries atomic.Int64
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	load := run(func(ctx context.Context, i int) error {
		name, tries, err := b.sys.createSafely(ctx, i, "bench-"+runID+"-"+strconv.Itoa(i))
		names[i] = name
		retries.Add(int64(tries))
		return err
	})
	created := make([]string, 0, load.Done)
	for _, name := range names {
		if name != "" {
			created = append(created, name)
		}
	}
	return keysOf(created), load, retries.Load()
}

// reportCreated reports the retries and the creates that failed even so; more than 1% of them
// end the scenario.
func (b *bench) reportCreated(scenario string, n int, load loadResult, retries int64) error {
	b.rep.add(scenario, "gateway creates retried after a 503", float64(retries), "",
		"with an Idempotency-Key, after the gateway's Retry-After of 1 s; at most "+strconv.Itoa(createAttempts)+" attempts")
	note := ""
	if load.FirstErr != nil {
		note = "; first failure: " + load.FirstErr.Error()
	}
	b.rep.check(scenario, "every create through the gateway succeeded", load.Done == n,
		fmt.Sprintf("%d of %d%s", load.Done, n, note))
	if load.FirstErr != nil && (load.Done == 0 || load.Done < n-n/100) {
		return fmt.Errorf("creating through the gateway: %d of %d created: %w", load.Done, n, load.FirstErr)
	}
	return nil
}

// reportOpenLoopCreated reports the creates of an open loop as reportCreated does, but a create
// that failed does not end the scenario unless none succeeded: at a rate above what the system
// carries, the gateway refusing creates with 429 is what it must do, and the scenario goes on to
// measure the applications it did create. The check "every create ... succeeded" says how many.
func (b *bench) reportOpenLoopCreated(scenario string, n int, load loadResult, retries int64) error {
	if err := b.reportCreated(scenario, n, load, retries); err != nil && load.Done == 0 {
		return err
	}
	return nil
}

// lastFinal is when the last of the applications was seen final.
func (b *bench) lastFinal(keys []types.NamespacedName) time.Time {
	var last time.Time
	for _, k := range keys {
		if s := b.sys.watch.get(k); s.finalAt.After(last) {
			last = s.finalAt
		}
	}
	return last
}

// decisionDelays are, for each application the bank decided, the time from its decision to the
// status a watch showed, from its decision to the first poll that answered it, and from that poll
// to the status.
func (b *bench) decisionDelays(keys []types.NamespacedName, stats banksim.Stats) (toStatus, toPoll, pollToStatus []time.Duration,
	missing int) {
	for _, k := range keys {
		s := b.sys.watch.get(k)
		d, ok := stats.Decisions[string(s.uid)]
		if !ok || s.finalAt.IsZero() {
			missing++
			continue
		}
		toStatus = append(toStatus, s.finalAt.Sub(d.DecidedAt))
		if d.SeenAt != nil {
			toPoll = append(toPoll, d.SeenAt.Sub(d.DecidedAt))
			pollToStatus = append(pollToStatus, s.finalAt.Sub(*d.SeenAt))
		}
	}
	return toStatus, toPoll, pollToStatus, missing
}

// onceEach reports whether the bank accepted exactly one submission of each application.
func (b *bench) onceEach(keys []types.NamespacedName, stats banksim.Stats) bool {
	for _, k := range keys {
		if stats.Submissions[string(b.sys.watch.get(k).uid)] != 1 {
			return false
		}
	}
	return true
}
