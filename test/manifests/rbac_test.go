package manifests_test

import (
	"context"
	"fmt"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The roles are those config/dev applied in BeforeSuite, with the rules `make manifests`
// generates from the +kubebuilder:rbac markers. Each identity acts for real against the API
// server, as the programs do in the local run; then a SelfSubjectRulesReview shows that it holds
// nothing beyond what it needs.
var _ = Describe("RBAC", func() {
	var (
		namespace string
		app       *loansv1alpha1.LoanApplication
	)

	BeforeEach(func(ctx context.Context) {
		namespace = newNamespace(ctx, "rbac-")
		app = &loansv1alpha1.LoanApplication{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ada",
				Labels: map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending}},
			Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"},
		}
		// A Secret in the applications' namespace and one in the operator's: neither identity may
		// read them.
		for _, ns := range []string{namespace, systemNamespace} {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bank-credentials-"},
				StringData: map[string]string{"token": "s3cret"}}
			Expect(env.Client.Create(ctx, secret)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, secret)).To(Succeed()) })
		}
	})

	Describe("the gateway's ServiceAccount", func() {
		var gateway *identity
		var served *loansv1alpha1.LoanApplication
		BeforeEach(func(ctx context.Context) {
			gateway = newIdentity(gatewayUser, serviceAccountGroups...)
			// The gateway's rights are in the namespace it serves, where the applications of
			// every spec meet: a name of its own for each.
			served = app.DeepCopy()
			served.Namespace, served.Name = gatewayNamespace, ""
			served.GenerateName = "ada-"
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: gatewayNamespace, GenerateName: "bank-credentials-"},
				StringData: map[string]string{"token": "s3cret"}}
			Expect(env.Client.Create(ctx, secret)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, secret)).To(Succeed()) })
		})

		It("creates, gets, lists and watches LoanApplications in the namespace it serves", func(ctx context.Context) {
			Expect(gateway.client.Create(ctx, served)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, served)).To(Succeed()) })
			var read loansv1alpha1.LoanApplication
			Expect(gateway.client.Get(ctx, client.ObjectKeyFromObject(served), &read)).To(Succeed())
			var list loansv1alpha1.LoanApplicationList
			Expect(gateway.client.List(ctx, &list, client.InNamespace(gatewayNamespace))).To(Succeed())
			Expect(list.Items).To(ContainElement(HaveField("Name", served.Name)))
			Expect(gateway.client.List(ctx, &list, client.InNamespace(gatewayNamespace),
				client.MatchingLabels{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending})).To(Succeed())
			watcher, err := gateway.client.Watch(ctx, &loansv1alpha1.LoanApplicationList{}, client.InNamespace(gatewayNamespace))
			Expect(err).NotTo(HaveOccurred())
			watcher.Stop()
		})

		It("has no rights on LoanApplications in any other namespace, nor across the cluster", func(ctx context.Context) {
			expectForbidden(gateway.client.Create(ctx, app.DeepCopy()), "create loanapplications in "+namespace)
			Expect(env.Client.Create(ctx, app)).To(Succeed())
			expectForbidden(gateway.client.Get(ctx, client.ObjectKeyFromObject(app), &loansv1alpha1.LoanApplication{}),
				"get loanapplications in "+namespace)
			expectForbidden(gateway.client.List(ctx, &loansv1alpha1.LoanApplicationList{}, client.InNamespace(namespace)),
				"list loanapplications in "+namespace)
			expectForbidden(gateway.client.List(ctx, &loansv1alpha1.LoanApplicationList{}), "list loanapplications in every namespace")
			_, err := gateway.client.Watch(ctx, &loansv1alpha1.LoanApplicationList{})
			expectForbidden(err, "watch loanapplications in every namespace")
		})

		It("is refused updating status, updating, patching and deleting LoanApplications, and reading Secrets", func(ctx context.Context) {
			Expect(env.Client.Create(ctx, served)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, served)).To(Succeed()) })
			var read loansv1alpha1.LoanApplication
			Expect(gateway.client.Get(ctx, client.ObjectKeyFromObject(served), &read)).To(Succeed())

			decided := read.DeepCopy()
			decided.Status.Phase = loansv1alpha1.Phase("Approved")
			expectForbidden(gateway.client.Status().Update(ctx, decided), "update loanapplications/status")
			expectForbidden(gateway.client.Status().Patch(ctx, decided, client.MergeFrom(&read)), "patch loanapplications/status")

			relabelled := read.DeepCopy()
			relabelled.Labels["team"] = "gateway"
			expectForbidden(gateway.client.Update(ctx, relabelled), "update loanapplications")
			expectForbidden(gateway.client.Patch(ctx, relabelled, client.MergeFrom(&read)), "patch loanapplications")
			expectForbidden(gateway.client.Delete(ctx, &read), "delete loanapplications")
			expectForbidden(gateway.client.DeleteAllOf(ctx, &loansv1alpha1.LoanApplication{}, client.InNamespace(gatewayNamespace)),
				"deletecollection loanapplications")

			expectNoSecrets(ctx, gateway, gatewayNamespace)
		})

		It("reviews the tokens and the rights of the callers of its secure metrics endpoint", func(ctx context.Context) {
			review, err := gateway.clientset.AuthenticationV1().TokenReviews().Create(ctx,
				&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(review.Status.Authenticated).To(BeFalse())
			access, err := gateway.clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx,
				&authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: "system:serviceaccount:" + namespace + ":prometheus", Groups: []string{"system:authenticated"},
					NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
				}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(access.Status.Allowed).To(BeFalse(), "nobody bound that ServiceAccount to metrics-reader")
		})

		It("holds create, get, list and watch on LoanApplications where it serves, and the metrics filter's reviews", func(ctx context.Context) {
			reviews := sets.New("authentication.k8s.io/tokenreviews:create", "authorization.k8s.io/subjectaccessreviews:create")
			Expect(grantedRules(ctx, gateway, gatewayNamespace)).To(Equal(reviews.Union(sets.New(
				"loans.lendo.se/loanapplications:create",
				"loans.lendo.se/loanapplications:get",
				"loans.lendo.se/loanapplications:list",
				"loans.lendo.se/loanapplications:watch",
			))))
			for _, ns := range []string{namespace, systemNamespace} {
				Expect(grantedRules(ctx, gateway, ns)).To(Equal(reviews), "in namespace %s", ns)
			}
		})
	})

	Describe("the controller's ServiceAccount", func() {
		var controller *identity
		BeforeEach(func() { controller = newIdentity(controllerUser, serviceAccountGroups...) })

		It("gets, lists, watches and patches LoanApplications and patches their status", func(ctx context.Context) {
			Expect(env.Client.Create(ctx, app)).To(Succeed())
			var read loansv1alpha1.LoanApplication
			Expect(controller.client.Get(ctx, client.ObjectKeyFromObject(app), &read)).To(Succeed())
			var list loansv1alpha1.LoanApplicationList
			Expect(controller.client.List(ctx, &list)).To(Succeed(), "the controller watches every namespace")
			watcher, err := controller.client.Watch(ctx, &loansv1alpha1.LoanApplicationList{})
			Expect(err).NotTo(HaveOccurred())
			watcher.Stop()

			submitted := read.DeepCopy()
			// Decided: the admission policy lets the label say approved only when the phase does.
			submitted.Status.Phase = loansv1alpha1.PhaseApproved
			submitted.Status.SubmittedAt = &metav1.Time{Time: metav1.Now().Rfc3339Copy().Time}
			Expect(controller.client.Status().Patch(ctx, submitted, client.MergeFrom(&read))).To(Succeed())

			labelled := submitted.DeepCopy()
			labelled.Labels[loansv1alpha1.LabelStatus] = loansv1alpha1.LabelApproved
			Expect(controller.client.Patch(ctx, labelled, client.MergeFrom(submitted))).To(Succeed())
		})

		// controller-runtime v0.25's recorder (mgr.GetEventRecorder) writes events.k8s.io/v1
		// Events, in the namespace of the object; leader election still writes core Events, in
		// loan-operator-system only.
		It("records Events about LoanApplications, and leader election Events in its namespace", func(ctx context.Context) {
			Expect(env.Client.Create(ctx, app)).To(Succeed())
			event := &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "ada-"},
				Regarding: corev1.ObjectReference{APIVersion: loansv1alpha1.GroupVersion.String(),
					Kind: "LoanApplication", Namespace: namespace, Name: app.Name, UID: app.UID},
				EventTime: metav1.NowMicro(), Type: corev1.EventTypeNormal, Reason: "Submitted", Action: "Submit",
				Note: "submitted to the bank", ReportingController: "loans.lendo.se/loan-controller",
				ReportingInstance: "loan-controller-0",
			}
			Expect(controller.client.Create(ctx, event)).To(Succeed())

			leader := &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, GenerateName: "leader-"},
				InvolvedObject: corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease",
					Namespace: systemNamespace, Name: "loan-operator-leader"},
				Reason: "LeaderElection", Message: "became leader", Type: corev1.EventTypeNormal,
			}
			Expect(controller.client.Create(ctx, leader)).To(Succeed())
		})

		It("holds a leader election Lease in loan-operator-system, and only there", func(ctx context.Context) {
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, GenerateName: "leader-"}}
			Expect(controller.client.Create(ctx, lease)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { Expect(env.Client.Delete(ctx, lease)).To(Succeed()) })
			Expect(controller.client.Get(ctx, client.ObjectKeyFromObject(lease), lease)).To(Succeed())
			holder := "controller-0"
			lease.Spec.HolderIdentity = &holder
			Expect(controller.client.Update(ctx, lease)).To(Succeed())

			elsewhere := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "leader-"}}
			expectForbidden(controller.client.Create(ctx, elsewhere), "create leases outside its namespace")
		})

		It("is refused creating and deleting LoanApplications and reading Secrets", func(ctx context.Context) {
			expectForbidden(controller.client.Create(ctx, app.DeepCopy()), "create loanapplications")
			Expect(env.Client.Create(ctx, app)).To(Succeed())
			expectForbidden(controller.client.Delete(ctx, app), "delete loanapplications")
			expectForbidden(controller.client.DeleteAllOf(ctx, &loansv1alpha1.LoanApplication{}, client.InNamespace(namespace)),
				"deletecollection loanapplications")
			expectNoSecrets(ctx, controller, namespace)
		})

		It("holds no more than its reconciler, its events, leader election and the metrics filter need", func(ctx context.Context) {
			// What the design needs (the markers may grant update besides patch).
			reconciler := sets.New(
				"loans.lendo.se/loanapplications:get", "loans.lendo.se/loanapplications:list",
				"loans.lendo.se/loanapplications:watch", "loans.lendo.se/loanapplications:patch",
				"loans.lendo.se/loanapplications/status:patch",
			)
			allowed := reconciler.Union(sets.New(
				"loans.lendo.se/loanapplications:update",
				"loans.lendo.se/loanapplications/status:get", "loans.lendo.se/loanapplications/status:update",
				"/events:create", "/events:patch", "events.k8s.io/events:create", "events.k8s.io/events:patch",
				"authentication.k8s.io/tokenreviews:create", "authorization.k8s.io/subjectaccessreviews:create",
			))
			leaderElection := sets.New("coordination.k8s.io/leases:get", "coordination.k8s.io/leases:create",
				"coordination.k8s.io/leases:update")

			granted := grantedRules(ctx, controller, namespace)
			Expect(granted.IsSuperset(reconciler)).To(BeTrue(), "missing: %v", sets.List(reconciler.Difference(granted)))
			Expect(allowed.IsSuperset(granted)).To(BeTrue(), "more than needed: %v", sets.List(granted.Difference(allowed)))

			granted = grantedRules(ctx, controller, systemNamespace)
			Expect(granted.IsSuperset(reconciler.Union(leaderElection))).To(BeTrue(),
				"missing in %s: %v", systemNamespace, sets.List(reconciler.Union(leaderElection).Difference(granted)))
			Expect(allowed.Union(leaderElection).IsSuperset(granted)).To(BeTrue(),
				"more than needed in %s: %v", systemNamespace, sets.List(granted.Difference(allowed.Union(leaderElection))))
		})
	})
})

// newNamespace creates a namespace for one test.
func newNamespace(ctx context.Context, prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	Expect(env.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// expectForbidden checks that the API server refused the request for lack of rights (403).
func expectForbidden(err error, what string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "%s was allowed", what)
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: want 403 Forbidden, got %v", what, err)
}

// expectNoSecrets checks that the identity can neither read nor list Secrets, in the given
// namespace, in the operator's, or across the cluster.
func expectNoSecrets(ctx context.Context, id *identity, namespace string) {
	GinkgoHelper()
	for _, ns := range []string{namespace, systemNamespace} {
		var secrets corev1.SecretList
		Expect(env.Client.List(ctx, &secrets, client.InNamespace(ns))).To(Succeed())
		Expect(secrets.Items).NotTo(BeEmpty())
		var secret corev1.Secret
		expectForbidden(id.client.Get(ctx, client.ObjectKeyFromObject(&secrets.Items[0]), &secret), "get secrets in "+ns)
		expectForbidden(id.client.List(ctx, &secrets, client.InNamespace(ns)), "list secrets in "+ns)
	}
	var all corev1.SecretList
	expectForbidden(id.client.List(ctx, &all), "list secrets in every namespace")
}

// grantedRules is what the identity may do in the namespace, as "group/resource:verb", less what
// every ServiceAccount of loan-operator-system may do anyway (the self reviews of
// system:basic-user and the like), which is asked of a ServiceAccount with no bindings.
func grantedRules(ctx context.Context, id *identity, namespace string) sets.Set[string] {
	GinkgoHelper()
	nobody := newIdentity("system:serviceaccount:"+systemNamespace+":nobody", serviceAccountGroups...)
	return rulesOf(ctx, id, namespace).Difference(rulesOf(ctx, nobody, namespace))
}

func rulesOf(ctx context.Context, id *identity, namespace string) sets.Set[string] {
	GinkgoHelper()
	review, err := id.clientset.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx,
		&authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: namespace}},
		metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(review.Status.Incomplete).To(BeFalse(), review.Status.EvaluationError)
	rules := sets.New[string]()
	for _, rule := range review.Status.ResourceRules {
		names := ""
		if len(rule.ResourceNames) > 0 {
			sorted := append([]string(nil), rule.ResourceNames...)
			sort.Strings(sorted)
			names = fmt.Sprintf("[%s]", strings.Join(sorted, ","))
		}
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				for _, verb := range rule.Verbs {
					rules.Insert(group + "/" + resource + names + ":" + verb)
				}
			}
		}
	}
	return rules
}
