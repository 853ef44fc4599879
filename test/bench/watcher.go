package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// seen is what the watcher saw of one application, each moment in this process's wall clock:
// what a user watching the API would see, with better than the second precision of
// status.decidedAt.
type seen struct {
	uid types.UID
	// pendingAt is when status.phase first showed Pending (submitted to the bank).
	pendingAt time.Time
	// finalAt is when status.phase first showed a final phase.
	finalAt time.Time
	// labelFinalAt is when the status label first showed a final value.
	labelFinalAt time.Time
}

// watcher watches every LoanApplication through its own informer and records when each one's
// status changed.
type watcher struct {
	cache  cache.Cache
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	apps map[types.NamespacedName]*seen
}

// startWatcher starts the informer and waits for its first list.
func startWatcher(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*watcher, error) {
	c, err := cache.New(rest.CopyConfig(cfg), cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	informer, err := c.GetInformer(ctx, &loansv1alpha1.LoanApplication{})
	if err != nil {
		return nil, err
	}
	w := &watcher{cache: c, done: make(chan struct{}), apps: make(map[types.NamespacedName]*seen)}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj) },
		UpdateFunc: func(_, obj any) { w.observe(obj) },
	}); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	go func() {
		defer close(w.done)
		_ = c.Start(runCtx)
	}()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !c.WaitForCacheSync(syncCtx) {
		w.stop()
		return nil, fmt.Errorf("the benchmark's own watch of LoanApplications did not sync within a minute")
	}
	return w, nil
}

// stop ends the watch (it costs CPU that the system under test may need).
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (w *watcher) observe(obj any) {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	if !ok {
		return
	}
	now := time.Now()
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.apps[key]
	if s == nil || s.uid != app.UID {
		s = &seen{uid: app.UID}
		w.apps[key] = s
	}
	phase := app.Status.Phase
	if s.pendingAt.IsZero() && (phase == loansv1alpha1.PhasePending || phase.IsFinal()) {
		s.pendingAt = now
	}
	if s.finalAt.IsZero() && phase.IsFinal() {
		s.finalAt = now
	}
	if label := app.Labels[loansv1alpha1.LabelStatus]; s.labelFinalAt.IsZero() && label != "" && label != loansv1alpha1.LabelPending {
		s.labelFinalAt = now
	}
}

// get is a copy of what was seen of one application (zero when never seen).
func (w *watcher) get(key types.NamespacedName) seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.apps[key]; s != nil {
		return *s
	}
	return seen{}
}

// count says how many of keys pass done.
func (w *watcher) count(keys []types.NamespacedName, done func(seen) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, k := range keys {
		if s := w.apps[k]; s != nil && done(*s) {
			n++
		}
	}
	return n
}

func isPending(s seen) bool { return !s.pendingAt.IsZero() }
func isFinal(s seen) bool   { return !s.finalAt.IsZero() }
func isSettled(s seen) bool { return !s.finalAt.IsZero() && !s.labelFinalAt.IsZero() }

// waitFor waits until every key passes done, or `bound` passes.
func (w *watcher) waitFor(ctx context.Context, keys []types.NamespacedName, done func(seen) bool, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		n := w.count(keys, done)
		if n == len(keys) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d applications got there within %s", n, len(keys), bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
