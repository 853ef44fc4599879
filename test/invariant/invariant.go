// Package invariant is the check every fault test of test/faults ends with: no loan application
// lost, none extra, none submitted twice, none decided without the bank or against it. It is a
// pure function of what the API server listed and what the bank simulator recorded, so that its
// table tests run in `make test` and it can fail in every way it claims to catch.
//
// It asserts nothing itself: it answers counts and the problems it found, so that the faults
// suite records them whether the check passes or not, then asserts.
package invariant

import (
	"fmt"
	"slices"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/test/stacktest"
)

// Counts is what Check found. A passing check has Lost, Extra, NotFinal, WrongLabel,
// Duplicates, Unknown and Mismatched at 0.
type Counts struct {
	// Applications is how many the test created; Objects how many new LoanApplications exist.
	Applications int `json:"applications"`
	Objects      int `json:"objects"`
	// Lost counts created applications that no longer exist.
	Lost int `json:"lost"`
	// Extra counts new applications that the test did not create.
	Extra int `json:"extra"`
	// NotFinal counts applications not decided when the wait ended.
	NotFinal int `json:"not_final"`
	// WrongLabel counts applications whose status label is not their phase's.
	WrongLabel int `json:"wrong_label"`
	// Duplicates counts accepted submissions beyond one per application in one bank lifetime.
	Duplicates int `json:"duplicates"`
	// Unknown counts submissions of ids that are no application of the test.
	Unknown int `json:"unknown"`
	// Mismatched counts final applications whose phase is not what the bank decided.
	Mismatched int `json:"mismatched"`
	// Resubmitted counts applications the bank saw in more than one lifetime (after amnesia).
	Resubmitted int `json:"resubmitted"`
	// Approved and Rejected count the decisions.
	Approved int `json:"approved"`
	Rejected int `json:"rejected"`
	// RefusedAsAlreadyUsed counts submissions the bank refused as already used: retries after
	// a lost answer or a crash, which the controller takes as "submitted".
	RefusedAsAlreadyUsed int `json:"refused_as_already_used"`
}

// Result is the counts and, when the check fails, what failed: one line per kind of problem,
// naming the applications (at most a few).
type Result struct {
	Counts
	Problems []string `json:"problems,omitempty"`
}

// Passed tells whether the check found nothing wrong.
func (r Result) Passed() bool { return len(r.Problems) == 0 }

// namesShown bounds the names a problem line lists.
const namesShown = 5

// Check compares the applications listed in the namespace (listed) with those the test
// created (names), those that existed before it (before), and the bank's lifetimes (the
// earlier ones taken before it restarted, then the current one). It finds:
//   - created applications that are missing, and new ones nobody created;
//   - applications not final, or whose status label is not their phase's;
//   - final applications whose phase is not the decision of the latest lifetime of the bank
//     that accepted them, or that no lifetime accepted;
//   - in any lifetime, more than one accepted submission per id, or submissions of ids that
//     are no application of the test.
func Check(listed []loansv1alpha1.LoanApplication, before, names []string, lifetimes []banksim.Stats) Result {
	r := Result{Counts: Counts{Applications: len(names)}}
	byName := map[string]loansv1alpha1.LoanApplication{}
	uids := map[string]string{} // uid -> name, of the new applications
	var extra []string
	for _, app := range listed {
		if slices.Contains(before, app.Name) {
			continue
		}
		r.Objects++
		uids[string(app.UID)] = app.Name
		byName[app.Name] = app
		if !slices.Contains(names, app.Name) {
			extra = append(extra, app.Name)
		}
	}
	r.Extra = len(extra)
	r.problem(extra, "applications nobody created")

	var lost, notFinal, wrongLabel, mismatched []string
	for _, name := range names {
		app, ok := byName[name]
		switch {
		case !ok:
			lost = append(lost, name)
		case !app.Status.Phase.IsFinal():
			notFinal = append(notFinal, fmt.Sprintf("%s (phase %q)", name, app.Status.Phase))
		default:
			if msg := r.checkDecision(app, lifetimes); msg != "" {
				mismatched = append(mismatched, msg)
			}
		}
		if ok && app.Labels[loansv1alpha1.LabelStatus] != app.Status.Phase.LabelValue() {
			wrongLabel = append(wrongLabel, fmt.Sprintf("%s (phase %q, label %q)", name, app.Status.Phase,
				app.Labels[loansv1alpha1.LabelStatus]))
		}
	}
	r.Lost, r.NotFinal, r.WrongLabel = len(lost), len(notFinal), len(wrongLabel)
	r.problem(lost, "applications lost")
	r.problem(notFinal, "applications not final when the wait ended")
	r.problem(wrongLabel, "applications whose status label is not their phase's")
	r.problem(mismatched, "applications whose status is not the bank's decision")

	unknown := r.countSubmissions(lifetimes, uids)
	r.problem(unknown, "submissions of ids that are no application")
	if r.Duplicates > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d submissions accepted twice", r.Duplicates))
	}
	return r
}

// problem adds a problem line when items is not empty.
func (r *Result) problem(items []string, what string) {
	if len(items) == 0 {
		return
	}
	shown := items[:min(len(items), namesShown)]
	more := ""
	if len(items) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(items)-len(shown))
	}
	r.Problems = append(r.Problems, fmt.Sprintf("%d %s: %v%s", len(items), what, shown, more))
}

// countSubmissions counts, over the bank's lifetimes, accepted submissions beyond one per id,
// ids that are no application (uids maps the applications' uids to names; they are answered),
// and applications seen in more than one lifetime.
func (c *Counts) countSubmissions(lifetimes []banksim.Stats, uids map[string]string) (unknown []string) {
	seen := map[string]int{}
	for _, life := range lifetimes {
		c.RefusedAsAlreadyUsed += int(life.DuplicatesRefused)
		// The created counter and the per-id map are counted apart by the simulator: acceptances
		// beyond one per id show in either; the larger of the two is the lifetime's duplicates.
		perID := 0
		for id, n := range life.Submissions {
			perID += int(max(0, n-1))
			if _, ok := uids[id]; !ok {
				unknown = append(unknown, id)
			}
			seen[id]++
		}
		c.Duplicates += max(perID, int(life.ApplicationsCreated)-len(life.Submissions))
	}
	c.Unknown = len(unknown)
	for _, lifetimesSeen := range seen {
		if lifetimesSeen > 1 {
			c.Resubmitted++
		}
	}
	slices.Sort(unknown)
	return unknown
}

// checkDecision compares one final application with the decision of the latest lifetime of the
// bank that accepted it, counts it, and describes a mismatch ("" when it matches).
func (c *Counts) checkDecision(app loansv1alpha1.LoanApplication, lifetimes []banksim.Stats) string {
	uid := string(app.UID)
	switch app.Status.Phase {
	case loansv1alpha1.PhaseApproved:
		c.Approved++
	case loansv1alpha1.PhaseRejected:
		c.Rejected++
	}
	for i := len(lifetimes) - 1; i >= 0; i-- {
		if _, ok := lifetimes[i].Submissions[uid]; !ok {
			continue
		}
		decision, ok := lifetimes[i].Decisions[uid]
		want := stacktest.PhaseOfBankStatus(decision.Status)
		if !ok || app.Status.Phase != want {
			c.Mismatched++
			return fmt.Sprintf("%s (uid %s) is %s; the bank (lifetime %d) decided %q", app.Name, uid, app.Status.Phase, i+1, decision.Status)
		}
		return ""
	}
	c.Mismatched++
	return fmt.Sprintf("%s (uid %s) is %s, but no lifetime of the bank ever accepted it", app.Name, uid, app.Status.Phase)
}

// AllFinal tells whether every named application is listed, final, with its label in line: the
// moment a fault test stops waiting.
func AllFinal(listed []loansv1alpha1.LoanApplication, names []string) bool {
	settled := map[string]bool{}
	for _, app := range listed {
		settled[app.Name] = app.Status.Phase.IsFinal() && app.Labels[loansv1alpha1.LabelStatus] == app.Status.Phase.LabelValue()
	}
	for _, name := range names {
		if !settled[name] {
			return false
		}
	}
	return true
}
