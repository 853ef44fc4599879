package faults_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// testOutcome is one fault test's line in the summary.
type testOutcome struct {
	Test string `json:"test"`
	invariantCounts
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
}

// runSummary collects the outcomes of a run.
type runSummary struct {
	mu       sync.Mutex
	Started  time.Time     `json:"started"`
	Outcomes []testOutcome `json:"outcomes"`
}

func (s *runSummary) add(o testOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Started.IsZero() {
		s.Started = time.Now()
	}
	s.Outcomes = append(s.Outcomes, o)
}

// figure adds one measured figure to the outcome of test.
func (s *runSummary) figure(test, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.Outcomes {
		if s.Outcomes[i].Test == test {
			if s.Outcomes[i].Figures == nil {
				s.Outcomes[i].Figures = map[string]string{}
			}
			s.Outcomes[i].Figures[name] = value
		}
	}
}

// report prints one line per test and the totals, and writes them as JSON to path.
func (s *runSummary) report(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var apps, faults, dups, lost int
	fmt.Println("faults summary: test | applications (gateway/API) | faults injected | duplicates | lost | mismatched | figures")
	for _, o := range s.Outcomes {
		fmt.Printf("faults summary: %s | %d (%d/%d) | %d (%s) | %d | %d | %d | %v\n", o.Test, o.Applications, o.ViaGateway, o.ViaAPI,
			o.FaultsInjected, o.Faults, o.Duplicates, o.Lost, o.Mismatched, o.Figures)
		apps += o.Applications
		faults += o.FaultsInjected
		dups += o.Duplicates
		lost += o.Lost
	}
	fmt.Printf("faults summary: total | %d applications | %d faults injected | %d duplicates | %d lost\n", apps, faults, dups, lost)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		if data, err := json.MarshalIndent(s, "", "  "); err == nil {
			_ = os.WriteFile(path, data, 0o644)
		}
	}
}
