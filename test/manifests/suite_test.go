// Package manifests_test checks config/ against a real kube-apiserver (envtest): every
// kustomize package renders with the kubectl that ships kustomize, and the API server accepts
// what it renders; the workloads are hardened and wired to each other; the roles let the
// controller and the gateway do their work and nothing more; and the admission policy guards
// the `status` label.
package manifests_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/test/testenv"
)

// The names that config/default and config/dev give the operator's namespace and identities,
// which the admission policy and the local run rely on.
const (
	systemNamespace = "loan-operator-system"
	controllerUser  = "system:serviceaccount:" + systemNamespace + ":loan-operator-controller-manager"
	gatewayUser     = "system:serviceaccount:" + systemNamespace + ":loan-operator-gateway"
	// gatewayNamespace is the namespace the gateway serves (its --namespace), where its Role and
	// RoleBinding are.
	gatewayNamespace = "default"
)

var (
	env *testenv.Env
	// configDir is the repository's config/ folder.
	configDir string
)

func TestManifests(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(testenv.EventuallyTimeout)
	SetDefaultEventuallyPollingInterval(testenv.EventuallyPolling)
	RunSpecs(t, "Manifests Suite")
}

var _ = BeforeSuite(func(ctx context.Context) {
	configDir = filepath.Join(testenv.RepoRoot(), "config")
	for role, markers := range map[string]string{
		"rbac/role.yaml":         "internal/controller",
		"rbac/gateway/role.yaml": "internal/gateway",
	} {
		Expect(filepath.Join(configDir, role)).To(BeAnExistingFile(),
			"config/%s is generated from the +kubebuilder:rbac markers in %s: run `make manifests`", role, markers)
	}

	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())

	// The packages under config/ that are built into config/default keep kubebuilder's
	// placeholder namespace `system`; it must exist for them to be applied on their own.
	Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "system"}})).To(Succeed())

	// What the local run applies: the CRD, the namespace, the identities, their roles and the
	// admission policy. The RBAC and policy specs run against it.
	applyRendered(ctx, "dev")
	// The API server's authorizer learns of the roles and bindings just applied through its
	// informers: wait until it grants each identity's rights before any spec relies on them.
	waitUntilAllowed(ctx, gatewayUser, authorizationv1.ResourceAttributes{
		Namespace: gatewayNamespace, Verb: "create", Group: loansv1alpha1.GroupVersion.Group, Resource: "loanapplications"})
	waitUntilAllowed(ctx, controllerUser, authorizationv1.ResourceAttributes{
		Verb: "patch", Group: loansv1alpha1.GroupVersion.Group, Resource: "loanapplications", Subresource: "status"})
	waitUntilAllowed(ctx, controllerUser, authorizationv1.ResourceAttributes{
		Namespace: systemNamespace, Verb: "create", Group: coordinationv1.GroupName, Resource: "leases"})
	// The metrics servers' authentication and authorization, bound to both identities.
	for _, user := range []string{controllerUser, gatewayUser} {
		waitUntilAllowed(ctx, user, authorizationv1.ResourceAttributes{
			Verb: "create", Group: authenticationv1.GroupName, Resource: "tokenreviews"})
	}
})

// waitUntilAllowed waits until the API server's authorizer allows user, with the groups of a
// ServiceAccount in the operator's namespace, to do what attributes says.
func waitUntilAllowed(ctx context.Context, user string, attributes authorizationv1.ResourceAttributes) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: serviceAccountGroups, ResourceAttributes: &attributes}}
		g.Expect(env.Client.Create(ctx, review)).To(Succeed())
		g.Expect(review.Status.Allowed).To(BeTrue(), "%s may not %+v: %s", user, attributes, review.Status.Reason)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
