package controller

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

// A new leader finds what the former one left: new applications, a pending one whose poll is
// due, and a decided one whose label write was lost. With a single worker its passes run in the
// order of its workqueue, which the bank's calls and the API writes show.
var _ = Describe("The order of the controller's work", func() {
	It("writes a decided application's label and polls a due one before it submits new ones", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		tb := startBank(banksim.Config{MinDelay: 200 * time.Millisecond, MaxDelay: 800 * time.Millisecond})
		// The cache lists them in name order: the new ones first, where a queue without
		// priorities would keep them.
		newApps := createApplications(ctx, ns, "new", 10, true)
		decided := createApplication(ctx, ns, "zz-decided", "Ada", "Lovelace", true)
		pending := createApplication(ctx, ns, "zz-pending", "Grace", "Hopper", true)

		// The former leader submitted both a minute ago, and recorded the bank's decision of one
		// but not yet its label.
		bankClient, err := bank.New(tb.url(), bank.Options{})
		Expect(err).NotTo(HaveOccurred())
		for _, app := range []*loansv1alpha1.LoanApplication{decided, pending} {
			_, err := bankClient.Submit(ctx, bank.Application{ID: string(app.UID), FirstName: app.Spec.FirstName,
				LastName: app.Spec.LastName})
			Expect(err).NotTo(HaveOccurred())
		}
		submitted := time.Now().Add(-time.Minute)
		setStatus(ctx, pending, func(s *loansv1alpha1.LoanApplicationStatus) {
			markSubmitted(s, string(pending.UID), submitted, loansv1alpha1.ReasonSubmitted)
		})
		setStatus(ctx, decided, func(s *loansv1alpha1.LoanApplicationStatus) {
			markSubmitted(s, string(decided.UID), submitted, loansv1alpha1.ReasonSubmitted)
			markDecided(s, loansv1alpha1.PhaseApproved, "job-1", time.Now())
		})
		before := len(tb.callOrder())

		writes := newWriteCounter()
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming, writes: writes, workers: 1})
		eventuallyAllFinal(ctx, append(newApps, decided, pending))

		Expect(writes.writeOrder()).NotTo(BeEmpty())
		Expect(writes.writeOrder()[0]).To(Equal("label zz-decided"), "the first write")
		calls := tb.callOrder()[before:]
		Expect(calls).NotTo(BeEmpty())
		Expect(calls[0]).To(Equal("poll "+string(pending.UID)), "the first bank call, before the %d submissions", len(newApps))
	})
})

// setStatus writes the application's status as the former leader left it.
func setStatus(ctx context.Context, app *loansv1alpha1.LoanApplication, change func(*loansv1alpha1.LoanApplicationStatus)) {
	GinkgoHelper()
	before := app.DeepCopy()
	change(&app.Status)
	stampGeneration(&app.Status, app.Generation)
	Expect(env.Client.Status().Patch(ctx, app, client.MergeFrom(before))).To(Succeed())
}
