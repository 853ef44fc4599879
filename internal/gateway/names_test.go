package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestNamesAreResourceNames(t *testing.T) {
	for _, name := range []string{randomName(), randomName(), nameForKey("k"), nameForKey("7d1c52b4-9b9e-4a55-a2a4-6c1e4a0f3a21")} {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("%q is not a resource name: %v", name, errs)
		}
	}
	first, second := randomName(), randomName()
	if first == second {
		t.Error("two random names are equal")
	}
	again := nameForKey("a")
	if nameForKey("a") != again || nameForKey("b") == again {
		t.Error("a key's name must depend on the key alone")
	}
}

func TestRequestHashTellsNamesApart(t *testing.T) {
	pairs := []names{{"Ada", "Lovelace"}, {"AdaL", "ovelace"}, {"Ada", "Lovelace "}, {"", "AdaLovelace"}}
	seen := map[string]names{}
	for _, n := range pairs {
		h := requestHash(n)
		if other, dup := seen[h]; dup {
			t.Errorf("%+v and %+v hash alike", n, other)
		}
		seen[h] = n
	}
}

func TestContinueTokenRoundTrip(t *testing.T) {
	for _, name := range []string{"app-abc", "a", "approved-001"} {
		if got, ok := decodeContinue(encodeContinue(name)); !ok || got != name {
			t.Errorf("%q came back as %q, %v", name, got, ok)
		}
	}
	for _, token := range []string{"!!", encodeContinue("Not A Name"), encodeContinue("")} {
		if _, ok := decodeContinue(token); ok {
			t.Errorf("token %q accepted", token)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := map[string]struct {
		token string
		ok    bool
	}{
		"Bearer abc":  {"abc", true},
		"bearer abc":  {"abc", true},
		"Bearer  abc": {"abc", true},
		"Bearer ":     {"", false},
		"Basic abc":   {"", false},
		"abc":         {"", false},
		"":            {"", false},
	}
	for header, want := range tests {
		if token, ok := bearerToken(header); token != want.token || ok != want.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", header, token, ok, want.token, want.ok)
		}
	}
}

func TestProblemFromAPIError(t *testing.T) {
	gr := schema.GroupResource{Group: "loans.lendo.se", Resource: "loanapplications"}
	refused := &url.Error{Op: "Post", URL: "https://127.0.0.1:1", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"not found", apierrors.NewNotFound(gr, "x"), http.StatusNotFound},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "LoanApplication"}, "x",
			field.ErrorList{field.Invalid(field.NewPath("spec", "firstName"), " ", "must not be blank")}), http.StatusUnprocessableEntity},
		{"connection refused", refused, http.StatusServiceUnavailable},
		{"deadline", fmt.Errorf("create: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), http.StatusServiceUnavailable},
		{"server timeout", apierrors.NewServerTimeout(gr, "create", 1), http.StatusServiceUnavailable},
		{"cache not synced", errNotSynced, http.StatusServiceUnavailable},
		{"forbidden: the gateway's own fault", apierrors.NewForbidden(gr, "x", errors.New("no")), http.StatusInternalServerError},
		{"anything else", errors.New("boom"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problemFromAPIError(tt.err); got.Status != tt.want {
				t.Errorf("status %d, want %d", got.Status, tt.want)
			}
		})
	}
}

func TestInvalidFromAPIServerUsesRESTFieldNames(t *testing.T) {
	err := apierrors.NewInvalid(schema.GroupKind{Group: "loans.lendo.se", Kind: "LoanApplication"}, "x",
		field.ErrorList{field.Invalid(field.NewPath("spec", "lastName"), "\u202e", "lastName must not contain control characters")})
	p := problemFromAPIError(err)
	if len(p.Errors) != 1 || p.Errors[0].Field != fieldLastName {
		t.Fatalf("errors %+v, want one on %s", p.Errors, fieldLastName)
	}
}
