package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/devenv"
)

const scenarioFloor = "raw write floor"

// floorResult is the raw write floor of a run: what the API server's writes of an application
// cost with nothing else (no controller logic, no bank, no watchers but the API server's own).
type floorResult struct {
	apiServer busyCPU
	all       cpuAccount
	objects   int
	note      string
}

// programClient is a client of the API server with the identity of one of the programs (its
// kubeconfig written by devenv: a client certificate of its ServiceAccount), without client-side
// rate limit. The benchmark's direct writes use these, never the administrator's: an
// administrator is in system:masters, which API Priority and Fairness exempts, so its requests
// skip the queueing and the cost the programs' own requests pay.
func programClient(kubeconfigPath string, s *system) (client.Client, *rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	if err != nil {
		return nil, nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: s.scheme()})
	return c, cfg, err
}

// grantGatewayIdentity gives the gateway's ServiceAccount, in namespace, the rights the gateway
// holds in its own (config/rbac/gateway/role.yaml: create, get, list and watch LoanApplications),
// so that the benchmark's direct creates there are made as the gateway makes its own.
func (b *bench) grantGatewayIdentity(ctx context.Context, namespace string) error {
	const name = "bench-gateway-identity"
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{loansv1alpha1.GroupVersion.Group}, Resources: []string{loanApplications},
			Verbs: []string{createKind, "get", "list", "watch"}}},
	}
	account, _ := serviceAccountOf(devenv.GatewayUser)
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: account.Namespace, Name: account.Name}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := b.sys.api.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("granting the gateway's identity rights in %s: %w", namespace, err)
		}
	}
	return nil
}

// serviceAccountOf splits "system:serviceaccount:<namespace>:<name>".
func serviceAccountOf(user string) (types.NamespacedName, bool) {
	qualified, ok := strings.CutPrefix(user, "system:serviceaccount:")
	ns, name, found := strings.Cut(qualified, ":")
	if !ok || !found {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// flowLevel names the FlowSchema and the priority level the API server's flow control put one
// request of cfg's identity (a list in the direct namespace) in, from the headers it answers with, and says whether that level is
// exempt (served without queueing).
func (b *bench) flowLevel(ctx context.Context, cfg *rest.Config) (schema, level string, exempt bool, err error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return "", "", false, err
	}
	url := cfg.Host + "/apis/" + loansv1alpha1.GroupVersion.String() + "/namespaces/" + directNamespace + "/loanapplications?limit=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", "", false, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", "", false, err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	schemaUID := resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID)
	levelUID := resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)
	var schemas flowcontrolv1.FlowSchemaList
	var levels flowcontrolv1.PriorityLevelConfigurationList
	if err := b.sys.api.List(ctx, &schemas); err != nil {
		return "", "", false, err
	}
	if err := b.sys.api.List(ctx, &levels); err != nil {
		return "", "", false, err
	}
	schema, level = "uid "+schemaUID, "uid "+levelUID
	for _, s := range schemas.Items {
		if string(s.UID) == schemaUID {
			schema = s.Name
		}
	}
	for _, l := range levels.Items {
		if string(l.UID) == levelUID {
			level, exempt = l.Name, l.Spec.Type == flowcontrolv1.PriorityLevelEnablementExempt
		}
	}
	if schemaUID == "" || levelUID == "" {
		return "", "", false, fmt.Errorf("the API server named no flow schema or priority level (headers %s, %s)",
			flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID, flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)
	}
	return schema, level, exempt, nil
}

// rawWriteFloor measures the raw write floor: for each object, the writes the pipeline makes
// of an application, by plain client-go clients with the programs' identities and nothing else
// running against them: a create as the gateway, then, as the controller, a status PATCH to a
// final status and a PATCH of the status label (both merge patches with the resourceVersion as
// the controller sends them). It runs with the controller stopped (after scenario 2), in the
// direct namespace, which scenario 2's clean-up empties; the figures are reported with
// scenario 1's, once the API server's idle CPU is known.
func (b *bench) rawWriteFloor(ctx context.Context) error {
	// Done by scenario 2 already, unless the floor runs alone (--only).
	if err := b.prepareDirectSide(ctx); err != nil {
		return err
	}
	n := b.scale.floorObjects
	before, started := b.sys.takeCPU(), time.Now()
	load := runLoad(ctx, n, b.scale.concurrency, createBatchBound, func(ctx context.Context, i int) error {
		return b.sys.writeAsThePipeline(ctx, directNamespace, "floor-"+strconv.Itoa(i), i)
	})
	cpu := b.sys.takeCPU().since(before)
	window := time.Since(started)
	if load.FirstErr != nil {
		return fmt.Errorf("%d of %d objects failed: %w", load.Failed, n, load.FirstErr)
	}
	b.floor = &floorResult{apiServer: busyCPU{seconds: cpu[apiServerProcess], window: window}, all: cpu, objects: load.Done,
		note: fmt.Sprintf("%d objects at concurrency %d, controller stopped; per object a create (gateway's identity), a status PATCH "+
			"and a label PATCH (controller's identity), by a plain client-go client; %.0f objects/s", load.Done, b.scale.concurrency, load.Rate())}
	return nil
}

// writeAsThePipeline creates one application as the gateway does and writes its final status
// and label as the controller does.
func (s *system) writeAsThePipeline(ctx context.Context, namespace, name string, i int) error {
	app := newApplication(namespace, name, i)
	if err := s.asGateway.Create(ctx, app); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	original := app.DeepCopy()
	app.Status = finalStatus(app.UID, time.Now())
	lock := client.MergeFromWithOptimisticLock{}
	if err := s.asController.Status().Patch(ctx, app, client.MergeFromWithOptions(original, lock)); err != nil {
		return fmt.Errorf("status patch: %w", err)
	}
	before := app.DeepCopy()
	app.Labels[loansv1alpha1.LabelStatus] = app.Status.Phase.LabelValue()
	if err := s.asController.Patch(ctx, app, client.MergeFromWithOptions(before, lock)); err != nil {
		return fmt.Errorf("label patch: %w", err)
	}
	return nil
}

// newApplication is an application as the gateway writes it (labelled pending).
func newApplication(namespace, name string, i int) *loansv1alpha1.LoanApplication {
	return &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending},
		},
		Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace " + strconv.Itoa(i)},
	}
}

// finalStatus is an approved application's status, with the fields and conditions the
// controller writes at a decision.
func finalStatus(uid types.UID, now time.Time) loansv1alpha1.LoanApplicationStatus {
	at := &metav1.Time{Time: now}
	const message = "the bank approved the loan"
	return loansv1alpha1.LoanApplicationStatus{
		Phase: loansv1alpha1.PhaseApproved, BankApplicationID: string(uid), BankJobID: "job-" + string(uid),
		SubmittedAt: at, DecidedAt: at, ObservedGeneration: 1, Message: message,
		Conditions: []metav1.Condition{
			{Type: loansv1alpha1.ConditionSubmitted, Status: metav1.ConditionTrue, Reason: loansv1alpha1.ReasonSubmitted,
				Message: "the bank accepted the application", LastTransitionTime: *at, ObservedGeneration: 1},
			{Type: loansv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: loansv1alpha1.ReasonApproved,
				Message: message, LastTransitionTime: *at, ObservedGeneration: 1},
		},
	}
}

// reportFloor adds the raw write floor beside a scenario's CPU per application.
func (b *bench) reportFloor(sc string, idle idleCPU) {
	if b.floor == nil {
		b.rep.addReading(sc, "raw write floor: kube-apiserver CPU per object", notMeasured("the floor step did not run"), "ms", "")
		return
	}
	f := b.floor
	b.rep.addReading(sc, "raw write floor: kube-apiserver CPU per object", apiServerCPUPer(f.apiServer, idle, f.objects), "ms",
		f.note+"; less idle CPU as above")
	b.rep.addReading(sc, "raw write floor: CPU per object, every process", perItem(1000*f.all.total(), f.objects), "ms",
		"not less idle; the benchmark's client included")
}
