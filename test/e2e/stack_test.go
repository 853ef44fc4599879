package e2e_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/stacktest"
)

// How many applications each way: enough that approvals and rejections both occur (the bank
// approves half at random) and that the gateway's list spans several pages.
const perChannel = 20

var _ = Describe("The local stack", Ordered, func() {
	var (
		opts  devenv.Options
		stack *devenv.Stack
		// decided holds every application once final, by name, for the restart to compare with.
		decided map[string]loansv1alpha1.LoanApplication
	)

	BeforeAll(func(ctx SpecContext) {
		opts = programs.QuickOptions(GinkgoT().TempDir(), GinkgoWriter)
		var err error
		stack, err = devenv.Start(ctx, opts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			if stack != nil {
				Expect(stack.Stop()).To(Succeed())
			}
		})
	}, NodeTimeout(3*time.Minute))

	AfterEach(func() { Expect(stacktest.UnexpectedExit(stack)).To(Succeed()) })

	It("serves the gateway's /readyz once every part is up", func(ctx SpecContext) {
		for _, p := range stack.Processes() {
			Expect(p.Running()).To(BeTrue(), "%s is not running", p.Name())
		}
		Expect(stack.Controllers).To(HaveLen(1))
		var ready map[string]any
		getJSON(ctx, Default, stack.GatewayURL+"/readyz", &ready)
	}, SpecTimeout(30*time.Second))

	It("runs the controller and the gateway as their ServiceAccounts, each with only its role", func(ctx SpecContext) {
		Expect(stack.Gateway.Args()).To(ContainElement("--kubeconfig=" + stack.GatewayKubeconfig))
		Expect(stack.Controllers[0].Args()).To(ContainElement("--kubeconfig=" + stack.ControllerKubeconfig))

		for kubeconfig, user := range map[string]string{
			stack.GatewayKubeconfig: devenv.GatewayUser, stack.ControllerKubeconfig: devenv.ControllerUser,
		} {
			out, errOut, err := stack.KubectlWith(ctx, kubeconfig, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
			Expect(err).NotTo(HaveOccurred(), errOut)
			Expect(out).To(Equal(user))
		}
		expectRights(ctx, stack, stack.GatewayKubeconfig, map[string]bool{
			"create loanapplications": true, "get loanapplications": true, "list loanapplications": true, "watch loanapplications": true,
			"update loanapplications": false, "patch loanapplications": false, "delete loanapplications": false,
			"patch loanapplications/status": false, "get secrets": false, "create pods": false,
		})
		expectRights(ctx, stack, stack.ControllerKubeconfig, map[string]bool{
			"get loanapplications": true, "list loanapplications": true, "watch loanapplications": true,
			"patch loanapplications": true, "patch loanapplications/status": true,
			"create loanapplications": false, "delete loanapplications": false, "get secrets": false, "create pods": false,
		})
	}, SpecTimeout(time.Minute))

	It("takes applications from kubectl and from the gateway to decisions on which kubectl, the gateway and the bank agree",
		func(ctx SpecContext) {
			started := time.Now()
			names := applyThroughKubectl(ctx, stack, "kubectl", perChannel)
			for i := range perChannel {
				names = append(names, createThroughGateway(ctx, stack.GatewayURL, "Ada", "Lovelace "+letters(i)))
			}
			decided = finalApps(ctx, stack, 2*perChannel, 90*time.Second)
			GinkgoWriter.Printf("%d applications decided %s after the first was sent\n", len(decided), time.Since(started))
			Expect(decided).To(HaveLen(len(names)))
			for _, name := range names {
				Expect(decided).To(HaveKey(name))
			}

			approved := namesWithPhase(decided, loansv1alpha1.PhaseApproved)
			rejected := namesWithPhase(decided, loansv1alpha1.PhaseRejected)
			Expect(approved).NotTo(BeEmpty(), "the bank approves half: none approved of %d", len(decided))
			Expect(rejected).NotTo(BeEmpty(), "the bank rejects half: none rejected of %d", len(decided))
			expectViewsAgree(ctx, stack, approved, rejected)
			expectBankAgrees(ctx, stack, decided)
		}, SpecTimeout(3*time.Minute))

	It("keeps every application, with its decision, across a stop and a start", func(ctx SpecContext) {
		Expect(decided).NotTo(BeEmpty(), "the previous spec decided nothing")
		// Someone changes the installed CRD: the next start must put config/dev's back.
		_, errOut, err := stack.Kubectl(ctx, "", "patch", "crd", crdName, "--type=json",
			"-p", `[{"op":"replace","path":"/spec/versions/0/additionalPrinterColumns","value":[]}]`)
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(printerColumns(ctx, stack)).To(BeZero())
		apiServerURL, adminKubeconfig := stack.APIServerURL, stack.KubeconfigPath

		Expect(stack.Stop()).To(Succeed())
		for _, p := range stack.Processes() {
			Expect(p.Running()).To(BeFalse(), "%s still runs after Stop", p.Name())
		}
		stack, err = devenv.Start(ctx, opts)
		Expect(err).NotTo(HaveOccurred())
		Expect(stack.APIServerURL).To(Equal(apiServerURL), "the API server moved: kubeconfigs copied elsewhere break")
		Expect(stack.KubeconfigPath).To(Equal(adminKubeconfig))
		Expect(printerColumns(ctx, stack)).To(BeNumerically(">", 0), "the CRD was not re-applied")

		again := finalApps(ctx, stack, len(decided), 30*time.Second)
		for name, before := range decided {
			Expect(again).To(HaveKey(name))
			after := again[name]
			Expect(after.UID).To(Equal(before.UID), "%s was recreated", name)
			Expect(after.Status.Phase).To(Equal(before.Status.Phase), name)
			Expect(after.Status.DecidedAt).To(Equal(before.Status.DecidedAt), name)
		}
		expectViewsAgree(ctx, stack, namesWithPhase(decided, loansv1alpha1.PhaseApproved),
			namesWithPhase(decided, loansv1alpha1.PhaseRejected))
		// The restarted bank remembers nothing; a decided application is never sent again.
		Consistently(func(g Gomega) {
			st, err := stacktest.BankStats(ctx, httpClient, stack.BankURL)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.ApplicationsCreated).To(BeZero())
		}).WithContext(ctx).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	}, SpecTimeout(3*time.Minute))

	It("lets a caller kill and restart the controller and restart kube-apiserver on the same data", func(ctx SpecContext) {
		Expect(stack.Controllers[0].Kill()).To(Succeed())
		name := createThroughGateway(ctx, stack.GatewayURL, "Katherine", "Johnson")

		Expect(stack.APIServer.Stop()).To(Succeed())
		Expect(stack.APIServer.Start(ctx)).To(Succeed())
		Expect(stack.Controllers[0].Start(ctx)).To(Succeed())

		apps := finalApps(ctx, stack, len(decided)+1, time.Minute)
		Expect(apps).To(HaveKey(name))
		Eventually(func(g Gomega) {
			ids, _ := gatewayList(ctx, g, stack.GatewayURL, apps[name].Status.Phase.LabelValue())
			g.Expect(ids).To(ContainElement(name))
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
	}, SpecTimeout(3*time.Minute))
})

const crdName = "loanapplications.loans.lendo.se"

// printerColumns counts the installed CRD's kubectl columns.
func printerColumns(ctx context.Context, stack *devenv.Stack) int {
	GinkgoHelper()
	var crd apiextensionsv1.CustomResourceDefinition
	Expect(stack.Client.Get(ctx, client.ObjectKey{Name: crdName}, &crd)).To(Succeed())
	Expect(crd.Spec.Versions).NotTo(BeEmpty())
	return len(crd.Spec.Versions[0].AdditionalPrinterColumns)
}

// expectRights checks `kubectl auth can-i` for each "verb resource" as the kubeconfig's user.
func expectRights(ctx context.Context, stack *devenv.Stack, kubeconfig string, rights map[string]bool) {
	GinkgoHelper()
	for action, allowed := range rights {
		args := append([]string{"auth", "can-i"}, strings.Fields(action)...)
		out, errOut, err := stack.KubectlWith(ctx, kubeconfig, "", append(args, "-n", "default")...)
		var exit *exec.ExitError
		Expect(err == nil || errors.As(err, &exit)).To(BeTrue(), "kubectl auth can-i %s: %v %s", action, err, errOut)
		want := map[bool]string{true: "yes", false: "no"}[allowed]
		Expect(strings.TrimSpace(out)).To(Equal(want), "can-i %s as %s", action, kubeconfig)
	}
}

// expectViewsAgree checks that `kubectl get -l status=...` and the gateway's `?status=` list
// show exactly the approved and rejected applications, and nothing else in those states.
func expectViewsAgree(ctx context.Context, stack *devenv.Stack, approved, rejected []string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for status, want := range map[string][]string{
			loansv1alpha1.LabelApproved: approved, loansv1alpha1.LabelRejected: rejected,
		} {
			g.Expect(sorted(kubectlNames(ctx, g, stack, status))).To(Equal(want), "kubectl get -l status=%s", status)
			ids, shown := gatewayList(ctx, g, stack.GatewayURL, status)
			g.Expect(sorted(ids)).To(Equal(want), "gateway ?status=%s", status)
			g.Expect(shown).To(HaveEach(status))
		}
		g.Expect(kubectlNames(ctx, g, stack, loansv1alpha1.LabelPending)).To(BeEmpty())
		ids, _ := gatewayList(ctx, g, stack.GatewayURL, loansv1alpha1.LabelPending)
		g.Expect(ids).To(BeEmpty())
		// The gateway's cache follows the watch: allow it a moment behind the API server.
	}).WithContext(ctx).WithTimeout(15 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
}

// expectBankAgrees checks each decision against the bank simulator's own record, and that each
// application was submitted exactly once.
func expectBankAgrees(ctx context.Context, stack *devenv.Stack, apps map[string]loansv1alpha1.LoanApplication) {
	GinkgoHelper()
	st, err := stacktest.BankStats(ctx, httpClient, stack.BankURL)
	Expect(err).NotTo(HaveOccurred())
	Expect(st.ApplicationsCreated).To(BeEquivalentTo(len(apps)), "submissions to the bank")
	for name, app := range apps {
		// The controller submits under the resource's UID and records it.
		uid := app.Status.BankApplicationID
		Expect(uid).To(Equal(string(app.UID)), "%s's bank application id", name)
		Expect(st.Submissions).To(HaveKeyWithValue(uid, BeEquivalentTo(1)), "%s submitted once", name)
		Expect(st.Decisions).To(HaveKey(uid), "the bank has no decision for %s", name)
		said := st.Decisions[uid].Status
		Expect(stacktest.PhaseOfBankStatus(said)).To(Equal(app.Status.Phase), "%s: the bank said %s", name, said)
	}
}
