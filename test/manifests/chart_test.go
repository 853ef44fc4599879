package manifests_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/test/testenv"
)

// The Helm chart (dist/chart) against the same API server: lint, a server-side dry run of what
// it renders, a real install, upgrade and uninstall (no kubelet runs the pods, but every object
// is created and validated), and the same objects as config/default.
var _ = Describe("The Helm chart", func() {
	var chartDir string
	BeforeEach(func() {
		chartDir = filepath.Join(testenv.RepoRoot(), "dist", "chart")
		// Helm's caches and repositories stay out of the home folder. Made here, since runHelm
		// also runs in cleanups, where no temporary folder can be made.
		helmHome = GinkgoT().TempDir()
	})

	It("passes helm lint --strict", func(ctx context.Context) {
		out := helm(ctx, "lint", "--strict", chartDir)
		Expect(out).To(ContainSubstring("1 chart(s) linted, 0 chart(s) failed"))
	})

	It("renders what the API server accepts in a server-side dry run, with the defaults and with every option", func(ctx context.Context) {
		ns := newNamespace(ctx, "chart-dry-run-")
		for name, sets := range map[string][]string{
			"defaults": nil,
			"options": {"bankSim.enabled=false", "bank.url=https://bank.example.com", "gateway.rbac.clusterWide=true",
				"gateway.authToken.secretName=gateway-token", "controller.replicas=2", "networkPolicy.enabled=false",
				"metrics.enabled=false", "userRoles.enabled=false", "controller.serviceAccount.name=loans"},
		} {
			args := make([]string, 0, 6+2*len(sets))
			args = append(args, "template", "dry-"+name, chartDir, "--namespace", ns, "--include-crds")
			for _, set := range sets {
				args = append(args, "--set", set)
			}
			path := filepath.Join(GinkgoT().TempDir(), name+".yaml")
			Expect(os.WriteFile(path, []byte(helm(ctx, args...)), 0o600)).To(Succeed())
			out, errOut, err := env.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", path)
			Expect(err).NotTo(HaveOccurred(), "%s: %s\n%s", name, out, errOut)
			Expect(out).To(ContainSubstring("deployment.apps/dry-" + name + "-controller-manager serverside-applied (server dry run)"))
		}
	})

	It("refuses to render without a bank", func(ctx context.Context) {
		_, errOut, err := runHelm(ctx, "template", "x", chartDir, "--set", "bankSim.enabled=false")
		Expect(err).To(HaveOccurred())
		Expect(errOut).To(ContainSubstring("set bank.url to the bank's base URL, or bankSim.enabled=true"))
	})

	It("renders the same objects as config/default, with the same rules in each role and the same flow control", func(ctx context.Context) {
		def := render(ctx, "default")
		chart := parseYAML(helm(ctx, "template", "loan-operator", chartDir, "--namespace", systemNamespace, "--include-crds"))
		key := func(obj *unstructured.Unstructured) string {
			return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
		}
		fromChart := map[string]*unstructured.Unstructured{}
		for _, obj := range chart {
			fromChart[key(obj)] = obj
		}
		var fromKustomize []string
		for _, obj := range def.objects {
			// helm install --create-namespace makes the namespace; a chart does not own it.
			if obj.GetKind() != "Namespace" {
				fromKustomize = append(fromKustomize, key(obj))
			}
		}
		Expect(keys(fromChart)).To(ConsistOf(fromKustomize))

		for _, obj := range def.objects {
			switch obj.GetKind() {
			case "Role", "ClusterRole":
				want, _, _ := unstructured.NestedSlice(obj.Object, "rules")
				got, _, _ := unstructured.NestedSlice(fromChart[key(obj)].Object, "rules")
				Expect(got).To(Equal(want), key(obj))
			case "FlowSchema", "PriorityLevelConfiguration":
				// The same levels and the same subjects (the ServiceAccounts as each names them).
				Expect(fromChart[key(obj)].Object["spec"]).To(Equal(obj.Object["spec"]), key(obj))
			}
		}
		for _, name := range []string{"loan-operator-controller-manager", "loan-operator-gateway", "loan-operator-bank-sim"} {
			want := typed[appsv1.Deployment](def.get("Deployment", name)).Spec.Template.Spec.Containers[0]
			got := typed[appsv1.Deployment](fromChart["Deployment "+systemNamespace+"/"+name]).Spec.Template.Spec.Containers[0]
			Expect(got.Args).To(HaveExactElements(withDelays(name, want.Args)), name)
			Expect(got.Env).To(Equal(want.Env), name)
			Expect(got.SecurityContext).To(Equal(want.SecurityContext), name)
		}
	})

	It("installs, upgrades to a cluster-wide gateway and uninstalls, its policy naming the controller as the release does",
		func(ctx context.Context) {
			const release, gatewayNS = "lending", "default"
			ns := newNamespace(ctx, "chart-install-")
			// Made before the release's policy judges, which may refuse every write after the uninstall.
			probe := newDecidedApplication(ctx, newNamespace(ctx, "chart-probe-"))
			DeferCleanup(func(ctx context.Context) {
				// A release left behind would leave its admission policy judging every other spec.
				helm(ctx, "uninstall", release, "--namespace", ns, "--ignore-not-found")
				waitUntilTheReleasesPolicyIsGone(ctx, probe)
			})
			out := helm(ctx, "install", release, chartDir, "--namespace", ns)
			Expect(out).To(ContainSubstring("STATUS: deployed"))

			var deployment appsv1.Deployment
			Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: release + "-controller-manager"}, &deployment)).To(Succeed())
			Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: gatewayNS, Name: release + "-gateway-role"}, &rbacv1.Role{})).
				To(Succeed(), "the gateway's Role is in the namespace it serves")

			gateway := newIdentity("system:serviceaccount:"+ns+":"+release+"-gateway", "system:serviceaccounts", "system:authenticated")
			other := newNamespace(ctx, "chart-other-")
			Eventually(func(g Gomega) {
				g.Expect(canCreate(ctx, gateway, gatewayNS)).To(BeTrue())
			}).WithTimeout(10 * time.Second).Should(Succeed())
			Expect(canCreate(ctx, gateway, other)).To(BeFalse(), "a namespaced gateway has no rights elsewhere")

			expectPolicyFollowsTheRelease(ctx, "system:serviceaccount:"+ns+":"+release+"-controller-manager")

			out = helm(ctx, "upgrade", release, chartDir, "--namespace", ns, "--reuse-values", "--set", "gateway.rbac.clusterWide=true")
			Expect(out).To(ContainSubstring("has been upgraded"))
			Expect(env.Client.Get(ctx, client.ObjectKey{Name: release + "-gateway-role"}, &rbacv1.ClusterRole{})).To(Succeed())
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: gatewayNS, Name: release + "-gateway-role"}, &rbacv1.Role{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the upgrade left the namespaced Role: %v", err)
			Eventually(func(g Gomega) {
				g.Expect(canCreate(ctx, gateway, other)).To(BeTrue())
			}).WithTimeout(10*time.Second).Should(Succeed(), "cluster-wide when asked for")

			Expect(helm(ctx, "uninstall", release, "--namespace", ns)).To(ContainSubstring("uninstalled"))
			err = env.Client.Get(ctx, client.ObjectKeyFromObject(&deployment), &appsv1.Deployment{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Deployment outlived the uninstall: %v", err)
			err = env.Client.Get(ctx, client.ObjectKey{Name: release + "-gateway-role"}, &rbacv1.ClusterRole{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the ClusterRole outlived the uninstall: %v", err)
		})
})

// waitUntilTheReleasesPolicyIsGone waits until the API server judges LoanApplications by
// config/dev's policy alone again after an uninstall, as the other specs expect: config/dev's
// controller may record the decision of app (approved, unlabelled). The admission plugin learns
// of the deleted binding, of the deleted parameter (the ConfigMap) and of config/dev's binding set
// back through its informers, each in its own time; while it knows the binding without its
// parameter, it refuses every write of a LoanApplication.
func waitUntilTheReleasesPolicyIsGone(ctx context.Context, app *loansv1alpha1.LoanApplication) {
	GinkgoHelper()
	devController := newIdentity(controllerUser, serviceAccountGroups...)
	Eventually(func(g Gomega) {
		g.Expect(labelApproved(ctx, devController.client, app, client.DryRunAll)).To(Succeed(), "the uninstalled release's policy still judges")
		// And config/dev's policy is back: it refuses anyone else.
		g.Expect(labelApproved(ctx, env.Client, app, client.DryRunAll)).
			To(MatchError(ContainSubstring("only the loan-operator controller (" + controllerUser + ")")))
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// expectPolicyFollowsTheRelease checks, by impersonation, that the chart's admission policy lets
// the release's controller (in the release's namespace) record a decision and refuses the
// controller of config/dev. config/dev's own binding, which names its controller, is set aside
// meanwhile: two operators' policies on one cluster would each refuse the other's controller.
func expectPolicyFollowsTheRelease(ctx context.Context, releaseController string) {
	GinkgoHelper()
	devBinding := &unstructured.Unstructured{}
	devBinding.SetAPIVersion("admissionregistration.k8s.io/v1")
	devBinding.SetKind("ValidatingAdmissionPolicyBinding")
	Expect(env.Client.Get(ctx, client.ObjectKey{Name: "loan-operator-loanapplication-status-label"}, devBinding)).To(Succeed())
	Expect(env.Client.Delete(ctx, devBinding)).To(Succeed())
	DeferCleanup(func(ctx context.Context) {
		devBinding.SetResourceVersion("")
		devBinding.SetUID("")
		Expect(env.Client.Create(ctx, devBinding)).To(Succeed())
	})

	controller := newIdentity(releaseController, "system:serviceaccounts", "system:authenticated")
	devController := newIdentity(controllerUser, serviceAccountGroups...)
	// Both may patch LoanApplications: config/dev's role and the chart's bind each. Only the
	// policy tells them apart.
	app := newDecidedApplication(ctx, newNamespace(ctx, "chart-policy-"))
	// Dry runs: an attempt let through before the chart's policy is enforced stores nothing,
	// so that every attempt starts from the unlabelled application. The admission plugin learns
	// of the chart's binding and of config/dev's deleted one through its informer, each in its
	// own time: wait until it refuses config/dev's controller and admits the release's.
	Eventually(func(g Gomega) {
		err := labelApproved(ctx, devController.client, app, client.DryRunAll)
		g.Expect(err).To(MatchError(ContainSubstring("only the loan-operator controller (" + releaseController + ")")))
		g.Expect(labelApproved(ctx, controller.client, app, client.DryRunAll)).To(Succeed(), "config/dev's binding still judges")
	}).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(),
		"the chart's policy must refuse config/dev's controller and admit the release's")
	Expect(labelApproved(ctx, controller.client, app)).To(Succeed(), "the release's controller records the decision")
}

// newDecidedApplication creates an unlabelled application in ns whose status the bank approved:
// what the controller labels next.
func newDecidedApplication(ctx context.Context, ns string) *loansv1alpha1.LoanApplication {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "decided"},
		Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: "Grace", LastName: "Hopper"},
	}
	Expect(env.Client.Create(ctx, app)).To(Succeed())
	decided := app.DeepCopy()
	decided.Status.Phase = loansv1alpha1.PhaseApproved
	Expect(env.Client.Status().Update(ctx, decided)).To(Succeed())
	return app
}

// labelApproved sets app's status label to approved through the client as (a user's), with a
// merge patch as the controller does.
func labelApproved(ctx context.Context, as client.Client, app *loansv1alpha1.LoanApplication, opts ...client.PatchOption) error {
	GinkgoHelper()
	var current loansv1alpha1.LoanApplication
	Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), &current)).To(Succeed())
	changed := current.DeepCopy()
	changed.Labels = map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelApproved}
	return as.Patch(ctx, changed, client.MergeFrom(&current), opts...)
}

// canCreate asks the API server whether id may create LoanApplications in ns.
func canCreate(ctx context.Context, id *identity, ns string) bool {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "can-create-"},
		Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"},
	}
	err := id.client.Create(ctx, app, client.DryRunAll)
	if apierrors.IsForbidden(err) {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return true
}

// withDelays is config/default's arguments of a program as the chart's defaults render them:
// the chart states the bank simulator's delays, which config/default leaves to the program.
func withDelays(name string, args []string) []string {
	if name != "loan-operator-bank-sim" {
		return args
	}
	return append(append([]string(nil), args...), "--min-delay=5s", "--max-delay=20s")
}

// helmHome holds helm's cache, configuration and data for one spec.
var helmHome string

// helm runs bin/helm (or $HELM) against the test API server and returns its standard output.
func helm(ctx context.Context, args ...string) string {
	GinkgoHelper()
	out, errOut, err := runHelm(ctx, args...)
	Expect(err).NotTo(HaveOccurred(), "helm %v:\n%s\n%s", args, out, errOut)
	return out
}

func runHelm(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	path := os.Getenv("HELM")
	if path == "" {
		path = filepath.Join(testenv.RepoRoot(), "bin", "helm")
	}
	if _, statErr := os.Stat(path); statErr != nil {
		Fail(fmt.Sprintf("no helm at %s: run `make helm` (or make test, which does)", path))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append(args, "--kubeconfig", env.KubeconfigPath)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+helmHome, "HELM_CONFIG_HOME="+helmHome, "HELM_DATA_HOME="+helmHome)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// parseYAML decodes a multi-document YAML stream.
func parseYAML(stream string) []*unstructured.Unstructured {
	GinkgoHelper()
	var objects []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objects
		}
		Expect(err).NotTo(HaveOccurred())
		if len(obj.Object) > 0 {
			objects = append(objects, obj)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
