package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// newNamespace creates a namespace of its own for one test, so tests never see each other's
// objects.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-"}}
	Expect(env.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func application(namespace, name, first, last string) *loansv1alpha1.LoanApplication {
	return &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: first, LastName: last},
	}
}

// countApplications is how a test shows that a refused request created nothing.
func countApplications(ctx context.Context, namespace string) int {
	var list loansv1alpha1.LoanApplicationList
	Expect(env.Client.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	return len(list.Items)
}

var _ = Describe("LoanApplication", func() {
	var (
		ctx       context.Context
		namespace string
	)

	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("stores a valid application and reads it back, with status separate from spec", func() {
		app := application(namespace, "ada", "Ada", "Lovelace")
		Expect(env.Client.Create(ctx, app)).To(Succeed())

		var read loansv1alpha1.LoanApplication
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &read)).To(Succeed())
		Expect(read.Spec).To(Equal(app.Spec))
		Expect(read.Status.Phase).To(BeEmpty())

		By("ignoring status sent through the main resource")
		read.Status.Phase = loansv1alpha1.PhaseApproved
		Expect(env.Client.Update(ctx, &read)).To(Succeed())
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &read)).To(Succeed())
		Expect(read.Status.Phase).To(BeEmpty())

		By("writing status through the status subresource, which leaves spec alone")
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		read.Status = loansv1alpha1.LoanApplicationStatus{
			Phase:             loansv1alpha1.PhasePending,
			BankApplicationID: string(read.UID),
			SubmittedAt:       &now,
		}
		read.Spec.FirstName = "Changed"
		Expect(env.Client.Status().Update(ctx, &read)).To(Succeed())
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &read)).To(Succeed())
		Expect(read.Status.Phase).To(Equal(loansv1alpha1.PhasePending))
		Expect(read.Status.BankApplicationID).To(Equal(string(read.UID)))
		Expect(read.Status.SubmittedAt.Time).To(BeTemporally("==", now.Time))
		Expect(read.Spec.FirstName).To(Equal("Ada"))
	})

	DescribeTable("refuses bad input with a message that names the field, and creates nothing",
		func(spec map[string]any, field, message string) {
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": loansv1alpha1.GroupVersion.String(),
				"kind":       "LoanApplication",
				"metadata":   map[string]any{"name": "bad", "namespace": namespace},
				"spec":       spec,
			}}
			err := env.Client.Create(ctx, obj)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected 422 Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring(message))
			Expect(countApplications(ctx, namespace)).To(BeZero())
		},
		Entry("missing first name", map[string]any{"lastName": "Lovelace"},
			"spec.firstName", "Required value"),
		Entry("missing last name", map[string]any{"firstName": "Ada"},
			"spec.lastName", "Required value"),
		Entry("empty first name", map[string]any{"firstName": "", "lastName": "Lovelace"},
			"spec.firstName", "should be at least 1 chars long"),
		Entry("whitespace-only last name", map[string]any{"firstName": "Ada", "lastName": " \t "},
			"spec.lastName", "lastName must not be empty or only whitespace"),
		Entry("101-character first name", map[string]any{"firstName": strings.Repeat("a", 101), "lastName": "Lovelace"},
			"spec.firstName", "may not be more than 100 bytes"),
		Entry("no spec at all", nil,
			"spec", "Required value"),
	)

	It("refuses the name the gateway's event stream takes, and creates nothing", func() {
		err := env.Client.Create(ctx, application(namespace, "events", "Ada", "Lovelace"))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected 422 Invalid, got %v", err)
		Expect(err.Error()).To(ContainSubstring("the name 'events' is reserved"))
		Expect(countApplications(ctx, namespace)).To(BeZero())
		Expect(env.Client.Create(ctx, application(namespace, "events-1", "Ada", "Lovelace"))).To(Succeed())
	})

	It("accepts names of exactly 100 characters", func() {
		app := application(namespace, "long", strings.Repeat("a", 100), strings.Repeat("b", 100))
		Expect(env.Client.Create(ctx, app)).To(Succeed())
	})

	DescribeTable("refuses a change of the spec after creation",
		func(change func(*loansv1alpha1.LoanApplication), field string) {
			app := application(namespace, "immutable", "Ada", "Lovelace")
			Expect(env.Client.Create(ctx, app)).To(Succeed())
			change(app)
			err := env.Client.Update(ctx, app)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected 422 Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring("is immutable once the application is created"))

			var read loansv1alpha1.LoanApplication
			Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &read)).To(Succeed())
			Expect(read.Spec).To(Equal(loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"}))
		},
		Entry("first name", func(a *loansv1alpha1.LoanApplication) { a.Spec.FirstName = "Grace" }, "spec.firstName"),
		Entry("last name", func(a *loansv1alpha1.LoanApplication) { a.Spec.LastName = "Hopper" }, "spec.lastName"),
	)

	It("lets kubectl select by the status label, with the printer columns", func() {
		labelled := map[string]string{
			"approved-1": loansv1alpha1.LabelApproved,
			"approved-2": loansv1alpha1.LabelApproved,
			"rejected-1": loansv1alpha1.LabelRejected,
			"pending-1":  loansv1alpha1.LabelPending,
		}
		for name, value := range labelled {
			app := application(namespace, name, "First-"+name, "Last-"+name)
			app.Labels = map[string]string{loansv1alpha1.LabelStatus: value}
			Expect(env.Client.Create(ctx, app)).To(Succeed())
		}
		Expect(env.Client.Create(ctx, application(namespace, "unlabelled", "No", "Label"))).To(Succeed())

		// The decided column shows the status' decidedAt.
		var approved loansv1alpha1.LoanApplication
		Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "approved-1"}, &approved)).To(Succeed())
		decided := metav1.NewTime(time.Now().Add(-72 * time.Hour)) // shown as "3d" for hours: a stable column
		approved.Status = loansv1alpha1.LoanApplicationStatus{Phase: loansv1alpha1.PhaseApproved, DecidedAt: &decided}
		Expect(env.Client.Status().Update(ctx, &approved)).To(Succeed())

		out, stderr, err := env.Kubectl(ctx, "get", "loanapplications", "-n", namespace, "-l", "status=approved")
		Expect(err).NotTo(HaveOccurred(), stderr)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(3), out)
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "FIRST", "NAME", "LAST", "NAME", "STATUS", "DECIDED", "AGE"}))
		Expect(strings.Fields(lines[1])[:5]).To(Equal([]string{"approved-1", "First-approved-1", "Last-approved-1", "Approved", "3d"}))
		Expect(strings.Fields(lines[2])[:3]).To(Equal([]string{"approved-2", "First-approved-2", "Last-approved-2"}))

		By("the short name and the other label values")
		out, stderr, err = env.Kubectl(ctx, "get", "loan", "-n", namespace, "-l", "status=rejected", "-o", "name")
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(strings.TrimSpace(out)).To(Equal(fmt.Sprintf("loanapplication.%s/rejected-1", loansv1alpha1.GroupVersion.Group)))
	})

	It("documents every field for kubectl explain", func() {
		for _, path := range []string{"loanapplication.spec", "loanapplication.status"} {
			out, stderr, err := env.Kubectl(ctx, "explain", path)
			Expect(err).NotTo(HaveOccurred(), stderr)
			Expect(out).NotTo(ContainSubstring("<empty>"), "a field of %s has no description:\n%s", path, out)
		}
		out, _, err := env.Kubectl(ctx, "explain", "loanapplication.spec.firstName")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("immutable once created"))
	})
})
