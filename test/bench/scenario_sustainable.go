package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/lendo/loan-operator/internal/banksim"
)

const scenarioSustainable = "7 sustainable rate"

// sustainableTarget is the rate, applications per second, the system must sustain on 2 cores.
const sustainableTarget = 120.0

// maxUnanswered is the share of a step's creates that may be dropped or fail with the rate
// still counted as sustained.
const maxUnanswered = 0.01

// rateStep is what one rate of the sustainable-rate scenario measured.
type rateStep struct {
	load openLoopResult
	// toStatus are the decision -> status delays of the step's applications; notFinal counts
	// those not final within the step's bound, undecided those final without a bank decision
	// on record.
	toStatus            []time.Duration
	notFinal, undecided int
	// lastFinalLag is the time from the step's last create to its last application final.
	lastFinalLag reading
	// apiServerCPU is the API server's CPU per application in ms, less idle.
	apiServerCPU reading
	// retries counts the creates retried after a 503 or 429.
	retries int64
}

// p99 and p50 of decision -> status, in seconds.
func (s rateStep) p99() reading { return percentileIn(s.toStatus, 99, secondUnit) }
func (s rateStep) p50() reading { return percentileIn(s.toStatus, 50, secondUnit) }

// sustained says whether the system carried the rate: (nearly) every create answered, every
// application final within the step's bound, and decision -> status p99 within limit. When not,
// why says what failed.
func (s rateStep) sustained(limit time.Duration) (ok bool, why string) {
	unanswered := s.load.Scheduled - s.load.Done
	p99 := s.p99()
	switch {
	case float64(unanswered) > maxUnanswered*float64(s.load.Scheduled):
		return false, fmt.Sprintf("%d of %d creates dropped or failed", unanswered, s.load.Scheduled)
	case s.notFinal > 0:
		return false, fmt.Sprintf("%d applications not final within the bound", s.notFinal)
	case !p99.ok():
		return false, "decision -> status p99 not measured: " + p99.missing
	case p99.value > limit.Seconds():
		return false, fmt.Sprintf("decision -> status p99 %s s > %s", formatValue(p99.value), limit)
	}
	return true, ""
}

// sustainableRate is the highest rate offered that the system sustained, and every lower rate
// too: a rate carried above one that was not is luck of a noisy machine, not capacity.
func sustainableRate(steps []rateStep, limit time.Duration) reading {
	best := 0.0
	for _, s := range steps {
		ok, why := s.sustained(limit)
		if !ok {
			if best == 0 {
				return notMeasured("not even the lowest rate offered (%s/s) was sustained: %s", rateText(s.load.Offered), why)
			}
			break
		}
		best = s.load.Offered
	}
	if best == 0 {
		return notMeasured("no rate was offered")
	}
	return measured(best)
}

// sustainableLimit is the most decision -> status may take at the 99th percentile: the poll
// interval + 1 s, scenario 1's target.
func (t timing) sustainableLimit() time.Duration { return t.pollInterval + time.Second }

// sustainableRateScenario offers applications through the gateway at rising rates, each for
// stepLength (open loop), waits after each until its applications are final, and measures per
// rate decision -> status, the lag of the last final after the last create, and the API
// server's CPU per application less idle. Each rate starts on a drained system, so that a rate
// is not charged with the backlog of the one before. A rate whose applications are not final
// within its bound ends the scenario: the rates above it would only measure the backlog.
func (b *bench) sustainableRateScenario(ctx context.Context) error {
	stopWatch, err := b.ensureWatch(ctx)
	if err != nil {
		return err
	}
	defer stopWatch()
	if b.idle.window <= 0 {
		idle, err := b.measureIdle(ctx, b.scale.stepLength)
		if err != nil {
			return err
		}
		b.idle = idle
	}
	steps := make([]rateStep, 0, len(b.scale.stepRates))
	for _, rate := range b.scale.stepRates {
		progress("%s: %s/s for %s", scenarioSustainable, rateText(rate), b.scale.stepLength)
		step, err := b.offerRate(ctx, rate)
		if err != nil {
			return err
		}
		steps = append(steps, step)
		if step.notFinal > 0 {
			break
		}
	}
	b.reportSustainable(steps)
	printSteps(os.Stderr, steps, b.timing.sustainableLimit(), b.floorFigure())
	return nil
}

// offerRate runs one step: stepLength of creates at rate, then the wait until they are final.
func (b *bench) offerRate(ctx context.Context, rate float64) (rateStep, error) {
	n := int(rate * b.scale.stepLength.Seconds())
	cpuBefore, started := b.sys.takeCPU(), time.Now()
	keys, load, retries := b.createOpenLoop(ctx, n, rate)
	step := rateStep{load: load, retries: retries}
	bound := b.scale.stepLength + b.timing.bankMax + 2*time.Minute
	if err := b.waitAllFinal(ctx, keys, bound); err != nil {
		if ctx.Err() != nil {
			return step, err
		}
		step.notFinal = len(keys) - b.sys.watch.count(keys, isFinal)
		step.apiServerCPU = notMeasured("not every application final within %s", bound)
	} else {
		busy := busyCPU{seconds: b.sys.takeCPU().since(cpuBefore)[apiServerProcess], window: time.Since(started)}
		step.apiServerCPU = apiServerCPUPer(busy, b.idle, len(keys))
	}
	step.lastFinalLag = sinceLoad(b.lastFinal(keys), load.loadResult)
	stats, err := b.sys.bankStats(ctx, true)
	if err != nil {
		return step, err
	}
	step.toStatus, step.undecided = b.decisionToStatus(keys, stats)
	return step, nil
}

// decisionToStatus are the decision -> status delays of the applications seen final, and how
// many final ones have no bank decision on record.
func (b *bench) decisionToStatus(keys []types.NamespacedName, stats banksim.Stats) ([]time.Duration, int) {
	out := make([]time.Duration, 0, len(keys))
	undecided := 0
	for _, k := range keys {
		s := b.sys.watch.get(k)
		if s.finalAt.IsZero() {
			continue
		}
		d, ok := stats.Decisions[string(s.uid)]
		if !ok {
			undecided++
			continue
		}
		out = append(out, s.finalAt.Sub(d.DecidedAt))
	}
	return out, undecided
}

func (b *bench) reportSustainable(steps []rateStep) {
	r, sc, limit := b.rep, scenarioSustainable, b.timing.sustainableLimit()
	note := fmt.Sprintf("the highest rate offered (%v) sustained, with every lower one: at most %.0f%% of its creates dropped or failed, "+
		"every application final, decision -> status p99 <= poll interval + 1 s (%s); %s of open-loop creates per rate",
		b.scale.stepRates, 100*maxUnanswered, limit, b.scale.stepLength)
	if b.scale.stepLength > b.timing.bankMax {
		r.atLeast(sc, "sustainable rate", sustainableRate(steps, limit), "/s", sustainableTarget, note)
	} else {
		// A rate held for less than the bank's longest assessment is a burst: its first
		// decisions come after its last create, and the pipeline never carries both at once.
		r.addReading(sc, "sustainable rate", sustainableRate(steps, limit), "/s", fmt.Sprintf(
			"%s: a burst no longer than the bank's longest assessment (%s), so not judged against the target of %.0f/s, "+
				"which the full run's rates of 2 min are", note, b.timing.bankMax, sustainableTarget))
	}
	for _, s := range steps {
		at := "at " + rateText(s.load.Offered) + "/s: "
		ok, why := s.sustained(limit)
		r.addReading(sc, at+"achieved creation rate", s.load.achieved(), "/s",
			fmt.Sprintf("%s; %d retried after a 503 or 429", s.load.describe(), s.retries))
		r.addReading(sc, at+"decision -> status, median", s.p50(), "s", "")
		r.addReading(sc, at+"decision -> status, p99", s.p99(), "s", fmt.Sprintf("%d not final, %d final without a bank decision on record",
			s.notFinal, s.undecided))
		r.addReading(sc, at+"last creation -> every application final", s.lastFinalLag, "s", "")
		r.addReading(sc, at+"kube-apiserver CPU per application", s.apiServerCPU, "ms", "less idle CPU, as in scenario 1")
		r.check(sc, at+"sustained", ok, why)
	}
	b.reportFloor(sc, b.idle)
}

// floorFigure is the raw write floor's kube-apiserver CPU per object, for the table.
func (b *bench) floorFigure() reading {
	if b.floor == nil {
		return notMeasured("the floor step did not run")
	}
	return apiServerCPUPer(b.floor.apiServer, b.idle, b.floor.objects)
}

// printSteps prints the table of the rates offered.
func printSteps(w io.Writer, steps []rateStep, limit time.Duration, floor reading) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "\nRATE\tACHIEVED\tDROPPED\tDECISION->STATUS P50\tP99 (<= %s)\tLAST FINAL LAG\tAPISERVER CPU/APP\tSUSTAINED\n",
		limit)
	for _, s := range steps {
		ok, why := s.sustained(limit)
		verdict := yes
		if !ok {
			verdict = "NO: " + why
		}
		_, _ = fmt.Fprintf(tw, "%s/s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", rateText(s.load.Offered), show(s.load.achieved(), "/s"),
			s.load.Dropped, show(s.p50(), "s"), show(s.p99(), "s"), show(s.lastFinalLag, "s"), show(s.apiServerCPU, "ms"), verdict)
	}
	_, _ = fmt.Fprintf(tw, "raw write floor (create + status PATCH + label PATCH), kube-apiserver CPU per object:\t%s\n",
		show(floor, "ms"))
	_ = tw.Flush()
}

// show prints a reading with its unit.
func show(r reading, unit string) string {
	if !r.ok() {
		return "-"
	}
	return formatValue(r.value) + " " + unit
}

// rateText prints a rate as it was given: 25, 12.5.
func rateText(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
