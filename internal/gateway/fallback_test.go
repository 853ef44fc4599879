package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The first caller of a shared read may go away while others wait for the same answer: its
// going must not cancel the read they share.
func TestFallbackReadOutlivesTheCallerThatStartedIt(t *testing.T) {
	f := newFallbackReads(10)
	started, release := make(chan struct{}), make(chan struct{})
	var reads atomic.Int32
	read := func(ctx context.Context, name string) (*loansv1alpha1.LoanApplication, error) {
		if reads.Add(1) == 1 {
			close(started)
		}
		select {
		case <-release:
			app := &loansv1alpha1.LoanApplication{}
			app.Name = name
			return app, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	firstCtx, leave := context.WithCancel(context.Background())
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		_, _ = f.get(firstCtx, "app-x", read)
	}()
	<-started

	type result struct {
		app *loansv1alpha1.LoanApplication
		err error
	}
	second := make(chan result, 1)
	go func() {
		app, err := f.get(context.Background(), "app-x", read)
		second <- result{app, err}
	}()
	// The second caller joins the call in flight (the first has not returned).
	deadline := time.Now().Add(5 * time.Second)
	for !joined(f, "app-x") {
		if time.Now().After(deadline) {
			t.Fatal("no call in flight")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the second caller reach the shared call
	leave()
	<-firstDone
	close(release)
	select {
	case r := <-second:
		if r.err != nil || r.app == nil || r.app.Name != "app-x" {
			t.Fatalf("the caller still waiting got %v, %v", r.app, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads, want the one shared", n)
	}
}

func joined(f *fallbackReads, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.calls[name]
	return ok
}
