package controller

import (
	"context"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// queue is the controller's workqueue as event handlers see it.
type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// enqueueByUrgency enqueues an application as controller-runtime's EnqueueRequestForObject does,
// but at the priority of the pass its status calls for (urgency). The default handler gives
// every new event the same priority, and the applications listed when the controller starts a
// lower one: a new leader would submit every new application before it polled a single pending
// one or wrote a single decided one's label, and under load a decision noticed by a poll would
// wait behind every creation.
func enqueueByUrgency() handler.EventHandler {
	return handler.Funcs{
		CreateFunc:  func(_ context.Context, e event.CreateEvent, q queue) { addByUrgency(q, e.Object) },
		UpdateFunc:  func(_ context.Context, e event.UpdateEvent, q queue) { addByUrgency(q, e.ObjectNew) },
		DeleteFunc:  func(_ context.Context, e event.DeleteEvent, q queue) { addByUrgency(q, e.Object) },
		GenericFunc: func(_ context.Context, e event.GenericEvent, q queue) { addByUrgency(q, e.Object) },
	}
}

// addByUrgency adds the object's request, at its urgency when the queue is a priority queue.
func addByUrgency(q queue, obj client.Object) {
	if obj == nil {
		return
	}
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)}
	app, isApp := obj.(*loansv1alpha1.LoanApplication)
	pq, isPriorityQueue := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if !isApp || !isPriorityQueue {
		q.Add(req)
		return
	}
	pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(urgency(&app.Status))}, req)
}
