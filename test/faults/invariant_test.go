package faults_test

import (
	"context"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/invariant"
)

// checkInvariant is the one check every fault test ends with. It waits (up to within) until
// every application in names is final with its label in line, then runs the invariant checker
// (test/invariant) on the namespace and the bank's lifetimes. It asserts nothing: the caller
// records the result in the summary first, pass or fail, then asserts.
//
// earlier holds the stats of the bank's earlier lifetimes (taken before it restarted); the
// current lifetime's are read here.
func checkInvariant(ctx context.Context, stack *devenv.Stack, bank bankAdmin, before []string, names []string,
	earlier []banksim.Stats, within time.Duration) invariant.Result {
	GinkgoHelper()
	listed, err := waitFinal(ctx, stack, names, within)
	if err != nil {
		return invariant.Result{Counts: invariant.Counts{Applications: len(names)},
			Problems: []string{"listing the applications: " + err.Error()}}
	}
	lifetimes := append(slices.Clone(earlier), bank.stats(ctx))
	return invariant.Check(listed, before, names, lifetimes)
}

// waitFinal lists the namespace every second until every named application is final with its
// label in line, or until within has passed, and answers the last listing either way: the
// checker says what is missing. It fails nothing, and answers an error only when not even one
// listing succeeded at the end.
func waitFinal(ctx context.Context, stack *devenv.Stack, names []string, within time.Duration) ([]loansv1alpha1.LoanApplication, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var listed []loansv1alpha1.LoanApplication
	var lastErr error
	for {
		var list loansv1alpha1.LoanApplicationList
		if lastErr = stack.Client.List(ctx, &list, client.InNamespace(appNamespace)); lastErr == nil {
			listed = list.Items
			if invariant.AllFinal(listed, names) {
				return listed, nil
			}
		}
		select {
		case <-ctx.Done():
			if listed == nil {
				return nil, lastErr
			}
			return listed, nil
		case <-time.After(time.Second):
		}
	}
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
