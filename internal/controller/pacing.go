package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// phaseIndex indexes the cached applications by status.phase, so that the pacer counts the
// pending ones without walking every final one.
const phaseIndex = "loans.lendo.se/phase"

func indexPhase(obj client.Object) []string {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	if !ok {
		return nil
	}
	return []string{string(app.Status.Phase)}
}

// countEvery is how long a count of the pending applications is used: often enough to follow a
// burst of submissions (their first polls come FirstPollDelay later), seldom enough that
// counting costs nothing beside the passes.
const countEvery = time.Second

// pacer gives the passes the timing paced for the applications awaiting a decision
// (Timing.paced). The count comes from the informer cache, not from a tally kept by hand: a
// new leader, or a process that missed events, counts the same.
type pacer struct {
	reader client.Reader
	clock  clock.PassiveClock
	timing Timing

	mu        sync.Mutex
	countedAt time.Time
	paced     Timing
}

func newPacer(reader client.Reader, clk clock.PassiveClock, timing Timing) *pacer {
	pollIntervalSeconds.Set(timing.PollInterval.Seconds())
	return &pacer{reader: reader, clock: clk, timing: timing, paced: timing}
}

// timingNow answers the paced timing, counting again when the last count is older than
// countEvery. When the count fails (the cache is stopping), the last pace stays.
func (p *pacer) timingNow(ctx context.Context) Timing {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	if !p.countedAt.IsZero() && now.Sub(p.countedAt) < countEvery {
		return p.paced
	}
	var pending loansv1alpha1.LoanApplicationList
	err := p.reader.List(ctx, &pending, client.MatchingFields{phaseIndex: string(loansv1alpha1.PhasePending)},
		client.UnsafeDisableDeepCopy)
	if err != nil {
		logf.FromContext(ctx).V(1).Info("could not count the pending applications; keeping the poll interval", "error", err.Error())
		return p.paced
	}
	p.countedAt = now
	p.paced = p.timing.paced(len(pending.Items))
	pollIntervalSeconds.Set(p.paced.PollInterval.Seconds())
	return p.paced
}
