package controller

import (
	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// pacer gives the passes the timing paced for the applications awaiting a decision
// (Timing.paced). The count is the phase gauge's tally of the cache (phaseCounts), kept by the
// informer's events and begun again with the cache: a new leader, or a process that missed
// events, counts the same, and a pass reads it without listing anything.
type pacer struct {
	counts *phaseCounts
	timing Timing
}

func newPacer(counts *phaseCounts, timing Timing) *pacer {
	pollIntervalSeconds.Set(timing.PollInterval.Seconds())
	return &pacer{counts: counts, timing: timing}
}

// timingNow answers the timing paced for the pending applications the cache holds now.
func (p *pacer) timingNow() Timing {
	paced := p.timing.paced(p.counts.count(string(loansv1alpha1.PhasePending)))
	pollIntervalSeconds.Set(paced.PollInterval.Seconds())
	return paced
}
