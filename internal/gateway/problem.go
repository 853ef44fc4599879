package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problemContentType is the media type of every error answer (RFC 9457).
const problemContentType = "application/problem+json"

// problem is an RFC 9457 problem details object: the one JSON shape of every error the gateway
// answers. Type is always "about:blank", so Title is the HTTP status phrase and Detail is the
// sentence meant for a person.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Errors names each field at fault, in the REST API's own field names (first_name).
	Errors []fieldError `json:"errors,omitempty"`

	// retryAfter, in seconds, is sent as a Retry-After header when positive (503).
	retryAfter int
	// allow lists the methods of a 405, sent as the Allow header.
	allow []string
}

// fieldError is one invalid field of a request.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// newProblem is a problem with the given status and a message for a person.
func newProblem(status int, detail string) *problem {
	return &problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// invalidFields is a 422 naming the fields at fault.
func invalidFields(detail string, errs ...fieldError) *problem {
	p := newProblem(http.StatusUnprocessableEntity, detail)
	p.Errors = errs
	return p
}

// Error makes a problem usable where an error is expected (in logs).
func (p *problem) Error() string {
	return strconv.Itoa(p.Status) + " " + p.Detail
}

// writeProblem answers p.
func writeProblem(w http.ResponseWriter, p *problem) {
	h := w.Header()
	h.Set("Content-Type", problemContentType)
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	for _, m := range p.allow {
		h.Add("Allow", m)
	}
	w.WriteHeader(p.Status)
	encode(w, p)
}

// writeJSON answers body as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	encode(w, body)
}

// encode writes body as JSON, leaving <, > and & as they are: the answers are JSON for programs,
// never HTML, and "<token>" reads better than "\u003ctoken\u003e".
func encode(w http.ResponseWriter, body any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}
