package faults_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/lendo/loan-operator/test/invariant"
)

// The fault tests, by their name in the summary. Each must end with a line in
// bin/faults/last-run.json: a test that never reached its end shows as missing.
const (
	testControllerKill = "controller SIGKILL x5"
	testFlakyBank      = "bank 5xx, latency, 429, drops"
	testBankAmnesia    = "bank restart (amnesia)"
	testAPIServer      = "kube-apiserver restart"
	testGatewayLoad    = "gateway: 200 concurrent clients"
	testLeaderHandover = "leader killed (2 replicas)"
	outcomePassed      = "passed"
	outcomeMissing     = "missing: the test did not run"
	outcomeRunning     = "running"
)

// faultTests are every fault test the summary expects, in the order of the report.
var faultTests = []string{testControllerKill, testFlakyBank, testBankAmnesia, testAPIServer, testGatewayLoad, testLeaderHandover}

// testOutcome is one fault test's line in the summary.
type testOutcome struct {
	Test string `json:"test"`
	// Outcome is "passed", Ginkgo's state of the spec otherwise ("failed", "timedout"...), or
	// "missing" for a test that did not run.
	Outcome string `json:"outcome"`
	// Failure is Ginkgo's failure message of a test that did not pass.
	Failure string `json:"failure,omitempty"`
	// Checked tells whether the invariant checker ran; its counts and problems follow.
	Checked bool `json:"checked"`
	invariant.Result
	// ViaGateway and ViaAPI split Applications by the door they came in through.
	ViaGateway int `json:"via_gateway"`
	ViaAPI     int `json:"via_api"`
	// FaultsInjected counts the faults of the test (kills, restarts, bank faults...).
	FaultsInjected int `json:"faults_injected"`
	// Faults says what they were.
	Faults string `json:"faults"`
	// Figures holds what the test measured (takeover time, 503 latency, goroutines...).
	Figures map[string]string `json:"figures,omitempty"`
	Seconds float64           `json:"seconds"`

	spec  string // Ginkgo's full text of the spec
	start time.Time
}

// runSummary collects the outcomes of a run.
type runSummary struct {
	mu      sync.Mutex
	Started time.Time `json:"started"`
	// AllPassed is true only when every fault test ran, passed and was checked.
	AllPassed bool          `json:"all_passed"`
	Outcomes  []testOutcome `json:"outcomes"`
}

// begin opens the line of a fault test, run by the Ginkgo spec of that full text; finish
// closes it with the spec's outcome, whatever happened in between.
func (s *runSummary) begin(test, spec string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Started.IsZero() {
		s.Started = time.Now()
	}
	s.Outcomes = append(s.Outcomes, testOutcome{Test: test, Outcome: outcomeRunning, spec: spec, start: time.Now()})
}

// line is the open line of test (nil when begin was not called). The caller holds mu.
func (s *runSummary) line(test string) *testOutcome {
	for i := len(s.Outcomes) - 1; i >= 0; i-- {
		if s.Outcomes[i].Test == test {
			return &s.Outcomes[i]
		}
	}
	return nil
}

// checked records the invariant checker's result and what the test sent and injected. It is
// called before the test asserts anything on the result, so that a failed check is recorded.
func (s *runSummary) checked(test string, result invariant.Result, c *created, faults int, what string, figures map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.line(test)
	if o == nil {
		panic("the summary has no line for " + test + ": call begin first")
	}
	o.Checked, o.Result = true, result
	o.ViaGateway, o.ViaAPI, o.FaultsInjected, o.Faults = c.viaGateway, c.viaAPI, faults, what
	o.Figures = figures
}

// figure adds one measured figure to the line of test.
func (s *runSummary) figure(test, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.line(test); o != nil {
		if o.Figures == nil {
			o.Figures = map[string]string{}
		}
		o.Figures[name] = value
	}
}

// finish closes the line opened by the spec of this report, if any, with its outcome.
func (s *runSummary) finish(report types.SpecReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.Outcomes {
		o := &s.Outcomes[i]
		if o.spec != report.FullText() || o.Outcome != outcomeRunning {
			continue
		}
		o.Outcome = report.State.String()
		if report.State.Is(types.SpecStatePassed) {
			o.Outcome = outcomePassed
		} else {
			o.Failure = report.Failure.Message
		}
		o.Seconds = time.Since(o.start).Seconds()
	}
}

// complete adds a missing line for every fault test that never began, and sets AllPassed. The
// caller holds mu.
func (s *runSummary) complete() {
	s.AllPassed = true
	for _, test := range faultTests {
		if s.line(test) == nil {
			s.Outcomes = append(s.Outcomes, testOutcome{Test: test, Outcome: outcomeMissing})
		}
	}
	for _, o := range s.Outcomes {
		if o.Outcome != outcomePassed || !o.Checked || !o.Passed() {
			s.AllPassed = false
		}
	}
}

// report prints one line per test and the totals to w, and writes them as JSON to path. A
// report that cannot be written is an error: the figures docs/reliability.md cites would be
// stale.
func (s *runSummary) report(w io.Writer, path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.complete()
	var apps, faults, dups, lost int
	_, _ = fmt.Fprintln(w, "faults summary: test | outcome | applications (gateway/API) | faults injected | "+
		"duplicates | lost | mismatched | figures")
	for _, o := range s.Outcomes {
		_, _ = fmt.Fprintf(w, "faults summary: %s | %s | %d (%d/%d) | %d (%s) | %d | %d | %d | %v\n", o.Test, o.Outcome, o.Applications,
			o.ViaGateway, o.ViaAPI, o.FaultsInjected, o.Faults, o.Duplicates, o.Lost, o.Mismatched, o.Figures)
		for _, p := range o.Problems {
			_, _ = fmt.Fprintf(w, "faults summary: %s: %s\n", o.Test, p)
		}
		apps += o.Applications
		faults += o.FaultsInjected
		dups += o.Duplicates
		lost += o.Lost
	}
	_, _ = fmt.Fprintf(w, "faults summary: total | %d applications | %d faults injected | %d duplicates | %d lost | all passed: %v\n",
		apps, faults, dups, lost, s.AllPassed)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
