package controller

import (
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// staleFallback is when a reconcile that read a stale copy tries again if nothing woke it
// before. The watch event that brings the controller's own writes wakes it first (see
// awaitsWrite): within milliseconds on a quiet API server, seconds on a saturated one. The
// fallback only guards against a wake-up that never comes; it is not a polling period, and a
// short one would make thousands of needless reconciles a second while a saturated API server
// delivers the writes late.
const staleFallback = 5 * time.Second

// writtenVersions remembers, per application, the resourceVersions that the controller's last
// pass of writes replaced (the status write, and the label patch after it), until the informer
// cache has caught up with those writes. It is an optimisation only: the resourceVersion
// precondition on every write already keeps a stale read from being written back, and a new
// process starts without this table and loses nothing but a few conflicting writes.
//
// The controller reads from the cache, which lags its own writes. A reconcile that reads a
// version it just replaced would act on what is no longer true: submit again (the bank answers
// "already used", but it is a bank call and a status write for nothing), record the same
// trouble again, or patch the label again. Versions are opaque, but equality is enough: the
// cache only moves forward, so any version other than the replaced ones is at least as new as
// the last write.
type writtenVersions struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName]replacedVersions
}

type replacedVersions struct {
	uid      types.UID // guards against a deleted and re-created object of the same name
	versions []string
	// awaited is set once a reconcile found the cache stale: only then is the update event
	// that brings the writes worth a reconcile. Passing it always would re-enqueue every
	// written application at the priority of a changed object, ahead of the low-priority
	// applications of the initial list: after a restart with thousands unsubmitted, their polls
	// starved the submissions.
	awaited bool
}

func newWrittenVersions() *writtenVersions {
	return &writtenVersions{replaced: map[types.NamespacedName]replacedVersions{}}
}

// wrote records the writes of one pass, which took app through the versions `replaced` to its
// current version. A final application is not recorded: nothing acts on it again, so nothing
// can act twice, and the entry would never be cleared.
func (w *writtenVersions) wrote(app *loansv1alpha1.LoanApplication, replaced ...string) {
	replaced = slices.DeleteFunc(slices.Clone(replaced), func(v string) bool { return v == app.ResourceVersion })
	if len(replaced) == 0 || app.Status.Phase.IsFinal() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replaced[keyOf(app)] = replacedVersions{uid: app.UID, versions: replaced}
}

// isStale reports whether app is a version the last pass's writes replaced, and if so marks the
// writes awaited (see awaitsWrite); it forgets the writes once the cache shows a newer version.
func (w *writtenVersions) isStale(app *loansv1alpha1.LoanApplication) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	replaced, ok := w.replaced[keyOf(app)]
	if !ok {
		return false
	}
	if replaced.uid == app.UID && slices.Contains(replaced.versions, app.ResourceVersion) {
		replaced.awaited = true
		w.replaced[keyOf(app)] = replaced
		return true
	}
	delete(w.replaced, keyOf(app))
	return false
}

// awaitsWrite reports whether obj is the version that brings the last pass's writes to an
// application whose reconcile found the cache stale: the update event that wakes it. The
// update predicate lets it through, although a status write changes neither generation nor
// labels. An event that arrives before the stale reconcile marked the writes awaited is
// dropped; the reconciler reads the cache again after the mark, and the informer updates its
// store before it calls the handlers, so that second read sees the new version.
func (w *writtenVersions) awaitsWrite(obj client.Object) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	replaced, ok := w.replaced[keyOf(obj)]
	return ok && replaced.awaited && replaced.uid == obj.GetUID() && !slices.Contains(replaced.versions, obj.GetResourceVersion())
}

// forget drops what is known of a deleted application.
func (w *writtenVersions) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.replaced, key)
}

func keyOf(obj client.Object) types.NamespacedName { return client.ObjectKeyFromObject(obj) }
