package gateway

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// decidedJSON is a decided application as the API server sends it to the gateway's watch: the
// status and conditions the controller writes (internal/controller/conditions.go), the label,
// the request-hash annotation and the managed fields of the gateway's create and of the
// controller's writes, plus what a person may add (another label and annotation, a finalizer).
// Its verbs are the request hash, the label, then the application's number, and the phase last.
const decidedJSON = `{"apiVersion":"loans.lendo.se/v1alpha1","kind":"LoanApplication","metadata":{` +
	`"annotations":{"gateway.loans.lendo.se/request-sha256":"%s",` +
	`"note":"checked by hand"},` +
	`"creationTimestamp":"2026-11-30T16:00:00Z","generation":1,"finalizers":["example.com/audit"],` +
	`"labels":{"status":"%s","team":"retail"},` +
	`"managedFields":[{"apiVersion":"loans.lendo.se/v1alpha1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":` +
	`{".":{},"f:gateway.loans.lendo.se/request-sha256":{}},"f:labels":{".":{},"f:status":{}}},"f:spec":{".":{},"f:firstName":{},` +
	`"f:lastName":{}}},"manager":"loan-gateway","operation":"Update","time":"2026-11-30T16:00:00Z"},{"apiVersion":` +
	`"loans.lendo.se/v1alpha1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:bankApplicationID":{},"f:bankJobID":{},` +
	`"f:conditions":{".":{},"k:{\"type\":\"Ready\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:observedGeneration":{},` +
	`"f:reason":{},"f:status":{},"f:type":{}}},"f:decidedAt":{},"f:message":{},"f:observedGeneration":{},"f:phase":{},` +
	`"f:submittedAt":{}}},"manager":"loan-controller","operation":"Update","subresource":"status","time":"2026-11-30T16:00:12Z"}],` +
	`"name":"app-%016d","namespace":"default","resourceVersion":"%d","uid":"9f2c1c3e-3b0f-4a55-a2a4-%012d"},` +
	`"spec":{"firstName":"Ada","lastName":"Lovelace %d"},` +
	`"status":{"bankApplicationID":"9f2c1c3e-3b0f-4a55-a2a4-%012d","bankJobID":"1b2c1c3e-3b0f-4a55-a2a4-%012d",` +
	`"conditions":[{"lastTransitionTime":"2026-11-30T16:00:01Z","message":"the bank accepted the application",` +
	`"observedGeneration":1,"reason":"Submitted","status":"True","type":"Submitted"},{"lastTransitionTime":"2026-11-30T16:00:12Z",` +
	`"message":"the bank approved the loan","observedGeneration":1,"reason":"Approved","status":"True","type":"Ready"}],` +
	`"decidedAt":"2026-11-30T16:00:12Z","message":"the bank approved the loan","observedGeneration":1,"phase":"%s",` +
	`"submittedAt":"2026-11-30T16:00:01Z"}}`

// decoder decodes as the cache's client does.
func decoder(t testing.TB) k8sruntime.Decoder {
	t.Helper()
	scheme := k8sruntime.NewScheme()
	if err := loansv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return serializer.NewCodecFactory(scheme).UniversalDeserializer()
}

// decodeDecided decodes application i with the label and phase given, created by the gateway
// under an Idempotency-Key (its request hash is the hash of its names).
func decodeDecided(t testing.TB, dec k8sruntime.Decoder, i int, label string, phase loansv1alpha1.Phase) *loansv1alpha1.LoanApplication {
	t.Helper()
	return decodeWithHash(t, dec, i, label, phase, requestHash(names{first: "Ada", last: fmt.Sprintf("Lovelace %d", i)}))
}

func decodeWithHash(t testing.TB, dec k8sruntime.Decoder, i int, label string, phase loansv1alpha1.Phase,
	hash string) *loansv1alpha1.LoanApplication {
	t.Helper()
	data := fmt.Appendf(nil, decidedJSON, hash, label, i, 1000+i, i, i, i, i, phase)
	obj, _, err := dec.Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return obj.(*loansv1alpha1.LoanApplication)
}

// The cache keeps what the gateway serves: the REST view, the ETag and what an Idempotency-Key
// replay compares come out the same from a cut object as from the whole one.
func TestSlimKeepsWhatTheGatewayServes(t *testing.T) {
	dec := decoder(t)
	for _, tc := range []struct {
		label string
		phase loansv1alpha1.Phase
	}{
		{loansv1alpha1.LabelApproved, loansv1alpha1.PhaseApproved},
		{loansv1alpha1.LabelRejected, loansv1alpha1.PhaseRejected},
		{loansv1alpha1.LabelPending, loansv1alpha1.PhasePending},
		{"approved-by-hand", loansv1alpha1.PhaseApproved}, // not a valid value: the view shows the phase
		{"", loansv1alpha1.PhaseRejected},
	} {
		whole := decodeDecided(t, dec, 7, tc.label, tc.phase)
		cut := whole.DeepCopy()
		slim(cut, "default")

		if got, want := viewOf(cut), viewOf(whole); !reflect.DeepEqual(got, want) {
			t.Errorf("label %q: view %+v, want %+v", tc.label, got, want)
		}
		if cut.ResourceVersion != whole.ResourceVersion {
			t.Errorf("label %q: resourceVersion %q, want %q", tc.label, cut.ResourceVersion, whole.ResourceVersion)
		}
		if !sameRequest(cut, whole) {
			t.Errorf("label %q: a replay of the same request no longer matches", tc.label)
		}
		other := whole.DeepCopy()
		other.Annotations[RequestHashAnnotation] = "another body"
		if sameRequest(cut, other) {
			t.Errorf("label %q: a replay with another body matches", tc.label)
		}
		again := cut.DeepCopy()
		slim(again, "default")
		if !reflect.DeepEqual(again, cut) {
			t.Errorf("label %q: cutting a cut object changed it", tc.label)
		}
	}
}

// A request hash that is not the hash of the spec (an object planted under a key's name, or
// written by another program) is kept as it is, and a replay of the spec's request does not
// match it.
func TestSlimKeepsAForeignRequestHash(t *testing.T) {
	dec := decoder(t)
	planted := decodeWithHash(t, dec, 3, loansv1alpha1.LabelPending, loansv1alpha1.PhasePending, "0123abcd")
	slim(planted, "default")
	if got := planted.Annotations[RequestHashAnnotation]; got != "0123abcd" {
		t.Errorf("request hash %q, want the one stored", got)
	}
	wanted := decodeDecided(t, dec, 3, loansv1alpha1.LabelPending, loansv1alpha1.PhasePending)
	if sameRequest(planted, wanted) {
		t.Error("a replay matches an application whose request hash is not its own")
	}
	unkeyed := decodeDecided(t, dec, 4, loansv1alpha1.LabelPending, loansv1alpha1.PhasePending)
	unkeyed.Annotations = map[string]string{"note": "created by kubectl"}
	slim(unkeyed, "default")
	if unkeyed.Annotations != nil {
		t.Errorf("annotations %v, want none", unkeyed.Annotations)
	}
}

// What the gateway never serves is not kept.
func TestSlimDropsWhatIsNotServed(t *testing.T) {
	a := decodeDecided(t, decoder(t), 1, loansv1alpha1.LabelApproved, loansv1alpha1.PhaseApproved)
	slim(a, "default")

	if a.ManagedFields != nil || a.UID != "" || a.Finalizers != nil || a.Status.Conditions != nil || a.Status.Message != "" ||
		a.Kind != "" || a.APIVersion != "" {
		t.Errorf("kept what the gateway never serves: %+v", a)
	}
	if want := map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelApproved}; !reflect.DeepEqual(a.Labels, want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	if len(a.Annotations) != 1 || requestHashOf(a) != requestHash(names{first: "Ada", last: "Lovelace 1"}) {
		t.Errorf("annotations %v, want the request hash alone", a.Annotations)
	}
}

// What every application says alike is shared.
func TestSlimShares(t *testing.T) {
	dec := decoder(t)
	a := decodeDecided(t, dec, 1, loansv1alpha1.LabelApproved, loansv1alpha1.PhaseApproved)
	b := decodeDecided(t, dec, 2, loansv1alpha1.LabelApproved, loansv1alpha1.PhaseApproved)
	namespace := "default"
	slim(a, namespace)
	slim(b, namespace)

	if reflect.ValueOf(a.Annotations).UnsafePointer() != reflect.ValueOf(b.Annotations).UnsafePointer() {
		t.Error("two applications whose request hash is the hash of their spec hold an annotations map each")
	}
	if reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() {
		t.Error("two applications with the same status label hold a labels map each")
	}
	if unsafe.StringData(a.Namespace) != unsafe.StringData(namespace) || unsafe.StringData(b.Namespace) != unsafe.StringData(namespace) {
		t.Error("the namespace is a copy per application")
	}
	if unsafe.StringData(string(a.Status.Phase)) != unsafe.StringData(string(b.Status.Phase)) {
		t.Error("the phase is a copy per application")
	}
}

// slimHeapBound is the most heap one decided application may hold once cut, in bytes: the
// object, its strings and its request-hash annotation. The cache's own indexes come on top (the
// benchmark's scenario 4 weighs everything, against 1.5 KiB).
const slimHeapBound = 768

// A decided application, decoded as the watch delivers it and cut, holds at most slimHeapBound
// of heap; whole, it holds more than twice that.
func TestASlimDecidedApplicationIsSmall(t *testing.T) {
	const n = 5000
	dec := decoder(t)
	perApp := func(cut bool) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		apps := make([]*loansv1alpha1.LoanApplication, n)
		for i := range apps {
			apps[i] = decodeDecided(t, dec, i, loansv1alpha1.LabelApproved, loansv1alpha1.PhaseApproved)
			if cut {
				slim(apps[i], "default")
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(apps)
		return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	}
	whole, cut := perApp(false), perApp(true)
	t.Logf("heap per decided application: %.0f bytes whole, %.0f bytes cut", whole, cut)
	if cut > slimHeapBound {
		t.Errorf("a cut application holds %.0f bytes of heap, more than %d", cut, slimHeapBound)
	}
}

// RequestHash, which the benchmark stores, is the annotation a keyed create writes.
func TestRequestHashIsTheAnnotationOfAKeyedCreate(t *testing.T) {
	app := newApplication(names{first: "Ada", last: "Lovelace"}, "a-key")
	if got, want := app.Annotations[RequestHashAnnotation], RequestHash("Ada", "Lovelace"); got != want {
		t.Errorf("annotation %q, RequestHash %q", got, want)
	}
}
