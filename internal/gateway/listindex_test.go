package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// These specs cover the name index behind lists (nameIndex): fed by the informer, it must give
// the same answers as the cache while labels change, and be complete once the gateway is ready.
var _ = Describe("Listing while applications change", func() {
	// walk follows every page of a list by status, pages of limit, checking on each page what
	// must hold at any moment, whatever changes: every item carries the status asked for, and
	// ids rise strictly across the pages (none twice). It answers the ids.
	walk := func(gw *testGateway, status string, limit, maxPages int) []string {
		GinkgoHelper()
		var seen []string
		path := fmt.Sprintf("%s?status=%s&limit=%d", applicationsPath, status, limit)
		for range maxPages {
			page := gw.get(path).list()
			Expect(len(page.Items)).To(BeNumerically("<=", limit))
			for _, item := range page.Items {
				Expect(item.Status).To(Equal(status), "%s listed under %s", item.ID, status)
				if len(seen) > 0 {
					Expect(item.ID > seen[len(seen)-1]).To(BeTrue(), "%s after %s", item.ID, seen[len(seen)-1])
				}
				seen = append(seen, item.ID)
			}
			if page.Continue == "" {
				return seen
			}
			path = fmt.Sprintf("%s?status=%s&limit=%d&continue=%s", applicationsPath, status, limit, page.Continue)
		}
		Fail(fmt.Sprintf("the list by %s did not end within %d pages", status, maxPages))
		return nil
	}

	It("keeps every page right while labels change, and ends with the API server's selection", func(ctx context.Context) {
		gw := startGateway(ctx, Options{})
		const total = 60
		names := make([]string, 0, total)
		for i := range total {
			names = append(names, storeApplication(ctx, gw.namespace, fmt.Sprintf("app-%03d", i), loansv1alpha1.LabelPending).Name)
		}
		Eventually(func() []string { return walk(gw, loansv1alpha1.LabelPending, 7, total) }).
			WithTimeout(30 * time.Second).Should(HaveLen(total))

		// Relabel every other application to approved and delete every fifth, a change every
		// few milliseconds, while this goroutine keeps paging through both lists. The others
		// stay pending throughout: every walk of pending made meanwhile must list each of them
		// exactly once (walk already refuses a repeat), whatever moves around them.
		kept := keptPending(names)
		changed := make(chan error, 1)
		go func() { changed <- relabelAndDelete(ctx, gw.namespace, names, 5*time.Millisecond) }()
		var done bool
		walks := 0
		for ; !done; walks++ {
			Expect(walks).To(BeNumerically("<", 2000), "the changes did not end")
			walk(gw, loansv1alpha1.LabelApproved, 7, total)
			Expect(walk(gw, loansv1alpha1.LabelPending, 7, total)).To(ContainElements(kept),
				"walk %d of pending, during the changes, skipped an application that stayed pending", walks)
			select {
			case err := <-changed:
				Expect(err).NotTo(HaveOccurred())
				done = true
			default:
			}
		}
		// The changes last over 200 ms: a single walk would mean none ran while they happened.
		Expect(walks).To(BeNumerically(">=", 2), "no walk ran during the changes")

		// Converging is part of what is tested: the gateway's cache must catch up with the API
		// server within a watch event or two, on a loaded machine.
		for _, status := range []string{loansv1alpha1.LabelApproved, loansv1alpha1.LabelPending} {
			want := selectedByAPIServer(ctx, gw.namespace, status)
			Expect(want).NotTo(BeEmpty())
			Eventually(func() []string { return walk(gw, status, 7, total) }).WithTimeout(30*time.Second).Should(Equal(want), status)
		}
		Eventually(func() []string { return walk(gw, loansv1alpha1.LabelRejected, 7, total) }).WithTimeout(30 * time.Second).
			Should(BeEmpty())
	})

	It("lists every stored application as soon as it reports ready", func(ctx context.Context) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gateway-"}}
		Expect(env.Client.Create(ctx, ns)).To(Succeed())
		const total = 500
		for i := range total {
			storeApplication(ctx, ns.Name, fmt.Sprintf("app-%03d", i), loansv1alpha1.LabelValues[i%len(loansv1alpha1.LabelValues)])
		}
		gw := startGatewayAt(env.Config, Options{Namespace: ns.Name})
		Eventually(gw.Ready).WithTimeout(30 * time.Second).WithPolling(time.Millisecond).Should(BeTrue())
		// No Eventually from here: a ready gateway must not answer a short list.
		Expect(gw.get(applicationsPath + "?limit=1000").list().Items).To(HaveLen(total))
		for _, status := range loansv1alpha1.LabelValues {
			Expect(walk(gw, status, 1000, 1)).To(HaveLen(total / len(loansv1alpha1.LabelValues)))
		}
	})
})

// relabelAndDelete labels every other application of names approved and deletes every fifth,
// straight through the API server, one at a time, pausing between two changes. It asserts
// nothing: it runs in its own goroutine, and the spec checks the error it answers.
func relabelAndDelete(ctx context.Context, namespace string, names []string, pause time.Duration) error {
	for i, name := range names {
		time.Sleep(pause)
		app := &loansv1alpha1.LoanApplication{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		switch {
		case i%5 == 0:
			if err := env.Client.Delete(ctx, app); err != nil {
				return err
			}
		case i%2 == 0:
			patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, loansv1alpha1.LabelStatus, loansv1alpha1.LabelApproved))
			if err := env.Client.Patch(ctx, app, client.RawPatch("application/merge-patch+json", patch)); err != nil {
				return err
			}
		}
	}
	return nil
}

// keptPending are the names relabelAndDelete leaves alone: neither deleted nor relabelled.
func keptPending(names []string) []string {
	var kept []string
	for i, name := range names {
		if i%5 != 0 && i%2 != 0 {
			kept = append(kept, name)
		}
	}
	return kept
}

// selectedByAPIServer answers the names the API server selects by the status label, sorted.
func selectedByAPIServer(ctx context.Context, namespace, status string) []string {
	GinkgoHelper()
	var list loansv1alpha1.LoanApplicationList
	Expect(env.Client.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingLabels{loansv1alpha1.LabelStatus: status})).To(Succeed())
	names := make([]string, 0, len(list.Items))
	for _, item := range list.Items {
		names = append(names, item.Name)
	}
	slices.Sort(names)
	return names
}
