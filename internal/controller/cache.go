package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// CacheOptions is the informer cache the controller reads from, in the program and in the
// tests alike; namespace "" watches every namespace.
//
// The cache holds only the applications the controller may still have to act on: those whose
// `status` label is not a final value (see InFlightSelector). A final application with its label
// in line needs nothing, ever; caching it would make the controller's heap and its start grow
// with every application ever made instead of with the work in flight.
func CacheOptions(namespace string) cache.Options {
	opts := cache.Options{
		// Nobody reads managed fields; dropping them saves about a fifth of the cache's heap.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&loansv1alpha1.LoanApplication{}: {Label: InFlightSelector(), Transform: stripUnread},
		},
	}
	if namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return opts
}

// InFlightSelector selects the applications whose `status` label is not final: pending, any
// other value a person typed, or no label at all (`notin` matches an object without the key).
// It also selects a final application whose label has not caught up with its phase yet (a
// crash between the status write and the label patch), which the controller must repair.
//
// What it leaves out, and why nothing is lost:
//   - the controller's own last write, the label patch to the final value, takes the
//     application out of the cache for good: nothing is left to do about it;
//   - a person who removes a final label, or sets it back to pending, brings the application
//     back in, and the controller puts the label back;
//   - a final label changed to another final value, or set on an application whose phase is
//     not that value, is refused by the admission policy (config/policy). Where the policy is
//     not installed, the watch's delete event of an application that leaves the cache before it
//     is final still reaches the reconciler, which reads it from the API server and puts its
//     label back (see returnToCache).
func InFlightSelector() labels.Selector {
	final := make([]string, 0, len(finalPhases))
	for _, phase := range finalPhases {
		final = append(final, phase.LabelValue())
	}
	notFinal, err := labels.NewRequirement(loansv1alpha1.LabelStatus, selection.NotIn, final)
	if err != nil {
		panic(err) // the key and values are constants: a programming error
	}
	return labels.NewSelector().Add(*notFinal)
}

// finalPhases are the phases that never change once written.
var finalPhases = []loansv1alpha1.Phase{loansv1alpha1.PhaseApproved, loansv1alpha1.PhaseRejected, loansv1alpha1.PhaseFailed}

// isFinalLabel reports whether v is the label value of a final phase: an application labelled
// so is outside the cache.
func isFinalLabel(v string) bool {
	for _, phase := range finalPhases {
		if v == phase.LabelValue() {
			return true
		}
	}
	return false
}

// stripUnread drops what the controller never reads from a cached application: managed fields
// and annotations (the gateway's request hash, kubectl's last-applied configuration). The
// controller's writes are merge patches computed between two copies of the cached object, so a
// field absent from both is absent from the patch and stays as it is on the server.
var stripUnread toolscache.TransformFunc = func(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil // a tombstone: nothing to strip
	}
	// Only when present, as controller-runtime's own transform does (kubernetes#124337).
	if obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	if obj.GetAnnotations() != nil {
		obj.SetAnnotations(nil)
	}
	return in, nil
}
