package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// staleRequeue is how soon a reconcile that read a stale copy tries again: the informer cache
// normally catches up with the controller's own write within milliseconds.
const staleRequeue = 100 * time.Millisecond

// writtenVersions remembers, per application, the resourceVersion that the controller's last
// status write replaced, until the informer cache has caught up with that write.
//
// The controller reads from the cache, which lags its own writes. A reconcile that reads the
// version it just replaced would act on a status that is no longer true: submit again (the bank
// answers "already used", but it is a bank call, a status write and an Event for nothing), or
// record the same trouble again. Versions are opaque, but equality is enough: the cache only
// moves forward, so any other version than the replaced one is at least as new as the write.
type writtenVersions struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName]replacedVersion
}

type replacedVersion struct {
	uid             types.UID // guards against a deleted and re-created object of the same name
	resourceVersion string
}

func newWrittenVersions() *writtenVersions {
	return &writtenVersions{replaced: map[types.NamespacedName]replacedVersion{}}
}

// wrote records a status write that took app from version `from` to its current version. A
// final application is not recorded: nothing acts on it again, so nothing can act twice, and
// the entry would never be cleared.
func (w *writtenVersions) wrote(app *loansv1alpha1.LoanApplication, from string) {
	if app.ResourceVersion == from || app.Status.Phase.IsFinal() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replaced[keyOf(app)] = replacedVersion{uid: app.UID, resourceVersion: from}
}

// isStale reports whether app is the version an earlier write replaced; it forgets the write
// once the cache shows a newer version.
func (w *writtenVersions) isStale(app *loansv1alpha1.LoanApplication) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	replaced, ok := w.replaced[keyOf(app)]
	if !ok {
		return false
	}
	if replaced.uid == app.UID && replaced.resourceVersion == app.ResourceVersion {
		return true
	}
	delete(w.replaced, keyOf(app))
	return false
}

// forget drops what is known of a deleted application.
func (w *writtenVersions) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.replaced, key)
}
