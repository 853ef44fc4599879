package banksim

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Stats is what the simulator counted since it started or was last reset. GET /admin/stats
// serves it as JSON.
type Stats struct {
	// At is when the counts were read, on the simulator's clock, so that a rate between two
	// reads is exact whatever each read's trip over the network took.
	At time.Time `json:"at"`
	// ApplicationsCreated counts submissions answered 201 (or created, then dropped).
	ApplicationsCreated int64 `json:"applications_created"`
	// DuplicatesRefused counts submissions refused because the id was already used.
	DuplicatesRefused int64 `json:"duplicates_refused"`
	// JobPolls counts job requests that reached the bank's logic (not preempted by a fault).
	JobPolls int64 `json:"job_polls"`
	// Responses counts the answers of the bank API by HTTP status code ("201", "429"...).
	Responses map[string]int64 `json:"responses"`
	// FaultsInjected counts the injected faults by kind.
	FaultsInjected FaultCounts `json:"faults_injected"`
	// Submissions counts the accepted submissions of each application id. The bank refuses
	// duplicates, so each count is 1 in one lifetime of the bank; the map lets a test state
	// "exactly one accepted submission per application" without relying on that.
	Submissions map[string]int64 `json:"submissions,omitempty"`
	// Decisions holds, for each application whose decision moment has passed, what the bank
	// decided and when.
	Decisions map[string]Decision `json:"decisions,omitempty"`
}

// FaultCounts counts injected faults by kind.
type FaultCounts struct {
	// Failures counts requests answered 500 or 503 on purpose.
	Failures int64 `json:"failures"`
	// Throttled counts requests answered 429.
	Throttled int64 `json:"throttled"`
	// Drops counts connections closed without an answer.
	Drops int64 `json:"drops"`
	// Delayed counts answers held back by the Latency knob.
	Delayed int64 `json:"delayed"`
	// Forced counts the answers chosen by the Answer knob.
	Forced int64 `json:"forced"`
}

// Decision is the bank's decision on one application.
type Decision struct {
	// Status is "completed" (approved) or "rejected".
	Status string `json:"status"`
	// CreatedAt is when the bank accepted the application.
	CreatedAt time.Time `json:"created_at"`
	// DecidedAt is when the status turned: CreatedAt plus the drawn delay, or earlier when
	// POST /admin/hasten brought it forward.
	DecidedAt time.Time `json:"decided_at"`
	// SeenAt is when a job poll first answered the decided status; absent until then.
	// SeenAt - DecidedAt is how late the caller noticed.
	SeenAt *time.Time `json:"seen_at,omitempty"`
}

// maxStatusCode bounds the status codes counted one by one; anything else is not HTTP.
const maxStatusCode = 600

// counters are the lock-free counts of one lifetime of the bank.
type counters struct {
	created, duplicates, polls                  atomic.Int64
	failures, throttled, drops, delayed, forced atomic.Int64
	responses                                   [maxStatusCode]atomic.Int64
}

func (c *counters) countResponse(code int) {
	if code > 0 && code < maxStatusCode {
		c.responses[code].Add(1)
	}
}

// snapshot copies the counts into a Stats without the per-application maps.
func (c *counters) snapshot(now time.Time) Stats {
	st := Stats{
		At:                  now,
		ApplicationsCreated: c.created.Load(),
		DuplicatesRefused:   c.duplicates.Load(),
		JobPolls:            c.polls.Load(),
		Responses:           make(map[string]int64),
		FaultsInjected: FaultCounts{
			Failures:  c.failures.Load(),
			Throttled: c.throttled.Load(),
			Drops:     c.drops.Load(),
			Delayed:   c.delayed.Load(),
			Forced:    c.forced.Load(),
		},
	}
	for code := range c.responses {
		if n := c.responses[code].Load(); n > 0 {
			st.Responses[strconv.Itoa(code)] = n
		}
	}
	return st
}

// addApplications fills the per-application maps of st from apps as seen at now.
func addApplications(st *Stats, apps *store, now time.Time) {
	st.Submissions = make(map[string]int64)
	st.Decisions = make(map[string]Decision)
	apps.each(func(app *application) {
		st.Submissions[app.id]++
		decidedAt := app.decisionMoment()
		if now.Before(decidedAt) {
			return
		}
		d := Decision{Status: app.outcome, CreatedAt: app.createdAt, DecidedAt: decidedAt}
		if seen := app.decisionSeenAt.Load(); seen != 0 {
			t := time.Unix(0, seen)
			d.SeenAt = &t
		}
		st.Decisions[app.id] = d
	})
}
