package controller

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

// A former leader that resumes after a long pause, or any process whose cache is far behind,
// reads an old copy of an application. Nothing it keeps in memory can tell it so: only the
// resourceVersion precondition on its writes can keep it from writing the old state back.
var _ = Describe("Two reconcilers on one API server", func() {
	It("leaves an Approved application Approved when the second one reads a copy from before its submission", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		tb := startBank(banksim.Config{MinDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond, ApproveRatio: 1})
		startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		app := createApplication(ctx, ns, "stale", "Ada", "Lovelace", true)
		// The create's answer, unsubmitted, as a paused leader last saw it. (A read after the
		// create may already find it submitted: the controller is that quick.)
		old := app.DeepCopy()
		Expect(old.Status.Phase).To(BeEmpty())
		eventuallyAllFinal(ctx, []*loansv1alpha1.LoanApplication{app})
		approved := fetch(Default, ctx, app)
		Expect(approved.Status.Phase).To(Equal(loansv1alpha1.PhaseApproved))

		By("running a second reconciler whose every read returns the old copy")
		staleReads := staleReader{Client: env.Client, old: old}
		bankClient, err := bank.New(tb.url(), bank.Options{})
		Expect(err).NotTo(HaveOccurred())
		paused := &LoanApplicationReconciler{Client: staleReads, Scheme: scheme.Scheme, Bank: bankClient,
			Recorder: events.NewFakeRecorder(10), Timing: shortTiming}
		paused.setDefaults()
		for range 3 {
			_, err = paused.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)})
			Expect(err).NotTo(HaveOccurred())
		}

		got := fetch(Default, ctx, app)
		Expect(got.Status.Phase).To(Equal(loansv1alpha1.PhaseApproved))
		Expect(got.Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, loansv1alpha1.LabelApproved))
		Expect(got.Status).To(Equal(approved.Status), "the stale reconciler wrote to the status")
		Expect(tb.simulator().Stats().Submissions).To(HaveKeyWithValue(string(app.UID), BeEquivalentTo(1)))
	})
})

// staleReader answers every read with the same old copy, as a cache far behind would; its
// writes go to the API server.
type staleReader struct {
	client.Client
	old *loansv1alpha1.LoanApplication
}

func (s staleReader) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	s.old.DeepCopyInto(obj.(*loansv1alpha1.LoanApplication))
	return nil
}
