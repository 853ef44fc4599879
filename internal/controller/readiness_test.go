package controller

import (
	"context"
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

var _ = Describe("The readiness check", func() {
	It("fails until the cache has listed the applications, although no controller asked for them", func(ctx SpecContext) {
		scheme := runtime.NewScheme()
		Expect(loansv1alpha1.AddToScheme(scheme)).To(Succeed())
		c, err := cache.New(env.Config, cache.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		ready := ReadyWhenSynced(c)
		probe := func() error { return ready(httptest.NewRequest("GET", "/readyz", nil)) }

		Expect(probe()).To(MatchError(errNotSynced), "a cache that has not started cannot be ready")

		cacheCtx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { defer GinkgoRecover(); Expect(c.Start(cacheCtx)).To(Succeed()) }()
		Expect(c.WaitForCacheSync(ctx)).To(BeTrue())
		Eventually(probe).Should(Succeed(), "the check asks for the informer itself, and it syncs")
	})
})
