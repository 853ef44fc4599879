package invariant

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
)

// The invariant checker must be able to fail: each broken history below is one it must catch.
func TestInvariantCountsCatchBrokenHistories(t *testing.T) {
	life := func(created, refused int64, submissions map[string]int64, decisions map[string]string) banksim.Stats {
		st := banksim.Stats{ApplicationsCreated: created, DuplicatesRefused: refused, Submissions: submissions,
			Decisions: map[string]banksim.Decision{}}
		for id, status := range decisions {
			st.Decisions[id] = banksim.Decision{Status: status}
		}
		return st
	}
	app := func(uid string, phase loansv1alpha1.Phase) loansv1alpha1.LoanApplication {
		a := loansv1alpha1.LoanApplication{}
		a.Name, a.UID, a.Status.Phase = "app-"+uid, types.UID(uid), phase
		return a
	}
	uids := map[string]string{"a": "app-a", "b": "app-b"}
	for _, tc := range []struct {
		name      string
		lifetimes []banksim.Stats
		apps      []loansv1alpha1.LoanApplication
		want      Counts
	}{
		{
			name:      "a clean history: one submission each, decisions as the bank said",
			lifetimes: []banksim.Stats{life(2, 1, map[string]int64{"a": 1, "b": 1}, map[string]string{"a": "completed", "b": "rejected"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved), app("b", loansv1alpha1.PhaseRejected)},
			want:      Counts{Approved: 1, Rejected: 1, RefusedAsAlreadyUsed: 1},
		},
		{
			name:      "the bank accepted one id twice",
			lifetimes: []banksim.Stats{life(3, 0, map[string]int64{"a": 2, "b": 1}, map[string]string{"a": "completed", "b": "completed"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved), app("b", loansv1alpha1.PhaseApproved)},
			want:      Counts{Duplicates: 1, Approved: 2},
		},
		{
			name:      "the bank counted more acceptances than ids",
			lifetimes: []banksim.Stats{life(3, 0, map[string]int64{"a": 1, "b": 1}, map[string]string{"a": "completed", "b": "completed"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved), app("b", loansv1alpha1.PhaseApproved)},
			want:      Counts{Duplicates: 1, Approved: 2},
		},
		{
			name:      "approved although the bank rejected",
			lifetimes: []banksim.Stats{life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "rejected"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want:      Counts{Mismatched: 1, Approved: 1},
		},
		{
			name:      "approved before the bank decided",
			lifetimes: []banksim.Stats{life(1, 0, map[string]int64{"a": 1}, nil)},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want:      Counts{Mismatched: 1, Approved: 1},
		},
		{
			name:      "approved without the bank ever seeing it",
			lifetimes: []banksim.Stats{life(0, 0, map[string]int64{}, nil)},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want:      Counts{Mismatched: 1, Approved: 1},
		},
		{
			name:      "a submission of an id that is no application",
			lifetimes: []banksim.Stats{life(2, 0, map[string]int64{"a": 1, "zzz": 1}, map[string]string{"a": "rejected"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseRejected)},
			want:      Counts{Unknown: 1, Rejected: 1},
		},
		{
			name: "after amnesia the latest lifetime's decision counts",
			lifetimes: []banksim.Stats{
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "completed"}),
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "rejected"}),
			},
			apps: []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseRejected)},
			want: Counts{Resubmitted: 1, Rejected: 1},
		},
		{
			name: "after amnesia, following the forgotten decision is a mismatch",
			lifetimes: []banksim.Stats{
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "completed"}),
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "rejected"}),
			},
			apps: []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want: Counts{Resubmitted: 1, Mismatched: 1, Approved: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Counts
			got.countSubmissions(tc.lifetimes, uids)
			for _, a := range tc.apps {
				got.checkDecision(a, tc.lifetimes)
			}
			if got != tc.want {
				t.Errorf("counts %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Check as a whole: each broken state of the namespace below must fail it with its count and a
// problem that says what broke; the clean one must pass.
func TestCheckCatchesLostExtraUnsettledAndMislabelledApplications(t *testing.T) {
	app := func(name, uid string, phase loansv1alpha1.Phase, label string) loansv1alpha1.LoanApplication {
		a := loansv1alpha1.LoanApplication{}
		a.Name, a.UID, a.Status.Phase = name, types.UID(uid), phase
		if label != "" {
			a.Labels = map[string]string{loansv1alpha1.LabelStatus: label}
		}
		return a
	}
	bank := banksim.Stats{ApplicationsCreated: 2, Submissions: map[string]int64{"uid-a": 1, "uid-b": 1},
		Decisions: map[string]banksim.Decision{"uid-a": {Status: "completed"}, "uid-b": {Status: "rejected"}}}
	a := app("a", "uid-a", loansv1alpha1.PhaseApproved, "approved")
	b := app("b", "uid-b", loansv1alpha1.PhaseRejected, "rejected")
	old := app("old", "uid-old", loansv1alpha1.PhaseApproved, "approved")
	names, before := []string{"a", "b"}, []string{"old"}
	for _, tc := range []struct {
		name    string
		listed  []loansv1alpha1.LoanApplication
		want    Counts
		problem string
	}{
		{
			name:   "every application final, labelled and decided by the bank: passes",
			listed: []loansv1alpha1.LoanApplication{old, a, b},
			want:   Counts{Applications: 2, Objects: 2, Approved: 1, Rejected: 1},
		},
		{
			name:    "a created application is gone",
			listed:  []loansv1alpha1.LoanApplication{old, a},
			want:    Counts{Applications: 2, Objects: 1, Lost: 1, Approved: 1, Unknown: 1},
			problem: "1 applications lost: [b]",
		},
		{
			name:    "an application nobody created",
			listed:  []loansv1alpha1.LoanApplication{old, a, b, app("stray", "uid-stray", "", "pending")},
			want:    Counts{Applications: 2, Objects: 3, Extra: 1, Approved: 1, Rejected: 1},
			problem: "1 applications nobody created: [stray]",
		},
		{
			name:    "an application still pending when the wait ended",
			listed:  []loansv1alpha1.LoanApplication{old, a, app("b", "uid-b", loansv1alpha1.PhasePending, "pending")},
			want:    Counts{Applications: 2, Objects: 2, NotFinal: 1, Approved: 1},
			problem: "1 applications not final when the wait ended",
		},
		{
			name:    "a final application whose label still says pending",
			listed:  []loansv1alpha1.LoanApplication{old, a, app("b", "uid-b", loansv1alpha1.PhaseRejected, "pending")},
			want:    Counts{Applications: 2, Objects: 2, WrongLabel: 1, Approved: 1, Rejected: 1},
			problem: `1 applications whose status label is not their phase's: [b (phase "Rejected", label "pending")]`,
		},
		{
			name:    "a final application without a label",
			listed:  []loansv1alpha1.LoanApplication{old, a, app("b", "uid-b", loansv1alpha1.PhaseRejected, "")},
			want:    Counts{Applications: 2, Objects: 2, WrongLabel: 1, Approved: 1, Rejected: 1},
			problem: "applications whose status label is not their phase's",
		},
		{
			name:    "a label that says approved over a rejection",
			listed:  []loansv1alpha1.LoanApplication{old, a, app("b", "uid-b", loansv1alpha1.PhaseRejected, "approved")},
			want:    Counts{Applications: 2, Objects: 2, WrongLabel: 1, Approved: 1, Rejected: 1},
			problem: "applications whose status label is not their phase's",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(tc.listed, before, names, []banksim.Stats{bank})
			if got.Counts != tc.want {
				t.Errorf("counts %+v, want %+v", got.Counts, tc.want)
			}
			switch {
			case tc.problem == "" && !got.Passed():
				t.Errorf("problems %q on a clean history", got.Problems)
			case tc.problem != "" && !slices.ContainsFunc(got.Problems, func(p string) bool { return strings.Contains(p, tc.problem) }):
				t.Errorf("problems %q, want one with %q", got.Problems, tc.problem)
			}
		})
	}
}

func TestProblemLinesNameAFewAndCountTheRest(t *testing.T) {
	var r Result
	r.problem([]string{"a", "b", "c", "d", "e", "f", "g"}, "applications lost")
	if want := []string{"7 applications lost: [a b c d e] and 2 more"}; !slices.Equal(r.Problems, want) {
		t.Errorf("problems %q, want %q", r.Problems, want)
	}
	r = Result{}
	r.problem(nil, "applications lost")
	if r.Problems != nil {
		t.Errorf("problems %q for no application", r.Problems)
	}
}

func TestAllFinalWaitsForEveryNamedApplicationAndItsLabel(t *testing.T) {
	app := func(name string, phase loansv1alpha1.Phase, label string) loansv1alpha1.LoanApplication {
		a := loansv1alpha1.LoanApplication{}
		a.Name, a.Status.Phase, a.Labels = name, phase, map[string]string{loansv1alpha1.LabelStatus: label}
		return a
	}
	approved := app("a", loansv1alpha1.PhaseApproved, "approved")
	for _, tc := range []struct {
		name   string
		listed []loansv1alpha1.LoanApplication
		want   bool
	}{
		{"all final and labelled", []loansv1alpha1.LoanApplication{approved, app("b", loansv1alpha1.PhaseRejected, "rejected")}, true},
		{"one missing", []loansv1alpha1.LoanApplication{approved}, false},
		{"one pending", []loansv1alpha1.LoanApplication{approved, app("b", loansv1alpha1.PhasePending, "pending")}, false},
		{"one final, its label behind", []loansv1alpha1.LoanApplication{approved, app("b", loansv1alpha1.PhaseRejected, "pending")}, false},
	} {
		if got := AllFinal(tc.listed, []string{"a", "b"}); got != tc.want {
			t.Errorf("%s: AllFinal = %v, want %v", tc.name, got, tc.want)
		}
	}
}
