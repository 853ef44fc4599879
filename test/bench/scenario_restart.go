package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
)

// restartPause is how long the controller stays stopped, while the bank decides.
const restartPause = 5 * time.Second

// sampleEvery is how often the bank's counts are sampled during a restart.
const sampleEvery = 100 * time.Millisecond

// restartUnderLoad is scenario 5: with the applications submitted and pending at the bank, the
// controller is stopped (SIGTERM) and started again. It measures the time to resume and the
// peak rate of bank calls, and checks that nothing is lost or submitted twice.
func (b *bench) restartUnderLoad(ctx context.Context) error {
	before, err := b.sys.bankStats(ctx, false)
	if err != nil {
		return err
	}
	keys, _, err := b.createThroughGateway(ctx, scenarioRestart, b.scale.apps)
	b.pending = keys // kept on failure too: the later steps read them
	if err != nil {
		return err
	}
	if err := b.sys.watch.waitFor(ctx, b.pending, isPending, 2*time.Minute); err != nil {
		return fmt.Errorf("waiting for every application to be submitted: %w", err)
	}
	stillPending := len(b.pending) - b.sys.watch.count(b.pending, isFinal)

	sampler := b.startBankSampler(ctx)
	ctrl := b.sys.stack.Controllers[0]
	stopping := time.Now()
	if err := ctrl.Stop(); err != nil {
		sampler.stop()
		return fmt.Errorf("%w: stopping the controller: %w", errFatal, err)
	}
	stopTook := time.Since(stopping)
	time.Sleep(restartPause)
	startedAt := time.Now()
	if err := ctrl.Start(ctx); err != nil {
		sampler.stop()
		return fmt.Errorf("%w: starting the controller again: %w", errFatal, err)
	}
	readyAfter := time.Since(startedAt)
	finalErr := b.sys.watch.waitFor(ctx, b.pending, isFinal, b.timing.bankMax+2*time.Minute)
	allFinal := time.Since(startedAt)
	samples := sampler.stop()
	after, err := b.sys.bankStats(ctx, true)
	if err != nil {
		return err
	}
	b.reportRestart(restartFigures{
		stillPending: stillPending, stopTook: stopTook, readyAfter: readyAfter, allFinal: allFinal,
		startedAt: startedAt, samples: samples, before: before, after: after, finalErr: finalErr,
	})
	return nil
}

// restartFigures is what scenario 5 observed.
type restartFigures struct {
	stillPending                   int
	stopTook, readyAfter, allFinal time.Duration
	startedAt                      time.Time
	samples                        []sample
	before, after                  banksim.Stats
	finalErr                       error
}

func (b *bench) reportRestart(f restartFigures) {
	r, sc, n := b.rep, scenarioRestart, len(b.pending)
	r.add(sc, "applications pending at the stop", float64(f.stillPending), "",
		fmt.Sprintf("of %d submitted; the rest were already decided", n))
	r.add(sc, "stop (SIGTERM) -> exited", seconds(f.stopTook), "s", "")
	r.add(sc, "start -> ready (/readyz)", seconds(f.readyAfter), "s", "")
	afterStart := samplesSince(f.samples, f.startedAt)
	base := 0.0
	if len(afterStart) > 0 {
		base = afterStart[0].value
	}
	if first, ok := firstAbove(afterStart, base); ok {
		r.add(sc, "start -> first bank call", seconds(first.at.Sub(f.startedAt)), "s",
			"sampled every "+sampleEvery.String())
	} else {
		r.fail(sc, fmt.Errorf("no bank call was seen after the restart"))
	}
	r.atMost(sc, "peak bank calls/s after the restart (1 s window)", peakRate(afterStart, time.Second), "/s",
		float64(b.timing.bankQPS+b.timing.bankBurst), "target: --bank-qps "+strconv.Itoa(b.timing.bankQPS)+
			" + --bank-burst "+strconv.Itoa(b.timing.bankBurst)+", not "+strconv.Itoa(n)+" at once")
	r.add(sc, "start -> every application final", seconds(f.allFinal), "s", "")
	final := b.sys.watch.count(b.pending, isFinal)
	note := ""
	if f.finalErr != nil {
		note = f.finalErr.Error()
	}
	r.check(sc, "nothing lost: every application final", final == n, strconv.Itoa(final)+" of "+strconv.Itoa(n)+" final; "+note)
	created := f.after.ApplicationsCreated - f.before.ApplicationsCreated
	r.check(sc, "nothing submitted twice: one accepted submission each", created == int64(n) && b.onceEach(b.pending, f.after),
		fmt.Sprintf("the bank accepted %d submissions for %d applications", created, n))
	r.add(sc, "duplicate submissions refused by the bank", float64(f.after.DuplicatesRefused-f.before.DuplicatesRefused), "",
		"a submission repeated after a crash is refused, and the controller carries on")
}

func samplesSince(samples []sample, t time.Time) []sample {
	for i, s := range samples {
		if !s.at.Before(t) {
			return samples[i:]
		}
	}
	return nil
}

// bankSampler samples the number of bank calls in the background.
type bankSampler struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	samples []sample
}

// startBankSampler samples the bank's calls every sampleEvery until stop, for at most ten
// minutes.
func (b *bench) startBankSampler(ctx context.Context) *bankSampler {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	s := &bankSampler{cancel: cancel}
	s.wg.Go(func() {
		ticker := time.NewTicker(sampleEvery)
		defer ticker.Stop()
		for {
			if st, err := b.sys.bankStats(ctx, false); err == nil {
				s.samples = append(s.samples, sample{at: time.Now(), value: bankCalls(st)})
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
func (s *bankSampler) stop() []sample {
	s.cancel()
	s.wg.Wait()
	return s.samples
}
