package banksim

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// The bank's job states, as it writes them.
const (
	statusPending   = "pending"
	statusCompleted = "completed"
	statusRejected  = "rejected"
)

// application is one application the bank knows. Everything but decidedAt and decisionSeenAt is
// fixed at creation, and those two are atomic, so readers need no lock once they hold the pointer.
type application struct {
	id        string // as the caller wrote it
	firstName string
	lastName  string
	jobID     string
	createdAt time.Time
	// decidedAt is the moment the status turns (Unix nanoseconds): created + the drawn delay,
	// brought forward by Simulator.Hasten, never postponed.
	decidedAt atomic.Int64
	outcome   string // statusCompleted or statusRejected, drawn at creation
	// decisionSeenAt is the first moment (Unix nanoseconds) a poll answered the decided
	// status, 0 until then: how late the caller noticed.
	decisionSeenAt atomic.Int64
}

// statusAt is the job status the bank shows at now: pending until the decision moment, then
// the drawn outcome for ever.
func (a *application) statusAt(now time.Time) string {
	if now.Before(a.decisionMoment()) {
		return statusPending
	}
	return a.outcome
}

// decisionMoment is when the status turns.
func (a *application) decisionMoment() time.Time { return time.Unix(0, a.decidedAt.Load()) }

// bringForward moves the decision moment to at (Unix nanoseconds) when that is earlier, and
// reports whether it did. A decision never moves later: a poll that has seen it must never see
// pending again.
func (a *application) bringForward(at int64) bool {
	for {
		old := a.decidedAt.Load()
		if at >= old {
			return false
		}
		if a.decidedAt.CompareAndSwap(old, at) {
			return true
		}
	}
}

// decisionPolicy draws the decision of each new application from (seed, application id) and
// the assessment window only, so that a seeded run is reproducible whatever the order in which
// applications arrive.
type decisionPolicy struct {
	seed         uint64
	approveRatio float64
}

// draw returns the delay within window, the outcome and the job id of the application key.
// The window must be clamped (Assessment.clamped), so that the span cannot overflow.
func (p decisionPolicy) draw(key uuid.UUID, window Assessment) (time.Duration, string, string) {
	hi, lo := binary.BigEndian.Uint64(key[:8]), binary.BigEndian.Uint64(key[8:])
	rng := rand.New(rand.NewPCG(p.seed^hi, lo))
	span := int64(window.MaxDelay - window.MinDelay)
	delay := time.Duration(window.MinDelay) + time.Duration(rng.Int64N(span+1))
	outcome := statusRejected
	if rng.Float64() < p.approveRatio {
		outcome = statusCompleted
	}
	return delay, outcome, randomUUID(rng).String()
}

// randomUUID builds a version 4 UUID from rng.
func randomUUID(rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[:8], rng.Uint64())
	binary.BigEndian.PutUint64(u[8:], rng.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// shardCount spreads applications over independent locks, so that concurrent polls and
// submissions rarely wait for each other. A power of two keeps the index a mask.
const shardCount = 256

// store holds the applications of one bank lifetime, keyed by their parsed UUID.
type store struct {
	shards [shardCount]shard
}

type shard struct {
	mu   sync.RWMutex
	apps map[uuid.UUID]*application
	_    [40]byte // keeps neighbouring shards' locks off one cache line
}

func newStore() *store {
	s := &store{}
	for i := range s.shards {
		s.shards[i].apps = make(map[uuid.UUID]*application)
	}
	return s
}

// shardOf picks the shard by mixing all bytes of the key: callers choose ids, and not all of
// them are random (sequential test ids, for one).
func (s *store) shardOf(key uuid.UUID) *shard {
	h := binary.BigEndian.Uint64(key[:8]) ^ binary.BigEndian.Uint64(key[8:])
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return &s.shards[h&(shardCount-1)]
}

// get returns the application of key, or nil.
func (s *store) get(key uuid.UUID) *application {
	sh := s.shardOf(key)
	sh.mu.RLock()
	app := sh.apps[key]
	sh.mu.RUnlock()
	return app
}

// insert stores app under key unless the key is taken, and reports whether it stored it.
func (s *store) insert(key uuid.UUID, app *application) bool {
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, taken := sh.apps[key]; taken {
		return false
	}
	sh.apps[key] = app
	return true
}

// each calls fn for every application, one shard locked at a time.
func (s *store) each(fn func(*application)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, app := range sh.apps {
			fn(app)
		}
		sh.mu.RUnlock()
	}
}
