package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
)

// restartPause is how long the controller stays stopped.
const restartPause = 5 * time.Second

// sampleEvery is how often the bank's counts are sampled during a restart.
const sampleEvery = 100 * time.Millisecond

// The bound on submitting every application after the first start, which the bank's assessment
// must outlast. The controller submits more slowly than the gateway creates: each submission is
// a status write, as costly as a create, plus a bank call, while the controller already polls
// those it submitted, every 2 s each, up to --bank-qps: with thousands pending, the polls take
// most of the bank client's limit and of the CPU. The full run measured 43 submissions/s at
// 10,000 (5,063 in the first 118 s) on this 2-core machine, against 500 creates/s. The bound is
// therefore the larger of six times the creation time just measured (a busier machine gives
// itself more time) and minSubmitRate; the floor and the cap keep it sensible at a few hundred and
// bounded at 10,000.
const (
	submitSlowdown = 6
	minSubmitRate  = 25.0 // submissions per second, below the 43/s measured at 10,000
	minSubmitBound = 30 * time.Second
	maxSubmitBound = 8 * time.Minute
)

// bankRateLimit is the bank's own capacity during scenario 5, in requests per second: the
// simulator answers 429 above it (its rate-limit knob, PUT /admin/faults, a token bucket of as
// many tokens). It stands for the partner's limit, which the controller does not know: it is set
// here apart from the controller's --bank-qps, so that the scenario checks what the controller
// does to the bank (no 429, an offered rate within the bank's capacity) rather than restating
// the controller's own limiter. A controller that called for every pending application at once
// after its restart is refused at 10,000 pending; at 1,000 the bucket absorbs such a burst.
const bankRateLimit = 2500

// resumeWatch is how long after the restart the bank is left to the lengthened window: the
// start (ready in about 2 s at 10,000 pending), the burst of overdue polls (10,000 at --bank-qps
// 2,000: 5 s) and a steady stretch after it. Then the bank's decisions are hastened, since
// waiting out a window of minutes would measure nothing more.
const resumeWatch = 12 * time.Second

// stopMargin covers the stop itself: longer than devenv's 15 s between SIGTERM and SIGKILL.
const stopMargin = 20 * time.Second

// submitBound is how long the first start may take to submit n applications, from the
// gateway's creation rate with the controller stopped.
func submitBound(n int, createRate float64) time.Duration {
	if createRate <= 0 {
		return maxSubmitBound
	}
	d := time.Duration(submitSlowdown * float64(n) / createRate * float64(time.Second))
	d = max(d, time.Duration(float64(n)/minSubmitRate*float64(time.Second)))
	return min(max(d, minSubmitBound), maxSubmitBound)
}

// restartWindow is the bank's assessment during scenario 5: it begins after the longest the
// submissions may take (their wait fails past it) and the stop, so that no application is
// decided before the controller stops, and it is as wide as the real bank's.
func (t timing) restartWindow(bound time.Duration) banksim.Assessment {
	shortest := bound + stopMargin
	return banksim.Assessment{MinDelay: banksim.Duration(shortest), MaxDelay: banksim.Duration(shortest + t.bankMax - t.bankMin)}
}

// hastenFirstIn is how soon the first pending decision comes once a scenario that lengthened the
// assessment to keep applications pending has measured what it needed them pending for: the
// simulator moves every pending decision earlier by one amount (POST /admin/hasten), so they
// come in the order and at the spacing they had, without the long wait before.
const hastenFirstIn = time.Second

// realWindow is the bank's own assessment, which every other scenario runs with.
func (t timing) realWindow() banksim.Assessment {
	return banksim.Assessment{MinDelay: banksim.Duration(t.bankMin), MaxDelay: banksim.Duration(t.bankMax)}
}

// restartUnderLoad is scenario 5: the controller is stopped with every application submitted
// and pending at the bank, and started again. The applications are created with the controller
// stopped (fast), the bank's assessment is lengthened so that none is decided before the stop,
// and the controller's first start submits them all (a start with N unsubmitted, reported too).
// Then SIGTERM, a pause, a start: it measures the time to resume and the peak rate of bank
// calls, and checks that nothing is lost or submitted twice.
func (b *bench) restartUnderLoad(ctx context.Context) (err error) {
	stopWatch, err := b.ensureWatch(ctx)
	if err != nil {
		return err
	}
	defer stopWatch()
	before, err := b.sys.bankStats(ctx, false)
	if err != nil {
		return err
	}
	ctrl := b.sys.stack.Controllers[0]
	if err := ctrl.Stop(); err != nil {
		return fmt.Errorf("%w: stopping the controller before the creates: %w", errFatal, err)
	}
	defer func() {
		if restoreErr := b.restoreAfterRestart(ctx); restoreErr != nil {
			err = errors.Join(err, restoreErr)
		}
	}()
	keys, load, err := b.createThroughGateway(ctx, scenarioRestart, b.scale.apps)
	b.pending = keys // kept on failure too: the later steps read them
	if err != nil {
		return err
	}
	bound := submitBound(len(keys), load.Rate())
	window := b.timing.restartWindow(bound)
	if err := b.sys.setBankAssessment(ctx, window); err != nil {
		return fmt.Errorf("lengthening the bank's assessment: %w", err)
	}
	if err := b.sys.setBankFaults(ctx, banksim.Faults{RateLimit: bankRateLimit}); err != nil {
		return fmt.Errorf("putting the bank's own rate limit in force: %w", err)
	}
	sampler := b.startBankSampler(ctx, bound+time.Duration(window.MaxDelay)+5*time.Minute)
	first, err := b.submitAll(ctx, ctrl, bound)
	if err != nil {
		sampler.stop()
		return err
	}
	again, err := b.stopAndStart(ctx, ctrl, window)
	samples := sampler.stop()
	if err != nil {
		return err
	}
	after, err := b.sys.bankStats(ctx, true)
	if err != nil {
		return err
	}
	b.reportFirstStart(first, samples, load, window)
	b.reportRestart(again, samples, before, after)
	return nil
}

// restoreAfterRestart puts the bank's real assessment back and the controller running, also
// when the scenario failed, so that the later steps find the system as they expect it.
func (b *bench) restoreAfterRestart(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil // the run is over: the stack stops with everything in it
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var errs []error
	if err := b.sys.setBankAssessment(ctx, b.timing.realWindow()); err != nil {
		errs = append(errs, fmt.Errorf("%w: putting the bank's assessment back: %w", errFatal, err))
	}
	if err := b.sys.setBankFaults(ctx, banksim.Faults{}); err != nil {
		errs = append(errs, fmt.Errorf("%w: lifting the bank's rate limit: %w", errFatal, err))
	}
	if ctrl := b.sys.stack.Controllers[0]; !ctrl.Running() {
		if err := ctrl.Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%w: starting the controller after scenario 5: %w", errFatal, err))
		}
	}
	return errors.Join(errs...)
}

// firstStart is what the controller's first start, with every application unsubmitted, took.
type firstStart struct {
	startedAt, allSubmitted time.Time
	bound                   time.Duration
}

// submitAll starts the controller and waits, at most bound from the start, until it has
// submitted every application.
func (b *bench) submitAll(ctx context.Context, ctrl *devenv.Process, bound time.Duration) (firstStart, error) {
	f := firstStart{startedAt: time.Now(), bound: bound}
	if err := ctrl.Start(ctx); err != nil {
		return f, fmt.Errorf("%w: starting the controller with every application unsubmitted: %w", errFatal, err)
	}
	left := bound - time.Since(f.startedAt)
	if err := b.sys.watch.waitFor(ctx, b.pending, isPending, left); err != nil {
		return f, fmt.Errorf("waiting for every application to be submitted (the bank's assessment outlasts %s only): %w", bound, err)
	}
	f.allSubmitted = time.Now()
	return f, nil
}

// restartRun is what the stop and the start observed.
type restartRun struct {
	stillPending                   int
	stopped                        time.Time // when the controller had exited
	stopTook, readyAfter, allFinal time.Duration
	startedAt                      time.Time
	finalErr                       error
}

// stopAndStart stops the controller, pauses, starts it again, hastens the bank's decisions
// resumeWatch after the start, and waits until every application is final, at most the bank's
// longest assessment and two minutes from the start.
func (b *bench) stopAndStart(ctx context.Context, ctrl *devenv.Process, window banksim.Assessment) (restartRun, error) {
	var run restartRun
	stopping := time.Now()
	if err := ctrl.Stop(); err != nil {
		return run, fmt.Errorf("%w: stopping the controller: %w", errFatal, err)
	}
	run.stopped = time.Now()
	run.stopTook = run.stopped.Sub(stopping)
	run.stillPending = len(b.pending) - b.sys.watch.count(b.pending, isFinal)
	time.Sleep(restartPause)
	run.startedAt = time.Now()
	if err := ctrl.Start(ctx); err != nil {
		return run, fmt.Errorf("%w: starting the controller again: %w", errFatal, err)
	}
	run.readyAfter = time.Since(run.startedAt)
	if !sleepUntil(ctx, run.startedAt.Add(resumeWatch)) {
		return run, ctx.Err()
	}
	if err := b.sys.hastenBank(ctx, hastenFirstIn); err != nil {
		return run, err
	}
	run.finalErr = b.sys.watch.waitFor(ctx, b.pending, isFinal, time.Duration(window.MaxDelay)+2*time.Minute)
	run.allFinal = time.Since(run.startedAt)
	return run, nil
}

// reportFirstStart reports the controller's first start, with every application created and
// none submitted: how fast it submitted them and whether its bank calls stayed within its limit.
func (b *bench) reportFirstStart(f firstStart, samples bankSamples, load loadResult, window banksim.Assessment) {
	r, sc, n := b.rep, scenarioRestart, len(b.pending)
	r.add(sc, "creation rate through the gateway, controller stopped", load.Rate(), "/s",
		fmt.Sprintf("%d applications, concurrency %d", n, b.scale.concurrency))
	r.add(sc, "bank's assessment during the scenario, shortest", seconds(time.Duration(window.MinDelay)), "s",
		fmt.Sprintf("to %s (PUT /admin/assessment): %d x the creation time or N / %.0f per s, whichever is longer "+
			"(at least %s, at most %s), plus %s for the stop, so that none is decided before the stop; "+
			"the real 5-20 s is put back after", time.Duration(window.MaxDelay),
			submitSlowdown, minSubmitRate, minSubmitBound, maxSubmitBound, stopMargin))
	took := f.allSubmitted.Sub(f.startedAt)
	r.add(sc, "first start with every application unsubmitted: start -> every one submitted", seconds(took), "s",
		fmt.Sprintf("status Pending seen by a watch; bound %s", f.bound))
	r.add(sc, "first start: submissions/s, mean", float64(n)/took.Seconds(), "/s", "")
	during := samples.between(f.startedAt, f.allSubmitted)
	r.addReading(sc, "first start: peak submissions/s (1 s window)", peakPerSecond(during.created), "/s",
		"accepted by the bank, sampled every "+sampleEvery.String())
	b.reportBankLoad("first start", during)
}

// reportBankLoad reports the load the controller put on the bank over the samples: the peak
// rate of the requests it made (the bank's 429s included) against the bank's own capacity, and
// the 429s, which a controller that keeps within it never gets.
func (b *bench) reportBankLoad(when string, s bankSamples) {
	r, sc := b.rep, scenarioRestart
	r.addReading(sc, when+": peak bank calls/s (1 s window)", peakPerSecond(s.calls), "/s",
		fmt.Sprintf("submissions and polls the bank answered; the controller's own limit: --bank-qps %d + --bank-burst %d",
			b.timing.bankQPS, b.timing.bankBurst))
	r.atMost(sc, when+": peak bank requests/s, 429s included (1 s window)", peakPerSecond(s.requests), "/s", bankRateLimit,
		"target: the bank's own capacity (the simulator's rate limit), set apart from the controller's flags")
	r.atMost(sc, when+": requests the bank refused with 429", increase(s.throttled), "", 0,
		fmt.Sprintf("the simulator answers 429 above %d requests/s", bankRateLimit))
}

// reportRestart reports the stop and the start with every application pending at the bank.
func (b *bench) reportRestart(run restartRun, samples bankSamples, before, end banksim.Stats) {
	r, sc, n := b.rep, scenarioRestart, len(b.pending)
	undecided := b.undecidedAt(run.stopped, end)
	r.add(sc, "applications pending at the stop", float64(undecided), "",
		fmt.Sprintf("of %d submitted: not yet decided by the bank when the controller had exited (%d not final in the API)",
			n, run.stillPending))
	r.check(sc, "every application pending at the bank at the stop", undecided == n, strconv.Itoa(undecided)+" of "+strconv.Itoa(n))
	r.add(sc, "stop (SIGTERM) -> exited", seconds(run.stopTook), "s", "")
	r.add(sc, "start -> ready (/readyz)", seconds(run.readyAfter), "s", "")
	after := samples.since(run.startedAt)
	b.reportResume(run, after.calls)
	b.reportBankLoad("after the restart", after)
	r.add(sc, "start -> every application final", seconds(run.allFinal), "s",
		fmt.Sprintf("%s after the start the bank's decisions are hastened, the first %s later and the others as spaced "+
			"as they were (POST /admin/hasten): see the next figure for the controller's share", resumeWatch, hastenFirstIn))
	r.add(sc, "last bank decision -> every application final", seconds(b.lastFinal(b.pending).Sub(b.lastDecision(end))), "s",
		"the bank's record of its last decision to the watch seeing the last final status")
	final := b.sys.watch.count(b.pending, isFinal)
	note := ""
	if run.finalErr != nil {
		note = run.finalErr.Error()
	}
	r.check(sc, "nothing lost: every application final", final == n, strconv.Itoa(final)+" of "+strconv.Itoa(n)+" final; "+note)
	created := end.ApplicationsCreated - before.ApplicationsCreated
	r.check(sc, "nothing submitted twice: one accepted submission each", created == int64(n) && b.onceEach(b.pending, end),
		fmt.Sprintf("the bank accepted %d submissions for %d applications", created, n))
	r.add(sc, "duplicate submissions refused by the bank", float64(end.DuplicatesRefused-before.DuplicatesRefused), "",
		"a submission repeated after a crash is refused, and the controller carries on")
}

// reportResume reports how soon after the start the controller called the bank again: calls
// are the bank's call count sampled from the start.
func (b *bench) reportResume(run restartRun, calls []sample) {
	r, sc := b.rep, scenarioRestart
	base := 0.0
	if len(calls) > 0 {
		base = calls[0].value
	}
	if first, ok := firstAbove(calls, base); ok {
		r.add(sc, "start -> first bank call", seconds(first.at.Sub(run.startedAt)), "s",
			"sampled every "+sampleEvery.String())
	} else {
		r.fail(sc, fmt.Errorf("no bank call was seen after the restart"))
	}
}

// undecidedAt counts the pending applications the bank had not decided at t, by its own record.
func (b *bench) undecidedAt(t time.Time, stats banksim.Stats) int {
	n := 0
	for _, k := range b.pending {
		if d, ok := stats.Decisions[string(b.sys.watch.get(k).uid)]; !ok || !d.DecidedAt.Before(t) {
			n++
		}
	}
	return n
}

// lastDecision is the bank's last decision among the pending applications, by its own record.
func (b *bench) lastDecision(stats banksim.Stats) time.Time {
	var last time.Time
	for _, k := range b.pending {
		if d, ok := stats.Decisions[string(b.sys.watch.get(k).uid)]; ok && d.DecidedAt.After(last) {
			last = d.DecidedAt
		}
	}
	return last
}

// peakPerSecond is the peak rate over the 1 s window that every peak of the scenario names.
func peakPerSecond(samples []sample) reading { return peakRate(samples, time.Second) }

// increase is how much a sampled counter grew from its first sample to its last; a counter
// sampled fewer than twice measures nothing.
func increase(samples []sample) reading {
	if len(samples) < 2 {
		return notMeasured("%d samples: an increase needs two", len(samples))
	}
	return measured(samples[len(samples)-1].value - samples[0].value)
}

// bankSamples are the bank's counts, sampled together: the calls it answered, all its requests
// (its 429s included), its 429s, and its accepted submissions.
type bankSamples struct {
	calls, requests, throttled, created []sample
}

// between keeps the samples taken from `from` to `to`, both included.
func (s bankSamples) between(from, to time.Time) bankSamples {
	keep := func(all []sample) []sample {
		var out []sample
		for _, x := range all {
			if !x.at.Before(from) && !x.at.After(to) {
				out = append(out, x)
			}
		}
		return out
	}
	return bankSamples{calls: keep(s.calls), requests: keep(s.requests), throttled: keep(s.throttled), created: keep(s.created)}
}

// since keeps the samples taken from t on.
func (s bankSamples) since(t time.Time) bankSamples {
	return s.between(t, time.Now())
}

// bankSampler samples the bank's counts in the background.
type bankSampler struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	samples bankSamples
}

// startBankSampler samples the bank's counts every sampleEvery until stop, for at most bound.
func (b *bench) startBankSampler(ctx context.Context, bound time.Duration) *bankSampler {
	ctx, cancel := context.WithTimeout(ctx, bound)
	s := &bankSampler{cancel: cancel}
	s.wg.Go(func() {
		ticker := time.NewTicker(sampleEvery)
		defer ticker.Stop()
		for {
			if st, err := b.sys.bankStats(ctx, false); err == nil {
				// The simulator's own time of the counts: on a loaded machine a read's trip
				// varies by tens of milliseconds, which over a 1 s window was a 3% error.
				s.samples.calls = append(s.samples.calls, sample{at: st.At, value: bankCalls(st)})
				s.samples.requests = append(s.samples.requests, sample{at: st.At, value: bankRequests(st)})
				s.samples.throttled = append(s.samples.throttled, sample{at: st.At, value: float64(st.FaultsInjected.Throttled)})
				s.samples.created = append(s.samples.created, sample{at: st.At, value: float64(st.ApplicationsCreated)})
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	})
	return s
}

// stop ends the sampling and answers the samples.
func (s *bankSampler) stop() bankSamples {
	s.cancel()
	s.wg.Wait()
	return s.samples
}
