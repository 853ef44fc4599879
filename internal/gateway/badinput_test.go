package gateway

import (
	"context"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Bad input", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) { gw = startGateway(ctx, Options{}) })

	// Each bad create answers a problem document that says what is wrong, and stores nothing.
	expectRefused := func(ctx context.Context, a answer, status int, wantDetail string) problem {
		GinkgoHelper()
		Expect(a.status).To(Equal(status), string(a.body))
		p := a.problem()
		Expect(p.Detail).To(ContainSubstring(wantDetail))
		Expect(applicationsIn(ctx, gw.namespace)).To(BeEmpty(), "a refused request created an application")
		return p
	}

	DescribeTable("a create body that is not one JSON object of the expected shape is a 400",
		func(ctx context.Context, body, wantDetail string) {
			expectRefused(ctx, gw.postJSON(body), http.StatusBadRequest, wantDetail)
		},
		Entry("malformed JSON", `{"first_name": "Ada", `, "not a valid JSON object"),
		Entry("not JSON at all", `first_name=Ada`, "not a valid JSON object"),
		Entry("an empty body", ``, "the request body is empty"),
		Entry("only whitespace", "  \n ", "the request body is empty"),
		Entry("an array", `[{"first_name": "Ada", "last_name": "Lovelace"}]`, "cannot unmarshal array"),
		Entry("a string", `"Ada Lovelace"`, "cannot unmarshal string"),
		Entry("a name that is a number", `{"first_name": 42, "last_name": "Lovelace"}`, "field first_name"),
		Entry("an unknown field", `{"first_name": "Ada", "last_name": "Lovelace", "amount": 1000}`, `unknown field "amount"`),
		Entry("a field in the wrong case", `{"First_Name": "Ada", "last_name": "Lovelace"}`, `unknown field "First_Name"`),
		Entry("a repeated field", `{"first_name": "Ada", "first_name": "Eve", "last_name": "Lovelace"}`, `duplicate field "first_name"`),
		Entry("a second object after the first", `{"first_name": "Ada", "last_name": "Lovelace"} {"first_name": "Eve"}`,
			"after top-level value"),
	)

	DescribeTable("a name that is missing, empty or too long is a 422 naming the field",
		func(ctx context.Context, body, field, wantMessage string) {
			p := expectRefused(ctx, gw.postJSON(body), http.StatusUnprocessableEntity, wantMessage)
			Expect(p.Errors).To(ContainElement(fieldError{Field: field, Message: wantMessage}))
		},
		Entry("first_name missing", `{"last_name": "Lovelace"}`, "first_name", "first_name is required"),
		Entry("last_name null", `{"first_name": "Ada", "last_name": null}`, "last_name", "last_name is required"),
		Entry("first_name empty", `{"first_name": "", "last_name": "Lovelace"}`, "first_name", "first_name must not be empty"),
		Entry("last_name of 101 characters", `{"first_name": "Ada", "last_name": "`+strings.Repeat("é", 101)+`"}`,
			"last_name", "last_name must be at most 100 characters (got 101)"),
	)

	It("names both fields when both are missing", func(ctx context.Context) {
		p := expectRefused(ctx, gw.postJSON(`{}`), http.StatusUnprocessableEntity, "first_name is required")
		Expect(p.Errors).To(ConsistOf(
			fieldError{Field: "first_name", Message: "first_name is required"},
			fieldError{Field: "last_name", Message: "last_name is required"}))
	})

	It("accepts a name of exactly 100 characters", func() {
		Expect(gw.postJSON(`{"first_name": "Ada", "last_name": "` + strings.Repeat("é", 100) + `"}`).status).
			To(Equal(http.StatusCreated))
	})

	DescribeTable("the API server's validation is a 422 with its message, under the REST field name",
		func(ctx context.Context, body, field, wantMessage string) {
			p := expectRefused(ctx, gw.postJSON(body), http.StatusUnprocessableEntity, wantMessage)
			Expect(p.Errors).To(ContainElement(And(
				HaveField("Field", field), HaveField("Message", ContainSubstring(wantMessage)))))
		},
		Entry("a blank first name", `{"first_name": "   ", "last_name": "Lovelace"}`,
			"first_name", "firstName must not be empty or only whitespace"),
		Entry("a bidirectional override in the last name", `{"first_name": "Ada", "last_name": "Love\u202elace"}`,
			"last_name", "lastName must not contain control or bidirectional-override characters"),
	)

	It("refuses a body over 64 KiB with 413", func(ctx context.Context) {
		body := `{"first_name": "Ada", "last_name": "` + strings.Repeat("x", maxBodyBytes) + `"}`
		expectRefused(ctx, gw.postJSON(body), http.StatusRequestEntityTooLarge, "larger than 65536 bytes")
	})

	DescribeTable("a body not sent as application/json is a 415",
		func(ctx context.Context, contentType string) {
			headers := []string{}
			if contentType != "" {
				headers = append(headers, "Content-Type", contentType)
			}
			a := gw.call(http.MethodPost, applicationsPath, []byte(`{"first_name": "Ada", "last_name": "Lovelace"}`), headers...)
			expectRefused(ctx, a, http.StatusUnsupportedMediaType, "must be JSON, sent with Content-Type: application/json")
		},
		Entry("no Content-Type", ""),
		Entry("text/plain", "text/plain"),
		Entry("a form", "application/x-www-form-urlencoded"),
		Entry("JSON's media type misspelt", "application/jsonx"),
		Entry("an unparsable media type", "application/json; ="),
	)

	DescribeTable("a bad Idempotency-Key is a 400",
		func(ctx context.Context, key string) {
			a := gw.postJSON(`{"first_name": "Ada", "last_name": "Lovelace"}`, idempotencyHeader, key)
			expectRefused(ctx, a, http.StatusBadRequest, "Idempotency-Key header must be 1 to 255 printable ASCII characters")
		},
		Entry("blank", "   "),
		Entry("longer than 255 characters", strings.Repeat("k", 256)),
		Entry("not ASCII", "clé"),
	)

	It("answers an unknown route with a 404 problem", func() {
		for _, path := range []string{"/nowhere", "/api/v2/applications", "/api/v1/applications/app-1/status"} {
			a := gw.get(path)
			Expect(a.status).To(Equal(http.StatusNotFound), path)
			Expect(a.problem().Detail).To(ContainSubstring("no such route"))
		}
	})

	It("answers a method a route does not serve with a 405 problem and the Allow header", func(ctx context.Context) {
		storeApplication(ctx, gw.namespace, "app-keep", "pending")
		a := gw.call(http.MethodDelete, applicationsPath+"/app-keep", nil)
		Expect(a.status).To(Equal(http.StatusMethodNotAllowed))
		Expect(a.header.Values("Allow")).To(Equal([]string{http.MethodGet}))
		Expect(a.problem().Detail).To(Equal("DELETE is not allowed on /api/v1/applications/app-keep"))
		Expect(applicationsIn(ctx, gw.namespace)).To(HaveLen(1), "the DELETE removed nothing")

		a = gw.call(http.MethodPut, applicationsPath, []byte(`{}`), "Content-Type", "application/json")
		Expect(a.status).To(Equal(http.StatusMethodNotAllowed))
		Expect(a.header.Values("Allow")).To(ConsistOf(http.MethodGet, http.MethodPost))
		a.problem()
	})
})
