package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// conformanceChecker holds every answer of the gateway to the OpenAPI document it serves: a
// status, header or body the document does not describe fails the test that caused it. This is
// what keeps the code and the document from drifting apart.
type conformanceChecker struct {
	doc    *openapi3.T
	router routers.Router
}

func newConformanceChecker() (*conformanceChecker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	// The document names the address of `make dev`; the tests' gateways listen on random ports,
	// and the router would match none of their requests against it.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &conformanceChecker{doc: doc, router: router}, nil
}

// transport checks each answer that next carries; an answer that does not conform is returned
// as an error of the HTTP call.
func (c *conformanceChecker) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err := c.check(req, resp, body); err != nil {
			return nil, fmt.Errorf("the answer to %s %s does not conform to openapi.yaml: %w", req.Method, req.URL.Path, err)
		}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// check validates one answer: against its operation when the request names a documented one;
// otherwise (unknown route or method) the answer must be a problem document.
func (c *conformanceChecker) check(req *http.Request, resp *http.Response, body []byte) error {
	if strings.HasPrefix(req.URL.Path, "/docs") {
		return nil // Swagger UI's page and assets, not part of the API.
	}
	route, pathParams, err := c.router.FindRoute(req)
	if err != nil {
		return c.checkProblem(resp, body)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(req.Context(), input)
}

// checkProblem validates an answer outside any documented operation against the Problem schema.
func (c *conformanceChecker) checkProblem(resp *http.Response, body []byte) error {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType != problemContentType {
		return fmt.Errorf("an answer outside the documented operations must be %s, got %q (status %d)",
			problemContentType, mediaType, resp.StatusCode)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return err
	}
	return c.doc.Components.Schemas["Problem"].Value.VisitJSON(value)
}
