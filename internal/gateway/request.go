package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	sigsjson "sigs.k8s.io/json"
)

// maxBodyBytes bounds a request body: an application is a few dozen bytes, so anything near
// this is a mistake or an attack, refused with 413 before it is read further.
const maxBodyBytes = 64 << 10

// maxNameLength is the most characters a name may have, as the CRD's validation allows.
const maxNameLength = 100

// REST field names, as errors name them.
const (
	fieldFirstName = "first_name"
	fieldLastName  = "last_name"
)

// applicationRequest is the body of POST /api/v1/applications. The fields are pointers so that
// an absent field and an empty one can be told apart in the error message.
type applicationRequest struct {
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
}

// names is a valid request: both names present, non-empty and not too long.
type names struct {
	first, last string
}

// checkContentType refuses a body that is not declared as JSON (415), so that a form post or a
// text/plain upload never reaches the decoder. Media type parameters (charset) are allowed.
func checkContentType(header string) *problem {
	mediaType, _, err := mime.ParseMediaType(header)
	if err != nil || mediaType != "application/json" {
		return newProblem(http.StatusUnsupportedMediaType,
			fmt.Sprintf("the request body must be JSON, sent with Content-Type: application/json (got %q)", header))
	}
	return nil
}

// decodeApplicationRequest reads one application from body, which is read to at most
// maxBodyBytes. It accepts exactly one JSON object with known, case-sensitive and non-repeated
// fields, and checks the names; everything else is a problem that says what is wrong.
func decodeApplicationRequest(body io.Reader) (names, *problem) {
	data, err := io.ReadAll(io.LimitReader(body, maxBodyBytes+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return names{}, bodyTooLarge()
		}
		return names{}, newProblem(http.StatusBadRequest, "the request body could not be read: "+err.Error())
	}
	if len(data) > maxBodyBytes {
		return names{}, bodyTooLarge()
	}
	// The decoder would silently replace invalid UTF-8 with U+FFFD, storing a name the customer
	// never sent; refuse the body instead.
	if !utf8.Valid(data) {
		return names{}, newProblem(http.StatusBadRequest, "the request body is not valid UTF-8 text")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return names{}, newProblem(http.StatusBadRequest, "the request body is empty: send a JSON object with first_name and last_name")
	}
	var req applicationRequest
	// sigs.k8s.io/json is the decoder the API server uses: unlike encoding/json it matches field
	// names case-sensitively and reports unknown and repeated fields, and like it, it refuses
	// anything after the object.
	strictErrs, err := sigsjson.UnmarshalStrict(data, &req)
	if err != nil {
		return names{}, newProblem(http.StatusBadRequest, "the request body is not a valid JSON object of the expected shape: "+
			jsonErrorMessage(err))
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, 0, len(strictErrs))
		for _, e := range strictErrs {
			msgs = append(msgs, e.Error())
		}
		return names{}, newProblem(http.StatusBadRequest, "the request body has fields the API does not know or repeats a field: "+
			strings.Join(msgs, "; ")+" (expected only first_name and last_name)")
	}
	return req.validate()
}

// jsonErrorMessage strips Go type names from a decoding error, which mean nothing to a client.
func jsonErrorMessage(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "Go struct field applicationRequest.", "field ")
	msg = strings.ReplaceAll(msg, "Go value of type gateway.applicationRequest", "an application object")
	msg = strings.ReplaceAll(msg, "Go value of type string", "a string")
	return strings.TrimPrefix(msg, "json: ")
}

func bodyTooLarge() *problem {
	return newProblem(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the request body is larger than %d bytes; an application is a few dozen", maxBodyBytes))
}

// validate checks what the gateway can check without the API server: each name present,
// non-empty and at most maxNameLength characters. The rest of the CRD's rules (no blank or
// control characters) stay with the API server, whose refusal is answered 422 as well.
func (r applicationRequest) validate() (names, *problem) {
	var errs []fieldError
	if e := checkName(fieldFirstName, r.FirstName); e != nil {
		errs = append(errs, *e)
	}
	if e := checkName(fieldLastName, r.LastName); e != nil {
		errs = append(errs, *e)
	}
	if len(errs) > 0 {
		return names{}, invalidFields("the application is not valid: "+errs[0].Message, errs...)
	}
	return names{first: *r.FirstName, last: *r.LastName}, nil
}

func checkName(field string, value *string) *fieldError {
	switch {
	case value == nil:
		return &fieldError{Field: field, Message: field + " is required"}
	case *value == "":
		return &fieldError{Field: field, Message: field + " must not be empty"}
	case strings.ContainsRune(*value, utf8.RuneError):
		// A lone surrogate escape (\ud800) is valid JSON that decodes to U+FFFD: not what was sent.
		return &fieldError{Field: field, Message: field + " must be valid Unicode text (it holds an unpaired surrogate " +
			"or the replacement character U+FFFD)"}
	case utf8.RuneCountInString(*value) > maxNameLength:
		return &fieldError{Field: field, Message: fmt.Sprintf("%s must be at most %d characters (got %d)",
			field, maxNameLength, utf8.RuneCountInString(*value))}
	}
	return nil
}
