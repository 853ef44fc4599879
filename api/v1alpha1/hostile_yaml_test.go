package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What a careless or hostile user may send through `kubectl apply`: the API server must refuse
// each with a message a person can act on, and store nothing.
var _ = Describe("Hostile LoanApplication YAML through kubectl", func() {
	var (
		ctx       context.Context
		namespace string
	)

	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	manifest := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: loans.lendo.se/v1alpha1\nkind: LoanApplication\nmetadata:\n  name: %s\nspec:\n%s\n", name, spec)
	}
	// billionLaughs expands to 10^9 strings if a parser follows its aliases naively.
	billionLaughs := `apiVersion: loans.lendo.se/v1alpha1
kind: LoanApplication
metadata:
  name: laughs
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
spec:
  firstName: Ada
  lastName: Lovelace
`
	deeplyNested := "  firstName: Ada\n  lastName: Lovelace\n  extra: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000)

	DescribeTable("refused, with a clear message, and nothing stored",
		func(yaml string, wantMessage string) {
			_, stderr, err := env.KubectlWithInput(ctx, yaml, "apply", "-n", namespace, "-f", "-")
			Expect(err).To(HaveOccurred(), "kubectl accepted:\n%s", yaml)
			Expect(stderr).To(ContainSubstring(wantMessage))
			Expect(countApplications(ctx, namespace)).To(BeZero())
		},
		Entry("an unknown field", manifest("unknown", "  firstName: Ada\n  lastName: Lovelace\n  amount: 1000000"),
			`unknown field "spec.amount"`),
		Entry("a number for a name", manifest("number", "  firstName: 123\n  lastName: Lovelace"),
			"spec.firstName: Invalid value"),
		Entry("a list for the spec", "apiVersion: loans.lendo.se/v1alpha1\nkind: LoanApplication\nmetadata:\n  name: list\nspec: [Ada, Lovelace]\n",
			"spec"),
		Entry("a control character in a name", manifest("bell", "  firstName: \"Ada\\a\"\n  lastName: Lovelace"),
			"firstName must not contain control or bidirectional-override characters"),
		Entry("a NUL byte in a name", manifest("nul", "  firstName: \"Ada\\0\"\n  lastName: Lovelace"),
			"firstName must not contain control or bidirectional-override characters"),
		Entry("a right-to-left override that disguises a name", manifest("rlo", "  firstName: \"Ada\\u202Eecalevol\"\n  lastName: Lovelace"),
			"firstName must not contain control or bidirectional-override characters"),
		Entry("a 10,000-character name", manifest("huge", "  firstName: "+strings.Repeat("x", 10000)+"\n  lastName: Lovelace"),
			"spec.firstName: Too long"),
		Entry("an invalid object name", manifest("Ada_Lovelace!", "  firstName: Ada\n  lastName: Lovelace"),
			"metadata.name: Invalid value"),
		Entry("an unknown version", strings.Replace(manifest("version", "  firstName: Ada\n  lastName: Lovelace"), "v1alpha1", "v9", 1),
			`no matches for kind "LoanApplication" in version "loans.lendo.se/v9"`),
		Entry("a YAML alias bomb", billionLaughs, "excessive aliasing"),
		Entry("deeply nested JSON", manifest("nested", deeplyNested), `unknown field "spec.extra"`),
		Entry("a document over the API server's size limit", manifest("oversized", "  firstName: Ada\n  lastName: "+strings.Repeat("y", 4<<20)),
			"too large"),
	)

	// kubectl's own YAML and JSON parsing keeps the last of two duplicate keys before anything
	// reaches the server, so the server's refusal is shown with the document sent as it is.
	It("refuses a duplicate key sent as it is, with strict field validation", func() {
		body := `{"apiVersion":"loans.lendo.se/v1alpha1","kind":"LoanApplication","metadata":{"name":"duplicate"},` +
			`"spec":{"firstName":"Ada","firstName":"Grace","lastName":"Lovelace"}}`
		path := "/apis/loans.lendo.se/v1alpha1/namespaces/" + namespace + "/loanapplications?fieldValidation=Strict"
		_, stderr, err := env.KubectlWithInput(ctx, body, "create", "--raw", path, "-f", "-")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring(`duplicate field "spec.firstName"`))
		Expect(countApplications(ctx, namespace)).To(BeZero())
	})

	It("accepts names in any script, without control characters", func() {
		yaml := manifest("unicode", "  firstName: \"Zoë Ñúñez 李 محمد\"\n  lastName: \"O'Brien-Łukasiewicz\"")
		_, stderr, err := env.KubectlWithInput(ctx, yaml, "apply", "-n", namespace, "-f", "-")
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(countApplications(ctx, namespace)).To(Equal(1))
	})
})
