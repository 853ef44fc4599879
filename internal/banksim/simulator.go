// Package banksim simulates the bank partner (its contract is in docs/design.md): the same paths,
// status codes, JSON bodies and error strings, decisions drawn after a random delay, state in
// memory only, and on demand the faults of a partner over a network (errors, latency,
// throttling, dropped connections, and chosen answers such as a proxy's 401). It serves its
// OpenAPI description at /docs and admin endpoints under /admin/ for tests and benchmarks: its
// counts (stats), the faults, the assessment window (how long the bank takes to decide) and
// amnesia (reset).
//
// Bodies are compact JSON without a trailing newline, the form public clients of the real
// bank compare against.
package banksim

import (
	"math"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
)

// Simulator is an in-memory bank. It is safe for concurrent use; no lock is shared by all
// requests.
type Simulator struct {
	cfg        Config
	life       atomic.Pointer[lifetime]
	faults     atomic.Pointer[faultState]
	assessment atomic.Pointer[Assessment]
	handler    http.Handler
}

// lifetime is everything the bank forgets when it restarts. A reset swaps the whole of it
// at once, so requests in flight finish on the old one and never see half a reset.
type lifetime struct {
	apps   *store
	counts counters
	policy decisionPolicy
}

// New returns a simulator configured by cfg; zero fields take the real bank's defaults.
func New(cfg Config) *Simulator {
	s := &Simulator{cfg: cfg.withDefaults()}
	s.SetFaults(s.cfg.Faults)
	s.SetAssessment(Assessment{MinDelay: Duration(s.cfg.MinDelay), MaxDelay: Duration(s.cfg.MaxDelay)})
	s.Reset()
	s.handler = s.routes()
	return s
}

// Handler returns the whole HTTP surface: the bank API, /docs, /openapi.json and /admin/.
func (s *Simulator) Handler() http.Handler { return s.handler }

// SetFaults replaces the injected faults; requests arriving afterwards see the new ones.
// Out-of-range values are clamped, and a forced answer that could not be sent is turned off
// (PUT /admin/faults refuses them instead).
func (s *Simulator) SetFaults(f Faults) {
	f.FailRate = min(max(f.FailRate, 0), 1)
	f.DropRate = min(max(f.DropRate, 0), 1)
	f.RateLimit = max(f.RateLimit, 0)
	f.Latency = max(f.Latency, 0)
	if f.Answer.Validate() != nil {
		f.Answer = ForcedAnswer{}
	}
	s.faults.Store(newFaultState(f))
}

// Faults returns the faults injected now.
func (s *Simulator) Faults() Faults { return s.faults.Load().Faults }

// SetAssessment replaces the assessment window for applications submitted from now on; those
// already submitted keep the decision moment drawn for them. Out-of-range bounds are clamped
// (PUT /admin/assessment refuses them instead).
func (s *Simulator) SetAssessment(a Assessment) {
	a = a.clamped()
	s.assessment.Store(&a)
}

// Assessment returns the assessment window in force now.
func (s *Simulator) Assessment() Assessment { return *s.assessment.Load() }

// Hasten moves every pending decision earlier by one amount, chosen so that the first of them
// comes h.FirstIn from now: the decisions keep their order, their spacing and their outcomes,
// and none moves later. It answers how many it moved; none when the first pending decision is
// already due within h.FirstIn. A benchmark that lengthened the assessment to keep applications
// pending while it measured something calls it once done, so that they are decided as they
// would have been, without waiting out the long window. An out-of-range FirstIn is clamped
// (POST /admin/hasten refuses it instead).
func (s *Simulator) Hasten(h Hastening) int {
	life := s.life.Load()
	now := s.cfg.Now().UnixNano()
	earliest := int64(math.MaxInt64)
	life.apps.each(func(app *application) {
		if at := app.decidedAt.Load(); at > now {
			earliest = min(earliest, at)
		}
	})
	firstIn := min(max(h.FirstIn, 0), Duration(MaxAssessmentDelay))
	shift := earliest - (now + int64(firstIn))
	if earliest == math.MaxInt64 || shift <= 0 {
		return 0
	}
	moved := 0
	life.apps.each(func(app *application) {
		if at := app.decidedAt.Load(); at > now && app.bringForward(at-shift) {
			moved++
		}
	})
	return moved
}

// Reset forgets every application and every count, as a restart of the bank does. With a
// zero Config.Seed it also draws a new seed, so resubmitted applications get new decisions.
// The faults and the assessment window are the simulator's settings, not the bank's memory:
// they stay as they are.
func (s *Simulator) Reset() {
	seed := uint64(s.cfg.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}
	s.life.Store(&lifetime{
		apps:   newStore(),
		policy: decisionPolicy{seed: seed, approveRatio: s.cfg.ApproveRatio},
	})
}

// Stats returns the counts of the current lifetime, with every application's submissions and
// every decision whose moment has passed.
func (s *Simulator) Stats() Stats {
	life := s.life.Load()
	now := s.cfg.Now()
	st := life.counts.snapshot(now)
	addApplications(&st, life.apps, now)
	return st
}

// routes maps the paths of the real bank and of the simulator's own extras.
func (s *Simulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/applications", s.api(OperationSubmit, s.createApplication))
	mux.HandleFunc("GET /api/jobs", s.api(OperationPoll, s.getJob))
	mux.HandleFunc("GET /docs", serveDocsPage)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /admin/stats", s.serveStats)
	mux.HandleFunc("GET /admin/faults", s.serveFaults)
	mux.HandleFunc("PUT /admin/faults", s.replaceFaults)
	mux.HandleFunc("GET /admin/assessment", s.serveAssessment)
	mux.HandleFunc("PUT /admin/assessment", s.replaceAssessment)
	mux.HandleFunc("POST /admin/hasten", s.hasten)
	mux.HandleFunc("POST /admin/reset", s.serveReset)
	if s.cfg.LogRequests {
		return logRequests(mux, s.cfg.Logger)
	}
	return mux
}
