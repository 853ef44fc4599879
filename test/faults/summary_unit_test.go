package faults_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/lendo/loan-operator/test/invariant"
)

// specReport is Ginkgo's report of a spec of that text, in that state, with that failure.
func specReport(text string, state types.SpecState, failure string) types.SpecReport {
	return types.SpecReport{LeafNodeText: text, State: state, Failure: types.Failure{Message: failure}}
}

// The summary must show what went wrong: a failed check with its counts, a spec that failed
// before its check, and a test that never ran.
func TestSummaryShowsFailedAndMissingTests(t *testing.T) {
	s := &runSummary{}
	c := &created{viaGateway: 1, viaAPI: 1}

	s.begin(testControllerKill, "kill")
	s.checked(testControllerKill, invariant.Result{Counts: invariant.Counts{Applications: 2}}, c, 5, "kills", nil)
	s.finish(specReport("kill", types.SpecStatePassed, ""))

	s.begin(testFlakyBank, "flaky")
	lost := invariant.Result{Counts: invariant.Counts{Applications: 2, Lost: 1}, Problems: []string{"1 applications lost: [b]"}}
	s.checked(testFlakyBank, lost, c, 3, "5xx", nil)
	s.finish(specReport("flaky", types.SpecStateFailed, "the invariant does not hold"))

	s.begin(testBankAmnesia, "amnesia")
	s.finish(specReport("amnesia", types.SpecStateTimedout, "A spec timeout occurred"))

	path := filepath.Join(t.TempDir(), "faults", "last-run.json")
	if err := s.report(io.Discard, path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var written struct {
		AllPassed bool `json:"all_passed"`
		Outcomes  []struct {
			Test    string `json:"test"`
			Outcome string `json:"outcome"`
			Checked bool   `json:"checked"`
			Lost    int    `json:"lost"`
			Failure string `json:"failure"`
		} `json:"outcomes"`
	}
	if err := json.Unmarshal(data, &written); err != nil {
		t.Fatal(err)
	}
	if written.AllPassed {
		t.Error("all_passed is true with a failed, a timed-out and missing tests")
	}
	got := map[string]string{}
	for _, o := range written.Outcomes {
		got[o.Test] = o.Outcome
		switch o.Test {
		case testFlakyBank:
			if !o.Checked || o.Lost != 1 || o.Failure == "" {
				t.Errorf("the failed check is not recorded with its counts and failure: %+v", o)
			}
		case testBankAmnesia:
			if o.Checked || o.Failure == "" {
				t.Errorf("the spec that failed before its check is not recorded as such: %+v", o)
			}
		}
	}
	want := map[string]string{testControllerKill: outcomePassed, testFlakyBank: "failed", testBankAmnesia: "timedout",
		testAPIServer: outcomeMissing, testGatewayLoad: outcomeMissing, testLeaderHandover: outcomeMissing}
	for test, outcome := range want {
		if got[test] != outcome {
			t.Errorf("%s: outcome %q, want %q", test, got[test], outcome)
		}
	}
}

func TestSummaryPassesOnlyWhenEveryTestPassedItsCheck(t *testing.T) {
	s := &runSummary{}
	for _, test := range faultTests {
		s.begin(test, test)
		s.checked(test, invariant.Result{}, &created{}, 1, "", nil)
		s.finish(specReport(test, types.SpecStatePassed, ""))
	}
	if err := s.report(io.Discard, filepath.Join(t.TempDir(), "last-run.json")); err != nil {
		t.Fatal(err)
	}
	if !s.AllPassed {
		t.Errorf("all_passed is false with every test passed: %+v", s.Outcomes)
	}
}

func TestSummaryThatCannotBeWrittenIsAnError(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&runSummary{}).report(io.Discard, filepath.Join(blocker, "last-run.json")); err == nil {
		t.Error("writing under a file succeeded")
	}
}
