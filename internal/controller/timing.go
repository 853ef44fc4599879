package controller

import (
	"hash/fnv"
	"time"

	"k8s.io/apimachinery/pkg/types"

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
	// Jitter spreads the first poll, and the wait after a 429, by up to this fraction, so that
	// thousands of applications submitted together do not poll the bank in lockstep.
	Jitter float64
	// MaxWait caps every wait the controller plans (--retry-max-delay): a Retry-After in the
	// year 9999 must not park an application for ever, nor overflow the workqueue's timer.
	MaxWait time.Duration
	// BankQPS is the most calls a second the bank takes (--bank-qps); 0 for no limit.
	BankQPS float64
	// PollBudget is the share of BankQPS the polls may take, the rest being left to the
	// submissions (--poll-budget).
	PollBudget float64
	// MaxPollInterval bounds how far the poll interval stretches (--max-poll-interval); at or
	// below PollInterval it never stretches.
	MaxPollInterval time.Duration

	// stretched is set by paced when the bank's budget, not PollInterval, sets the interval.
	stretched bool
}

// DefaultTiming is the timing used when the flags are left alone.
var DefaultTiming = Timing{
	FirstPollDelay:  5 * time.Second,
	PollInterval:    2 * time.Second,
	NotFoundGrace:   30 * time.Second,
	Jitter:          0.2,
	MaxWait:         2 * time.Minute,
	PollBudget:      0.8,
	MaxPollInterval: 30 * time.Second,
}

// minThrottleWait is the least the controller waits after a 429 that gave no Retry-After.
const minThrottleWait = time.Second

// The poll schedule of an application is derived from its status alone, so that a new leader
// (or a former one after a pause) polls exactly when the old one would have, without a table in
// memory: the first poll is due FirstPollDelay after the submission, stretched by the
// application's own jitter, and the later ones every PollInterval after it.
//
// submittedAt reads back from the API server cut to whole seconds, up to a second before the
// bank really accepted the application. The schedule therefore starts at the next whole
// second, which is never before the true submission, whether the time was read back or is the
// precise one this process wrote.
func (t Timing) firstPollAt(submittedAt time.Time, spread float64) time.Time {
	start := submittedAt.Truncate(time.Second).Add(time.Second)
	return start.Add(t.FirstPollDelay + time.Duration(float64(t.FirstPollDelay)*t.Jitter*spread))
}

// nextPollAt is when to poll again after a poll at now: the first slot of the schedule strictly
// after now, so that a late poll catches up with the schedule.
//
// A stretched interval (paced) is a spacing instead: the next poll a whole interval after this
// one. It changes with the count of pending applications, and the slots of a longer interval
// fall elsewhere, often moments after this poll: every application polled while the count grew
// then polled again early, past the budget the stretch keeps to. With 10,000 applications being
// submitted the polls ran at 2,000 a second, the bank client's whole limit, for a budget of
// 1,600, and the submissions, which wait behind due polls, slowed to 43 a second.
func (t Timing) nextPollAt(first, now time.Time) time.Time {
	if now.Before(first) {
		return first
	}
	if t.stretched {
		return now.Add(t.PollInterval)
	}
	slots := now.Sub(first)/t.PollInterval + 1
	return first.Add(slots * t.PollInterval)
}

// paced is the timing for this many applications awaiting a decision. Each is polled once per
// PollInterval, so they make pending/PollInterval polls a second; past the budget (PollBudget of
// BankQPS) the interval stretches to pending/budget, up to MaxPollInterval. Polling faster than
// the bank takes calls would only queue them in the bank client's limiter, or draw 429s, and
// starve the submissions; a longer interval delays each decision's notice by less than it.
func (t Timing) paced(pending int) Timing {
	if t.BankQPS <= 0 || t.PollBudget <= 0 || t.MaxPollInterval <= t.PollInterval {
		return t
	}
	need := time.Duration(float64(pending) / (t.PollBudget * t.BankQPS) * float64(time.Second))
	if need > t.PollInterval {
		t.PollInterval, t.stretched = min(need, t.MaxPollInterval), true
	}
	return t
}

// throttledWait is how long to wait after a 429: the bank's Retry-After (at least
// minThrottleWait), stretched by the jitter so that everything throttled at once does not come
// back at once, and never more than MaxWait.
func (t Timing) throttledWait(retryAfter time.Duration, spread float64) time.Duration {
	wait := min(max(retryAfter, minThrottleWait), t.MaxWait)
	wait += time.Duration(float64(wait) * t.Jitter * spread)
	return min(wait, t.MaxWait)
}

// bankForgot reports whether a 404 for an application means the bank lost it (it restarted)
// rather than that the bank has not caught up yet.
func (t Timing) bankForgot(now time.Time, status *loansv1alpha1.LoanApplicationStatus) bool {
	if status.SubmittedAt == nil {
		return true
	}
	return now.Sub(status.SubmittedAt.Time) >= t.NotFoundGrace
}

// spreadOf is an application's own jitter in [0, 1), computed from its UID: the same in every
// process and every pass, so that it can place polls without remembering them, and uniform
// across applications, so that it spreads them.
func spreadOf(uid types.UID) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	return float64(h.Sum64()>>11) / float64(uint64(1)<<53)
}
