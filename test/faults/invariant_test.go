package faults_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// invariantCounts is what checkInvariant found. A passing check has Lost, Duplicates,
// Unknown, Mismatched and NotFinal at 0.
type invariantCounts struct {
	// Applications is how many the test created; Objects how many new LoanApplications exist.
	Applications, Objects int
	// Lost counts created applications that no longer exist.
	Lost int
	// NotFinal counts applications not decided when the wait ended.
	NotFinal int
	// Duplicates counts accepted submissions beyond one per application in one bank lifetime.
	Duplicates int
	// Unknown counts submissions of ids that are no application of the test.
	Unknown int
	// Mismatched counts applications whose phase or label is not what the bank decided.
	Mismatched int
	// Resubmitted counts applications the bank saw in more than one lifetime (after amnesia).
	Resubmitted int
	// Approved and Rejected count the decisions.
	Approved, Rejected int
	// RefusedAsAlreadyUsed counts submissions the bank refused as already used: retries after
	// a lost answer or a crash, which the controller takes as "submitted".
	RefusedAsAlreadyUsed int
}

// checkInvariant is the one check every fault test ends with. It waits (up to within) until
// every application in names is final, then asserts that:
//   - none is lost, and the namespace holds exactly before + names (nothing extra was created);
//   - each is Approved or Rejected with the matching status label, as the bank decided for its
//     uid in the latest lifetime of the bank that knew it;
//   - in every lifetime the bank accepted exactly one submission per application it saw, and
//     only submissions of these applications;
//   - every application was accepted by the bank in some lifetime.
//
// earlier holds the stats of the bank's earlier lifetimes (taken before it restarted); the
// current lifetime's are read here.
func checkInvariant(ctx context.Context, stack *devenv.Stack, bank bankAdmin, before []string, names []string,
	earlier []banksim.Stats, within time.Duration) invariantCounts {
	GinkgoHelper()
	apps := waitFinal(ctx, stack, names, within)
	lifetimes := append(slices.Clone(earlier), bank.stats(ctx))

	counts := invariantCounts{Applications: len(names)}
	var list loansv1alpha1.LoanApplicationList
	Expect(stack.Client.List(ctx, &list, client.InNamespace(appNamespace))).To(Succeed())
	uids := map[string]string{} // uid -> name
	var extra []string
	for _, app := range list.Items {
		if slices.Contains(before, app.Name) {
			continue
		}
		counts.Objects++
		uids[string(app.UID)] = app.Name
		if !slices.Contains(names, app.Name) {
			extra = append(extra, app.Name)
		}
	}
	for _, name := range names {
		if _, ok := apps[name]; !ok {
			counts.Lost++
		}
	}
	counts.countSubmissions(lifetimes, uids)
	var mismatches []string
	for _, app := range apps {
		if msg := counts.checkDecision(app, lifetimes); msg != "" {
			mismatches = append(mismatches, msg)
		}
	}
	Expect(counts.Lost).To(BeZero(), "applications lost")
	Expect(extra).To(BeEmpty(), "applications nobody created")
	Expect(counts.Objects).To(Equal(len(names)))
	Expect(counts.Duplicates).To(BeZero(), "submissions accepted twice")
	Expect(counts.Unknown).To(BeZero(), "submissions of ids that are no application")
	Expect(mismatches).To(BeEmpty(), "applications whose status is not the bank's decision")
	return counts
}

// waitFinal waits until every named application is final with its label in line, and returns
// them by name. Those still not final when the time is up fail the test with their names.
func waitFinal(ctx context.Context, stack *devenv.Stack, names []string, within time.Duration) map[string]loansv1alpha1.LoanApplication {
	GinkgoHelper()
	apps := map[string]loansv1alpha1.LoanApplication{}
	Eventually(func(g Gomega) {
		var list loansv1alpha1.LoanApplicationList
		g.Expect(stack.Client.List(ctx, &list, client.InNamespace(appNamespace))).To(Succeed())
		clear(apps)
		for _, app := range list.Items {
			if slices.Contains(names, app.Name) {
				apps[app.Name] = app
			}
		}
		var waiting []string
		for _, name := range names {
			app, ok := apps[name]
			if !ok || !app.Status.Phase.IsFinal() || app.Labels[loansv1alpha1.LabelStatus] != app.Status.Phase.LabelValue() {
				waiting = append(waiting, fmt.Sprintf("%s (%s, label %q)", name, app.Status.Phase, app.Labels[loansv1alpha1.LabelStatus]))
			}
		}
		g.Expect(waiting).To(BeEmpty(), "applications not final yet (or missing)")
	}).WithContext(ctx).WithTimeout(within).WithPolling(time.Second).Should(Succeed())
	return apps
}

// countSubmissions counts, over the bank's lifetimes, accepted submissions beyond one per id,
// ids that are no application (uids maps the applications' uids to names), and applications
// seen in more than one lifetime.
func (c *invariantCounts) countSubmissions(lifetimes []banksim.Stats, uids map[string]string) {
	seen := map[string]int{}
	for _, life := range lifetimes {
		c.RefusedAsAlreadyUsed += int(life.DuplicatesRefused)
		// The created counter and the per-id map are counted apart by the simulator: acceptances
		// beyond one per id show in either; the larger of the two is the lifetime's duplicates.
		perID := 0
		for id, n := range life.Submissions {
			perID += int(max(0, n-1))
			if _, ok := uids[id]; !ok {
				c.Unknown++
			}
			seen[id]++
		}
		c.Duplicates += max(perID, int(life.ApplicationsCreated)-len(life.Submissions))
	}
	for _, lifetimesSeen := range seen {
		if lifetimesSeen > 1 {
			c.Resubmitted++
		}
	}
}

// checkDecision compares one application with the decision of the latest lifetime of the bank
// that accepted it, counts it, and describes a mismatch ("" when it matches).
func (c *invariantCounts) checkDecision(app loansv1alpha1.LoanApplication, lifetimes []banksim.Stats) string {
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

// namesIn lists the names of the applications in the namespace now.
func namesIn(ctx context.Context, stack *devenv.Stack) []string {
	GinkgoHelper()
	var list loansv1alpha1.LoanApplicationList
	Expect(stack.Client.List(ctx, &list, client.InNamespace(appNamespace))).To(Succeed())
	names := make([]string, 0, len(list.Items))
	for _, app := range list.Items {
		names = append(names, app.Name)
	}
	return names
}
