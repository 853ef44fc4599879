package gateway

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The gateway's cache holds every application of its namespace, so each byte an object keeps is
// paid 100,000 times. A decided application as the API server sends it costs about 2.8 KiB of
// heap decoded (managed fields, conditions, messages, maps of one entry, a copy of each
// repeated string); the gateway serves only a few of its fields. slimForCache keeps those and
// nothing else, and makes the objects share what is the same in all of them: about 600 bytes
// are left (slim_test.go).
//
// What the gateway reads from a cached application, and so what is kept:
//   - the REST view (viewOf): name, creation time, spec, the status label (the phase when the
//     label is missing or not a valid value), the bank's ids, submittedAt and decidedAt;
//   - the ETag: the resourceVersion;
//   - an Idempotency-Key replay (sameRequest): the spec and the request-hash annotation, which
//     for an application the gateway created is the hash of the spec (see specHashed);
//   - the name index and the event feed: the name and the status label, submittedAt, and the
//     view again.
//
// Dropped: managed fields, the uid, other labels and annotations, owner references,
// finalizers, the conditions, status.message and the observed generation.

// statusLabels holds one labels map per valid value of the status label, shared by every
// cached application that carries exactly that label value: a Go map of one entry costs about
// 300 bytes, and all 100,000 maps would say one of four things.
//
// Shared maps are read only: nothing may write the labels (or anything else) of an object read
// from the cache. The gateway only encodes what it reads; it never updates an application.
var statusLabels = func() map[string]map[string]string {
	shared := make(map[string]map[string]string, len(loansv1alpha1.LabelValues))
	for _, v := range loansv1alpha1.LabelValues {
		shared[v] = map[string]string{loansv1alpha1.LabelStatus: v}
	}
	return shared
}()

// phases are the phases' names, shared in the same way.
var phases = map[loansv1alpha1.Phase]loansv1alpha1.Phase{
	loansv1alpha1.PhasePending:  loansv1alpha1.PhasePending,
	loansv1alpha1.PhaseApproved: loansv1alpha1.PhaseApproved,
	loansv1alpha1.PhaseRejected: loansv1alpha1.PhaseRejected,
	loansv1alpha1.PhaseFailed:   loansv1alpha1.PhaseFailed,
}

// slimForCache is the cache's transform: each LoanApplication is cut down to what the gateway
// serves, with the namespace, the labels map, the phase and the request hash shared. Other
// objects pass as they are. client-go calls a transform once per object it has decoded, before
// anything else sees it, so the cut is made in place; it is idempotent all the same.
func slimForCache(namespace string) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		if app, ok := obj.(*loansv1alpha1.LoanApplication); ok {
			slim(app, namespace)
		}
		return obj, nil
	}
}

// slim cuts app down to what the gateway serves; namespace is the cache's own, whose string all
// objects then share.
func slim(app *loansv1alpha1.LoanApplication, namespace string) {
	app.TypeMeta = metav1.TypeMeta{} // the cache knows the kind of what it holds
	if app.Namespace == namespace {
		app.Namespace = namespace
	}
	app.UID = ""
	app.GenerateName = ""
	app.ManagedFields = nil
	app.OwnerReferences = nil
	app.Finalizers = nil
	app.Labels = slimLabels(app.Labels)
	app.Annotations = slimAnnotations(app.Annotations, app.Spec)
	if phase, ok := phases[app.Status.Phase]; ok {
		app.Status.Phase = phase
	}
	app.Status.Message = ""
	app.Status.Conditions = nil
	app.Status.ObservedGeneration = 0
}

// slimLabels keeps the status label alone: a shared map for a valid value, a map of its own
// for any other value (a hand-edited label, which the view then does not trust), nil when there
// is none.
func slimLabels(labels map[string]string) map[string]string {
	value, ok := labels[loansv1alpha1.LabelStatus]
	if !ok {
		return nil
	}
	if shared, ok := statusLabels[value]; ok {
		return shared
	}
	if len(labels) == 1 {
		return labels
	}
	return map[string]string{loansv1alpha1.LabelStatus: value}
}

// specHashed are the annotations of every cached application whose request hash is the hash
// of its own spec, as the gateway writes it: its 64 hex digits, in a map of its own, cost about
// 450 bytes and say nothing the spec does not. requestHashOf reads the hash back from the spec.
var specHashed = map[string]string{RequestHashAnnotation: specHashMark}

// specHashMark stands for the hash of the spec; no hash the gateway writes looks like it.
const specHashMark = "(the hash of the spec)"

// slimAnnotations keeps the request-hash annotation alone, which an Idempotency-Key replay
// compares: the shared specHashed when it is the hash of the spec, else as it is; nil when there
// is none.
func slimAnnotations(annotations map[string]string, spec loansv1alpha1.LoanApplicationSpec) map[string]string {
	hash, ok := annotations[RequestHashAnnotation]
	switch {
	case !ok:
		return nil
	case hash == requestHash(names{first: spec.FirstName, last: spec.LastName}):
		return specHashed
	case len(annotations) == 1:
		return annotations
	}
	return map[string]string{RequestHashAnnotation: hash}
}

// requestHashOf is the request-hash annotation of app ("" when it has none), read back from the
// spec when the cache shared it as specHashed.
func requestHashOf(app *loansv1alpha1.LoanApplication) string {
	hash := app.Annotations[RequestHashAnnotation]
	if hash == specHashMark {
		return requestHash(names{first: app.Spec.FirstName, last: app.Spec.LastName})
	}
	return hash
}
