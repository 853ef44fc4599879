package manifests_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The messages of config/policy/status_label_policy.yaml, in part.
const (
	onlyControllerMessage = "only the loan-operator controller (" + controllerUser +
		") may set the status label of a LoanApplication to approved"
	finalMessage = "the status label of a LoanApplication is final once it is approved"
)

// The ValidatingAdmissionPolicy applied with config/dev in BeforeSuite, exercised by a person
// with the kubebuilder editor role (full write rights on LoanApplications), by the controller's
// ServiceAccount and by a cluster administrator.
var _ = Describe("The status label admission policy", Ordered, func() {
	var (
		namespace  string
		editor     *identity
		controller *identity
	)

	newApplication := func(name, label string) *loansv1alpha1.LoanApplication {
		app := &loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: "Grace", LastName: "Hopper"},
		}
		if label != "" {
			app.Labels = map[string]string{loansv1alpha1.LabelStatus: label}
		}
		return app
	}

	// relabel sets (or, with "", removes) the status label with a merge patch, as kubectl
	// label and the controller do.
	relabel := func(ctx context.Context, c client.Client, app *loansv1alpha1.LoanApplication, label string) error {
		var current loansv1alpha1.LoanApplication
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &current)).To(Succeed())
		changed := current.DeepCopy()
		if label == "" {
			delete(changed.Labels, loansv1alpha1.LabelStatus)
		} else {
			if changed.Labels == nil {
				changed.Labels = map[string]string{}
			}
			changed.Labels[loansv1alpha1.LabelStatus] = label
		}
		return c.Patch(ctx, changed, client.MergeFrom(&current))
	}

	// decide records a phase in the status, as the controller does before it sets the label.
	decide := func(ctx context.Context, app *loansv1alpha1.LoanApplication, phase loansv1alpha1.Phase) {
		var current loansv1alpha1.LoanApplication
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &current)).To(Succeed())
		current.Status.Phase = phase
		Expect(env.Client.Status().Update(ctx, &current)).To(Succeed())
	}

	labelOf := func(ctx context.Context, app *loansv1alpha1.LoanApplication) string {
		var current loansv1alpha1.LoanApplication
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &current)).To(Succeed())
		return current.Labels[loansv1alpha1.LabelStatus]
	}

	BeforeAll(func(ctx context.Context) {
		namespace = newNamespace(ctx, "policy-")
		editor = newIdentity("alice@lendo.se", "loan-officers", "system:authenticated")
		controller = newIdentity(controllerUser, serviceAccountGroups...)
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "alice-edits-loanapplications"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole",
				Name: "loan-operator-loanapplication-editor-role"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: editor.name}},
		}
		Expect(env.Client.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, binding)).To(Succeed()) })

		// RBAC and admission policies take effect asynchronously after they are created: wait
		// until the editor may create and the policy refuses a decision. An attempt that slips
		// through before the policy is enforced is removed, so that every attempt starts clean.
		Eventually(func(g Gomega) {
			app := newApplication("probe", loansv1alpha1.LabelApproved)
			err := editor.client.Create(ctx, app)
			if err == nil {
				g.Expect(env.Client.Delete(ctx, app)).To(Succeed())
			}
			g.Expect(err).To(MatchError(ContainSubstring(onlyControllerMessage)))
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	})

	It("refuses an editor creating an application as approved, with a clear message", func(ctx context.Context) {
		for _, label := range []string{loansv1alpha1.LabelApproved, loansv1alpha1.LabelRejected, loansv1alpha1.LabelFailed} {
			err := editor.client.Create(ctx, newApplication("decided-by-alice-"+label, label))
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: want 403 Forbidden, got %v", label, err)
			Expect(err.Error()).To(ContainSubstring("only the loan-operator controller (" + controllerUser + ")"))
			Expect(err.Error()).To(ContainSubstring("to " + label))
			Expect(err.Error()).To(ContainSubstring(editor.name + " may create applications as pending or without the label"))
			if label == loansv1alpha1.LabelApproved {
				AddReportEntry("what the editor is told", err.Error())
			}
		}
		var list loansv1alpha1.LoanApplicationList
		Expect(env.Client.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "a refused create stores nothing")
	})

	It("lets an editor create applications as pending or without the label", func(ctx context.Context) {
		Expect(editor.client.Create(ctx, newApplication("pending-by-alice", loansv1alpha1.LabelPending))).To(Succeed())
		Expect(editor.client.Create(ctx, newApplication("unlabelled-by-alice", ""))).To(Succeed())
	})

	It("refuses an editor setting approved on an existing application, by patch and by update", func(ctx context.Context) {
		app := newApplication("grace", loansv1alpha1.LabelPending)
		Expect(editor.client.Create(ctx, app)).To(Succeed())

		err := relabel(ctx, editor.client, app, loansv1alpha1.LabelApproved)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403 Forbidden, got %v", err)
		Expect(err).To(MatchError(ContainSubstring(onlyControllerMessage)))

		var current loansv1alpha1.LoanApplication
		Expect(editor.client.Get(ctx, client.ObjectKeyFromObject(app), &current)).To(Succeed())
		current.Labels[loansv1alpha1.LabelStatus] = loansv1alpha1.LabelApproved
		err = editor.client.Update(ctx, &current)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403 Forbidden, got %v", err)
		Expect(err).To(MatchError(ContainSubstring(onlyControllerMessage)))

		Expect(labelOf(ctx, app)).To(Equal(loansv1alpha1.LabelPending))
	})

	It("lets the controller set the decision, and then nobody may change it", func(ctx context.Context) {
		app := newApplication("hopper", loansv1alpha1.LabelPending)
		Expect(editor.client.Create(ctx, app)).To(Succeed())
		decide(ctx, app, loansv1alpha1.PhaseApproved)
		Expect(relabel(ctx, controller.client, app, loansv1alpha1.LabelApproved)).To(Succeed())
		Expect(labelOf(ctx, app)).To(Equal(loansv1alpha1.LabelApproved))

		for _, attempt := range []struct {
			who   string
			as    client.Client
			label string
			says  string
		}{
			{"the editor", editor.client, loansv1alpha1.LabelPending, "cannot be changed to pending"},
			{"the editor", editor.client, "", "cannot be removed"},
			{"the controller", controller.client, loansv1alpha1.LabelRejected, "cannot be changed to rejected"},
			{"a cluster administrator", env.Client, loansv1alpha1.LabelFailed, "cannot be changed to failed"},
			{"a cluster administrator", env.Client, "", "cannot be removed"},
		} {
			err := relabel(ctx, attempt.as, app, attempt.label)
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s relabelling to %q: want 403 Forbidden, got %v",
				attempt.who, attempt.label, err)
			Expect(err).To(MatchError(ContainSubstring(finalMessage)), attempt.who)
			Expect(err).To(MatchError(ContainSubstring(attempt.says)), attempt.who)
			if attempt.label == "" && attempt.as == env.Client {
				AddReportEntry("what a cluster administrator is told", err.Error())
			}
		}
		Expect(labelOf(ctx, app)).To(Equal(loansv1alpha1.LabelApproved))

		// Other labels of a decided application stay editable, and the decision comes along.
		var current loansv1alpha1.LoanApplication
		Expect(editor.client.Get(ctx, client.ObjectKeyFromObject(app), &current)).To(Succeed())
		current.Labels["team"] = "mortgages"
		Expect(editor.client.Update(ctx, &current)).To(Succeed())
	})

	It("refuses the controller a final label that is not the status's phase", func(ctx context.Context) {
		undecided := newApplication("undecided", loansv1alpha1.LabelPending)
		Expect(editor.client.Create(ctx, undecided)).To(Succeed())
		err := relabel(ctx, controller.client, undecided, loansv1alpha1.LabelApproved)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403 Forbidden, got %v", err)
		Expect(err).To(MatchError(ContainSubstring(
			"the status label of a LoanApplication may be approved only when its status.phase is; it is not set yet")))

		rejected := newApplication("rejected", loansv1alpha1.LabelPending)
		Expect(editor.client.Create(ctx, rejected)).To(Succeed())
		decide(ctx, rejected, loansv1alpha1.PhaseRejected)
		err = relabel(ctx, controller.client, rejected, loansv1alpha1.LabelApproved)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403 Forbidden, got %v", err)
		Expect(err).To(MatchError(ContainSubstring("may be approved only when its status.phase is; it is rejected")))
		Expect(relabel(ctx, controller.client, rejected, loansv1alpha1.LabelRejected)).To(Succeed())
		Expect(labelOf(ctx, undecided)).To(Equal(loansv1alpha1.LabelPending))
	})
})

// The controller's identity is the policy's parameter, filled in from its ServiceAccount when the
// package is rendered: renaming the namespace in config/dev (or config/default) renames the
// identity the policy lets through, instead of leaving every application pending.
var _ = Describe("The status label policy's parameters", func() {
	It("follow the controller's ServiceAccount when the operator's namespace is renamed", func(ctx context.Context) {
		copied := filepath.Join(GinkgoT().TempDir(), "config")
		Expect(os.CopyFS(copied, os.DirFS(configDir))).To(Succeed())
		kustomization := filepath.Join(copied, "dev", "kustomization.yaml")
		data, err := os.ReadFile(kustomization)
		Expect(err).NotTo(HaveOccurred())
		renamed := strings.Replace(string(data), "namespace: "+systemNamespace, "namespace: lending", 1)
		Expect(renamed).NotTo(Equal(string(data)))
		Expect(os.WriteFile(kustomization, []byte(renamed), 0o600)).To(Succeed())

		out, errOut, err := env.Kubectl(ctx, "kustomize", filepath.Join(copied, "dev"))
		Expect(err).NotTo(HaveOccurred(), errOut)
		var params, binding *unstructured.Unstructured
		for _, obj := range parseYAML(out) {
			switch obj.GetKind() {
			case "ConfigMap":
				params = obj
			case "ValidatingAdmissionPolicyBinding":
				binding = obj
			}
		}
		Expect(params).NotTo(BeNil())
		Expect(params.GetNamespace()).To(Equal("lending"))
		data2, _, _ := unstructured.NestedStringMap(params.Object, "data")
		Expect(data2).To(Equal(map[string]string{
			"controllerNamespace": "lending", "controllerServiceAccount": "loan-operator-controller-manager",
		}))
		ref, _, _ := unstructured.NestedStringMap(binding.Object, "spec", "paramRef")
		Expect(ref).To(HaveKeyWithValue("namespace", "lending"))
		Expect(ref).To(HaveKeyWithValue("name", params.GetName()))
	})
})
