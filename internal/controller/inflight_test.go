package controller

import (
	"context"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
)

// These specs run whole managers with the program's cache (CacheOptions): it holds only the
// applications in flight, and the controller still sees every one it has work for.
var _ = Describe("The controller's cache of applications in flight", func() {
	var (
		ctx context.Context
		ns  string
	)
	// An assessment long enough for the specs to see every application pending at once.
	slowBank := banksim.Config{MinDelay: 3 * time.Second, MaxDelay: 4 * time.Second}

	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("works on applications with and without the label, keeps their annotations, and lets go of every final one", func() {
		tb := startBank(slowBank)
		m := startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		apps := append(createApplications(ctx, ns, "labelled", 5, true), createApplications(ctx, ns, "unlabelled", 5, false)...)
		for _, app := range apps {
			annotate(ctx, app, "example.com/owner", "mortgages")
		}

		By("counting them as Pending, from a cache that holds them without annotations or managed fields")
		Eventually(func(g Gomega) {
			g.Expect(gaugedApplications(g)).To(Equal(gaugeOf(map[string]float64{"Pending": 10})))
			cached := cachedApplications(g, ctx, m, ns)
			g.Expect(cached).To(HaveLen(len(apps)))
			for _, app := range cached {
				g.Expect(app.Annotations).To(BeEmpty(), app.Name)
				g.Expect(app.ManagedFields).To(BeEmpty(), app.Name)
			}
		}).WithTimeout(finalWithin).Should(Succeed())

		By("deciding every one, and then holding none of them: cache, gauge, and the versions the reconciler remembers")
		eventuallyAllFinal(ctx, apps)
		Eventually(func(g Gomega) {
			g.Expect(cachedApplications(g, ctx, m, ns)).To(BeEmpty())
			g.Expect(gaugedApplications(g)).To(Equal(gaugeOf(nil)))
			g.Expect(m.reconciler.written.size()).To(BeZero(), "versions remembered of final applications")
		}).Should(Succeed())

		By("leaving the annotations on the server as they were")
		for _, app := range apps {
			Expect(fetch(Default, ctx, app).Annotations).To(HaveKeyWithValue("example.com/owner", "mortgages"), app.Name)
		}
	})

	It("starts with the applications in flight only, however many final ones are stored", func() {
		tb := startBank(slowBank)
		decided := createFinalApplications(ctx, ns, "decided", 150)
		waiting := createApplications(ctx, ns, "waiting", 3, false)

		m := startManager(managerSettings{namespace: ns, bankURL: tb.url(), timing: shortTiming})
		Expect(m.cache.WaitForCacheSync(ctx)).To(BeTrue())
		cached := cachedApplications(Default, ctx, m, ns)
		names := make([]string, 0, len(cached))
		for _, app := range cached {
			names = append(names, app.Name)
		}
		Expect(names).To(ConsistOf("waiting-0", "waiting-1", "waiting-2"))

		eventuallyAllFinal(ctx, waiting)
		for _, app := range decided[:10] {
			submits, polls := tb.calls(string(app.UID))
			Expect([]int{submits, polls}).To(Equal([]int{0, 0}), app.Name)
		}
	})
})

// annotate sets an annotation by hand, as kubectl annotate would.
func annotate(ctx context.Context, app *loansv1alpha1.LoanApplication, key, value string) {
	GinkgoHelper()
	got := fetch(Default, ctx, app)
	patch := client.MergeFrom(got.DeepCopy())
	metav1.SetMetaDataAnnotation(&got.ObjectMeta, key, value)
	Expect(env.Client.Patch(ctx, got, patch)).To(Succeed())
}

// createFinalApplications stores n decided applications, as the controller leaves them: a final
// phase in the status and its label. The controller suite installs no admission policy, so the
// label can be written before the status.
func createFinalApplications(ctx context.Context, namespace, prefix string, n int) []*loansv1alpha1.LoanApplication {
	GinkgoHelper()
	apps := make([]*loansv1alpha1.LoanApplication, 0, n)
	for i := range n {
		phase := finalPhases[i%len(finalPhases)]
		app := &loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + strconv.Itoa(i), Namespace: namespace,
				Labels: map[string]string{loansv1alpha1.LabelStatus: phase.LabelValue()}},
			Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"},
		}
		Expect(env.Client.Create(ctx, app)).To(Succeed())
		now := metav1.Now()
		app.Status = loansv1alpha1.LoanApplicationStatus{Phase: phase, BankApplicationID: string(app.UID),
			SubmittedAt: &now, DecidedAt: &now}
		Expect(env.Client.Status().Update(ctx, app)).To(Succeed())
		apps = append(apps, app)
	}
	return apps
}

// cachedApplications lists the applications of the namespace that the manager's cache holds.
func cachedApplications(g Gomega, ctx context.Context, m *testManager, namespace string) []loansv1alpha1.LoanApplication {
	var list loansv1alpha1.LoanApplicationList
	g.Expect(m.cache.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	return list.Items
}

// gaugedApplications reads loan_applications{phase} as Prometheus would, from
// controller-runtime's registry.
func gaugedApplications(g Gomega) map[string]float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	values := map[string]float64{}
	for _, family := range families {
		if family.GetName() != "loan_applications" {
			continue
		}
		for _, m := range family.GetMetric() {
			g.Expect(m.GetLabel()).To(HaveLen(1))
			values[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return values
}

// size is how many applications the reconciler remembers written versions of.
func (w *writtenVersions) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.replaced)
}

// gaugeOf is the gauge with every phase at zero but those given.
func gaugeOf(nonZero map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, phase := range gaugedPhases {
		out[phase] = nonZero[phase]
	}
	return out
}
