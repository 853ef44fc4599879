package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// syncingCache is a cache that runs until its context ends and reports synced as told. Only
// Start and WaitForCacheSync are implemented: they are all that store.start calls.
type syncingCache struct {
	cache.Cache
	syncs bool
}

func (c syncingCache) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (c syncingCache) WaitForCacheSync(context.Context) bool { return c.syncs }

// flagRegistration is a handler registration whose HasSynced the test sets.
type flagRegistration struct{ synced atomic.Bool }

func (r *flagRegistration) HasSynced() bool                          { return r.synced.Load() }
func (r *flagRegistration) HasSyncedChecker() toolscache.DoneChecker { return nil }

// startStore starts s until the test ends.
func startStore(t *testing.T, s *store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("start: %v", err)
		}
	})
}

// TestStoreIsSyncedOnlyOnceTheNameIndexIs checks that a synced cache is not enough: until the
// name index has received the initial list, lists would miss applications.
func TestStoreIsSyncedOnlyOnceTheNameIndexIs(t *testing.T) {
	indexed := &flagRegistration{}
	s := &store{cache: syncingCache{syncs: true}, names: newNameIndex(), indexed: indexed}
	startStore(t, s)

	time.Sleep(20 * syncPollInterval)
	if s.synced.Load() {
		t.Fatal("synced before the name index had the initial list")
	}
	if _, err := s.list(context.Background(), "", "", 10); !errors.Is(err, errNotSynced) {
		t.Fatalf("list before sync: err = %v, want errNotSynced", err)
	}

	indexed.synced.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for !s.synced.Load() {
		if time.Now().After(deadline) {
			t.Fatal("not synced 5 s after the name index was")
		}
		time.Sleep(syncPollInterval)
	}
}

func TestStoreIsNotSyncedWhileTheCacheIsNot(t *testing.T) {
	indexed := &flagRegistration{}
	indexed.synced.Store(true)
	s := &store{cache: syncingCache{syncs: false}, names: newNameIndex(), indexed: indexed}
	startStore(t, s)

	time.Sleep(20 * syncPollInterval)
	if s.synced.Load() {
		t.Fatal("synced although the cache never did")
	}
}
