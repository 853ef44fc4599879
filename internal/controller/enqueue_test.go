package controller

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The event handler on controller-runtime's own priority queue: whatever the order and kind of
// the events, a decided application is handed out first, then a pending one, then the new ones
// in the order they came; the applications listed at the start are not put behind the ones
// created since, as the default handler would.
func TestEventsAreQueuedByUrgency(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test-urgency")
	defer q.ShutDown()
	named := func(app *loansv1alpha1.LoanApplication, name string) *loansv1alpha1.LoanApplication {
		app.Name = name
		return app
	}
	h := enqueueByUrgency()
	ctx := context.Background()
	h.Create(ctx, event.CreateEvent{Object: named(newApp(), "listed-new"), IsInInitialList: true}, q)
	h.Create(ctx, event.CreateEvent{Object: named(pendingApp(), "listed-pending"), IsInInitialList: true}, q)
	h.Create(ctx, event.CreateEvent{Object: named(newApp(), "created-new")}, q)
	decided := named(finalApp(loansv1alpha1.PhaseApproved), "relabelled-decided")
	h.Update(ctx, event.UpdateEvent{ObjectOld: decided, ObjectNew: decided}, q) // a resync: the same version
	h.Create(ctx, event.CreateEvent{Object: named(pendingApp(), "created-pending")}, q)

	want := []struct {
		name     string
		priority int
	}{
		{"relabelled-decided", priorityDecided},
		{"listed-pending", priorityPoll},
		{"created-pending", priorityPoll},
		{"listed-new", prioritySubmit},
		{"created-new", prioritySubmit},
	}
	for _, w := range want {
		got, priority := nextIn(t, q)
		if got.Name != w.name || priority != w.priority {
			t.Errorf("handed out %s at priority %d, want %s at %d", got.Name, priority, w.name, w.priority)
		}
		q.Done(got)
	}
}

// nextIn takes the next request out of q, failing the test rather than blocking for ever.
func nextIn(t *testing.T, q priorityqueue.PriorityQueue[reconcile.Request]) (reconcile.Request, int) {
	t.Helper()
	type item struct {
		req      reconcile.Request
		priority int
	}
	got := make(chan item, 1)
	go func() {
		req, priority, _ := q.GetWithPriority()
		got <- item{req, priority}
	}()
	select {
	case it := <-got:
		return it.req, it.priority
	case <-time.After(10 * time.Second):
		t.Fatal("the queue handed nothing out")
		return reconcile.Request{}, 0
	}
}
