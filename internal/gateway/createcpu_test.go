package gateway

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// BenchmarkCreateLayer measures the gateway's own CPU per create, apart from the API server
// call: reading and checking the body, building the object, encoding the answer. It needs no
// API server: go test ./internal/gateway -run '^$' -bench CreateLayer -benchmem.
func BenchmarkCreateLayer(b *testing.B) {
	body := []byte(`{"first_name": "Ada", "last_name": "Lovelace"}`)
	b.ReportAllocs()
	for b.Loop() {
		req, p := decodeApplicationRequest(bytes.NewReader(body))
		if p != nil {
			b.Fatal(p)
		}
		app := newApplication(req, "")
		writeCreated(httptest.NewRecorder(), app)
	}
}
