package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeApplicationRequest feeds arbitrary bodies to the decoder. Whatever the body, the
// decoder must not panic, must refuse with a problem of a documented status (400, 413, 422), and
// what it accepts must be exactly a valid application that encodes back to the same names.
func FuzzDecodeApplicationRequest(f *testing.F) {
	for _, seed := range []string{
		`{"first_name": "Ada", "last_name": "Lovelace"}`,
		`{"first_name": "", "last_name": "Lovelace"}`,
		`{"first_name": "Ada"}`,
		`{"first_name": null, "last_name": null}`,
		`{"first_name": "Ada", "last_name": "Lovelace", "extra": 1}`,
		`{"First_Name": "Ada", "last_name": "Lovelace"}`,
		`{"first_name": "Ada", "first_name": "Eve", "last_name": "Lovelace"}`,
		`{"first_name": "Ada", "last_name": "Lovelace"} {}`,
		`{"first_name": 1, "last_name": true}`,
		`[]`, `"x"`, `null`, ``, `   `, `{`, "\xff\xfe",
		`{"first_name": "\u202e", "last_name": "\ud800"}`,
		`{"first_name": "` + strings.Repeat("é", 101) + `", "last_name": "x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, p := decodeApplicationRequest(bytes.NewReader(body))
		if p != nil {
			switch p.Status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			default:
				t.Fatalf("status %d for body %q", p.Status, body)
			}
			if p.Detail == "" || p.Title != http.StatusText(p.Status) {
				t.Fatalf("problem without a message: %+v", p)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
		}
		for _, name := range []string{got.first, got.last} {
			if name == "" || utf8.RuneCountInString(name) > maxNameLength || strings.ContainsRune(name, utf8.RuneError) {
				t.Fatalf("accepted an invalid name %q from %q", name, body)
			}
		}
		again, err := json.Marshal(map[string]string{fieldFirstName: got.first, fieldLastName: got.last})
		if err != nil {
			t.Fatal(err)
		}
		if back, p := decodeApplicationRequest(bytes.NewReader(again)); p != nil || back != got {
			t.Fatalf("%q decoded to %+v, which encodes to %s and decodes to %+v (%v)", body, got, again, back, p)
		}
	})
}

func TestDecodeApplicationRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: accepted
		wantDetail string
	}{
		{"two names", `{"first_name":"Ada","last_name":"Lovelace"}`, 0, ""},
		{"names with surrounding whitespace in the document", " \n{\"first_name\":\"Ada\",\"last_name\":\"L\"}\n ", 0, ""},
		{"trailing garbage", `{"first_name":"Ada","last_name":"L"}x`, http.StatusBadRequest, "after top-level value"},
		{"unknown field", `{"first_name":"Ada","last_name":"L","age":3}`, http.StatusBadRequest, `unknown field "age"`},
		{"wrong type", `{"first_name":["Ada"],"last_name":"L"}`, http.StatusBadRequest, "field first_name"},
		{"missing", `{"first_name":"Ada"}`, http.StatusUnprocessableEntity, "last_name is required"},
		{"overlong UTF-8 in a name", "{\"first_name\":\"Ada\xc0\xaf\",\"last_name\":\"L\"}", http.StatusBadRequest, "not valid UTF-8"},
		{"a 0xFF byte in a name", "{\"first_name\":\"Ada\xff\",\"last_name\":\"L\"}", http.StatusBadRequest, "not valid UTF-8"},
		{"an unpaired surrogate escape", `{"first_name":"Ada\ud800","last_name":"L"}`, http.StatusUnprocessableEntity,
			"unpaired surrogate"},
		{"the replacement character itself", `{"first_name":"Ada\ufffd","last_name":"L"}`, http.StatusUnprocessableEntity,
			"U+FFFD"},
		{"one byte over the limit", `{"first_name":"` + strings.Repeat("a", maxBodyBytes) + `"}`,
			http.StatusRequestEntityTooLarge, "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p := decodeApplicationRequest(strings.NewReader(tt.body))
			switch {
			case tt.wantStatus == 0 && p != nil:
				t.Fatalf("refused: %v", p)
			case tt.wantStatus != 0 && p == nil:
				t.Fatalf("accepted, want %d", tt.wantStatus)
			case p != nil && (p.Status != tt.wantStatus || !strings.Contains(p.Detail, tt.wantDetail)):
				t.Fatalf("got %d %q, want %d containing %q", p.Status, p.Detail, tt.wantStatus, tt.wantDetail)
			}
		})
	}
}

func TestCheckContentType(t *testing.T) {
	for header, ok := range map[string]bool{
		"application/json":                true,
		"Application/JSON":                true,
		"application/json; charset=utf-8": true,
		"":                                false,
		"text/json":                       false,
		"application/json-patch+json":     false,
		"application/json;;":              false,
	} {
		if got := checkContentType(header) == nil; got != ok {
			t.Errorf("checkContentType(%q) accepted=%v, want %v", header, got, ok)
		}
	}
}
