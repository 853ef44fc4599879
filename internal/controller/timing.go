package controller

import (
	"math/rand/v2"
	"time"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// Timing is when the controller asks the bank again. The defaults follow the bank: it never
// decides sooner than 5 seconds after a submission, so polling earlier only costs calls.
type Timing struct {
	// FirstPollDelay is the earliest a submitted application is polled: the bank's minimum
	// assessment time.
	FirstPollDelay time.Duration
	// PollInterval is the wait between two polls of a pending application. It bounds how late
	// the controller notices a decision.
	PollInterval time.Duration
	// NotFoundGrace is how long after a submission a 404 is taken for lag rather than for a
	// bank that restarted and forgot the application.
	NotFoundGrace time.Duration
	// Jitter spreads each wait by up to this fraction, so that thousands of applications
	// submitted together do not poll the bank in lockstep.
	Jitter float64
}

// DefaultTiming is the timing used when the flags are left alone.
var DefaultTiming = Timing{
	FirstPollDelay: 5 * time.Second,
	PollInterval:   2 * time.Second,
	NotFoundGrace:  30 * time.Second,
	Jitter:         0.2,
}

// jitter returns d stretched by a random fraction in [0, t.Jitter): never shorter than d, so
// that a first poll never comes before the bank could have decided.
func (t Timing) jitter(d time.Duration, random func() float64) time.Duration {
	return d + time.Duration(float64(d)*t.Jitter*random())
}

// firstPollDue is when to poll an application, submitted at submittedAt, for the first time in
// this process. Normally that is the bank's minimum assessment time after the submission (plus
// jitter). A poll that is already overdue (the controller was down, or just started with
// thousands of pending applications) is spread over one poll interval instead of firing at
// once, so that a restart does not hit the bank with every pending application in one second.
func (t Timing) firstPollDue(now, submittedAt time.Time, random func() float64) time.Time {
	first := submittedAt.Add(t.FirstPollDelay)
	if now.Before(first) {
		return now.Add(t.jitter(first.Sub(now), random))
	}
	return now.Add(time.Duration(float64(t.PollInterval) * random()))
}

// nextPollDue is when to poll again after a poll at now found the application still pending:
// one poll interval, spread evenly around it by the jitter (2s ± 10% by default). Centred
// rather than stretched, because this wait bounds how late a decision is noticed: the
// interval stays the mean, and the worst case is interval × (1 + Jitter/2), not
// interval × (1 + Jitter).
func (t Timing) nextPollDue(now time.Time, random func() float64) time.Time {
	return now.Add(t.PollInterval + time.Duration(float64(t.PollInterval)*t.Jitter*(random()-0.5)))
}

// bankForgot reports whether a 404 for an application means the bank lost it (it restarted)
// rather than that the bank has not caught up yet.
func (t Timing) bankForgot(now time.Time, status *loansv1alpha1.LoanApplicationStatus) bool {
	if status.SubmittedAt == nil {
		return true
	}
	return now.Sub(status.SubmittedAt.Time) >= t.NotFoundGrace
}

// defaultRandom is the source of jitter in production.
func defaultRandom() float64 { return rand.Float64() }
