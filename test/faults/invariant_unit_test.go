package faults_test

import (
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
		want      invariantCounts
	}{
		{
			name:      "a clean history: one submission each, decisions as the bank said",
			lifetimes: []banksim.Stats{life(2, 1, map[string]int64{"a": 1, "b": 1}, map[string]string{"a": "completed", "b": "rejected"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved), app("b", loansv1alpha1.PhaseRejected)},
			want:      invariantCounts{Approved: 1, Rejected: 1, RefusedAsAlreadyUsed: 1},
		},
		{
			name:      "the bank accepted one id twice",
			lifetimes: []banksim.Stats{life(3, 0, map[string]int64{"a": 2, "b": 1}, map[string]string{"a": "completed", "b": "completed"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved), app("b", loansv1alpha1.PhaseApproved)},
			want:      invariantCounts{Duplicates: 1, Approved: 2},
		},
		{
			name:      "the bank counted more acceptances than ids",
			lifetimes: []banksim.Stats{life(3, 0, map[string]int64{"a": 1, "b": 1}, map[string]string{"a": "completed", "b": "completed"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved), app("b", loansv1alpha1.PhaseApproved)},
			want:      invariantCounts{Duplicates: 1, Approved: 2},
		},
		{
			name:      "approved although the bank rejected",
			lifetimes: []banksim.Stats{life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "rejected"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want:      invariantCounts{Mismatched: 1, Approved: 1},
		},
		{
			name:      "approved before the bank decided",
			lifetimes: []banksim.Stats{life(1, 0, map[string]int64{"a": 1}, nil)},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want:      invariantCounts{Mismatched: 1, Approved: 1},
		},
		{
			name:      "approved without the bank ever seeing it",
			lifetimes: []banksim.Stats{life(0, 0, map[string]int64{}, nil)},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want:      invariantCounts{Mismatched: 1, Approved: 1},
		},
		{
			name:      "a submission of an id that is no application",
			lifetimes: []banksim.Stats{life(2, 0, map[string]int64{"a": 1, "zzz": 1}, map[string]string{"a": "rejected"})},
			apps:      []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseRejected)},
			want:      invariantCounts{Unknown: 1, Rejected: 1},
		},
		{
			name: "after amnesia the latest lifetime's decision counts",
			lifetimes: []banksim.Stats{
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "completed"}),
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "rejected"}),
			},
			apps: []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseRejected)},
			want: invariantCounts{Resubmitted: 1, Rejected: 1},
		},
		{
			name: "after amnesia, following the forgotten decision is a mismatch",
			lifetimes: []banksim.Stats{
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "completed"}),
				life(1, 0, map[string]int64{"a": 1}, map[string]string{"a": "rejected"}),
			},
			apps: []loansv1alpha1.LoanApplication{app("a", loansv1alpha1.PhaseApproved)},
			want: invariantCounts{Resubmitted: 1, Mismatched: 1, Approved: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got invariantCounts
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
