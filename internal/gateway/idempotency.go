package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// RequestHashAnnotation holds a hash of the names an application was created with under an
// Idempotency-Key, so that a retry under the same key with a different body is told apart (422).
const RequestHashAnnotation = "gateway.loans.lendo.se/request-sha256"

const (
	// idempotencyHeader makes a POST safe to retry: the same key answers the same application.
	idempotencyHeader = "Idempotency-Key"
	// maxIdempotencyKeyLength bounds the key; a UUID is 36 characters.
	maxIdempotencyKeyLength = 255
	// namePrefix starts every name the gateway makes, so that a name is readable as an id in URLs.
	namePrefix = "app-"
	// nameIDLength is the length of the random or derived part: 16 base32 characters, 80 bits,
	// so that neither random names nor hashed keys collide in practice.
	nameIDLength = 16
)

// lowerBase32 encodes bytes to lower-case letters and digits 2-7: valid in a DNS-1123 name.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomName is the name of an application created without an Idempotency-Key.
func randomName() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return namePrefix + lowerBase32.EncodeToString(b[:])[:nameIDLength]
}

// nameForKey is the name of the application created under an Idempotency-Key. Deriving it from
// the key (instead of remembering keys somewhere) makes the API server itself refuse a second
// object for the same key, across gateway restarts and replicas, with no store of our own.
func nameForKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return namePrefix + lowerBase32.EncodeToString(sum[:])[:nameIDLength]
}

// requestHash identifies the body of a create: the names, length-prefixed so that no two
// different pairs of names hash alike.
func requestHash(n names) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:%s%d:%s", len(n.first), n.first, len(n.last), n.last))
	return hex.EncodeToString(sum[:])
}

// RequestHash is the value of RequestHashAnnotation on an application the gateway created with
// these names under an Idempotency-Key.
func RequestHash(firstName, lastName string) string {
	return requestHash(names{first: firstName, last: lastName})
}

// idempotencyKey reads the optional Idempotency-Key header: absent is "", present it must be 1
// to 255 printable ASCII characters.
func idempotencyKey(r *http.Request) (string, *problem) {
	values := r.Header.Values(idempotencyHeader)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", newProblem(http.StatusBadRequest, "send at most one Idempotency-Key header")
	}
	key := strings.TrimSpace(values[0])
	if key == "" || len(key) > maxIdempotencyKeyLength || strings.IndexFunc(key, notPrintableASCII) >= 0 {
		return "", newProblem(http.StatusBadRequest, fmt.Sprintf(
			"the Idempotency-Key header must be 1 to %d printable ASCII characters, such as a UUID", maxIdempotencyKeyLength))
	}
	return key, nil
}

func notPrintableASCII(r rune) bool {
	return r < 0x20 || r > 0x7e
}

// keyedFlights joins the creates under one Idempotency-Key that one gateway serves at the same
// time: the first goes to the API server, the others wait for its outcome and answer from it,
// so that 50 retries in a burst cost one create, not 50 (nor 50 slots of MaxInflightCreates).
// Across gateways the API server's refusal of a second object of the same name does the same.
type keyedFlights struct {
	mu      sync.Mutex
	flights map[string]*keyedFlight
}

// keyedFlight is one create in flight; created is set, before done closes, to the application
// it stored (or found stored by itself), nil when it failed.
type keyedFlight struct {
	done    chan struct{}
	created *loansv1alpha1.LoanApplication
}

func newKeyedFlights() *keyedFlights {
	return &keyedFlights{flights: map[string]*keyedFlight{}}
}

// join answers the flight of name and whether the caller leads it: the leader must call land
// with its outcome; the others wait on done.
func (k *keyedFlights) join(name string) (*keyedFlight, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.flights[name]; ok {
		return f, false
	}
	f := &keyedFlight{done: make(chan struct{})}
	k.flights[name] = f
	return f, true
}

// land ends the flight of name with the application created (nil: none).
func (k *keyedFlights) land(name string, f *keyedFlight, created *loansv1alpha1.LoanApplication) {
	k.mu.Lock()
	delete(k.flights, name)
	k.mu.Unlock()
	f.created = created
	close(f.done)
}

// sameRequest reports whether existing is what a create of wanted stores: the same hash of the
// body and the same spec. The spec is compared as well, because the name derived from a key is
// predictable: an object planted under it, hash annotation and all, must not be handed back
// for a request that asked for other names.
func sameRequest(existing, wanted *loansv1alpha1.LoanApplication) bool {
	return requestHashOf(existing) == requestHashOf(wanted) && existing.Spec == wanted.Spec
}

// keyReused is the answer to an Idempotency-Key used before with another body: 422, as
// draft-ietf-httpapi-idempotency-key-header asks.
func keyReused() *problem {
	return newProblem(http.StatusUnprocessableEntity, "this Idempotency-Key was already used with a different request body; "+
		"use a new key for a new application")
}
