package controller

import (
	"errors"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// errNotSynced is what the readiness check answers before the cache holds every application.
var errNotSynced = errors.New("the cache has not listed every LoanApplication in flight yet")

// ReadyWhenSynced is a readiness check that passes once the cache has listed every
// LoanApplication it holds: those not final yet (CacheOptions). The cache's own WaitForCacheSync is not enough: it waits only for the
// informers that exist, and the LoanApplication informer is made when the controller starts,
// which leader election delays; before that it answered ready at once. Asking for the informer
// here makes it, so a standby replica keeps a warm cache and is ready for a handover.
func ReadyWhenSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		informer, err := c.GetInformer(req.Context(), &loansv1alpha1.LoanApplication{}, cache.BlockUntilSynced(false))
		if err != nil {
			return err
		}
		if !informer.HasSynced() {
			return errNotSynced
		}
		return nil
	}
}
