package manifests_test

import (
	"context"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

var _ = Describe("The kustomize packages", func() {
	// The API server checks what kubectl kustomize renders against the real schemas (unknown
	// fields, wrong types, missing names), without storing anything. config/prometheus is not in
	// this table: the test API server has no ServiceMonitor CRD (it belongs to the Prometheus
	// Operator), and a stand-in CRD that accepts any fields would check nothing. Its wiring is
	// checked below against the Services it scrapes.
	DescribeTable("render, and the API server accepts them (kubectl apply --dry-run=server)",
		func(ctx context.Context, dir string) {
			r := render(ctx, dir)
			out, errOut, err := env.Kubectl(ctx, "apply", "--dry-run=server", "-f", r.file())
			Expect(err).NotTo(HaveOccurred(), "config/%s:\n%s\n%s", dir, out, errOut)
			Expect(strings.Count(out, "(server dry run)")).To(Equal(len(r.objects)), out)
		},
		Entry("config/default: everything, with the bank simulator", "default"),
		Entry("config/overlays/real-bank: everything, with a real bank", "overlays/real-bank"),
		Entry("config/dev: what the local run needs in the cluster", "dev"),
		Entry("config/crd", "crd"),
		Entry("config/rbac", "rbac"),
		Entry("config/rbac/gateway", "rbac/gateway"),
		Entry("config/manager", "manager"),
		Entry("config/gateway", "gateway"),
		Entry("config/bank-sim", "bank-sim"),
		Entry("config/policy", "policy"),
		Entry("config/network-policy", "network-policy"),
		Entry("config/flowcontrol", "flowcontrol"),
	)

	Describe("config/default", func() {
		var r *rendered
		BeforeEach(func(ctx context.Context) { r = render(ctx, "default") })

		It("puts everything in loan-operator-system, with the loan-operator- prefix", func() {
			Expect(r.get("Namespace", systemNamespace)).NotTo(BeNil())
			Expect(r.get("ServiceAccount", "loan-operator-controller-manager")).NotTo(BeNil())
			Expect(r.get("ServiceAccount", "loan-operator-gateway")).NotTo(BeNil())
			Expect(r.get("CustomResourceDefinition", "loanapplications.loans.lendo.se")).NotTo(BeNil())
			for _, obj := range r.objects {
				Expect(obj.GetName()).To(Or(HavePrefix("loan-operator-"), HaveSuffix(".loans.lendo.se")),
					"%s %s", obj.GetKind(), obj.GetName())
				switch {
				case clusterScoped[obj.GetKind()]:
					Expect(obj.GetNamespace()).To(BeEmpty(), "%s %s is cluster-scoped", obj.GetKind(), obj.GetName())
				case strings.HasPrefix(obj.GetName(), "loan-operator-gateway-role"):
					// The gateway's Role and RoleBinding are in the namespace it serves.
					Expect(obj.GetNamespace()).To(Equal(gatewayNamespace), "%s %s", obj.GetKind(), obj.GetName())
				default:
					Expect(obj.GetNamespace()).To(Equal(systemNamespace), "%s %s", obj.GetKind(), obj.GetName())
				}
			}
			Expect(r.kinds()).To(HaveKeyWithValue("Deployment", 3))
			Expect(r.kinds()).To(HaveKeyWithValue("Service", 4))
			Expect(r.kinds()).To(HaveKeyWithValue("NetworkPolicy", 4))
		})

		It("runs every pod as non-root, read-only, without capabilities, with resources and probes", func() {
			// A loop over no Deployment would check nothing: the three must be there.
			Expect(deploymentNames(r)).To(ConsistOf("loan-operator-controller-manager", "loan-operator-gateway", "loan-operator-bank-sim"))
			for _, obj := range r.ofKind("Deployment") {
				deployment := typed[appsv1.Deployment](obj)
				expectHardened(deployment)
			}
		})

		It("runs the controller with leader election, secure metrics and the simulator as its bank", func() {
			controller := typed[appsv1.Deployment](r.get("Deployment", "loan-operator-controller-manager"))
			pod := controller.Spec.Template.Spec
			Expect(pod.ServiceAccountName).To(Equal("loan-operator-controller-manager"))
			Expect(pod.Containers).To(HaveLen(1))
			manager := pod.Containers[0]
			Expect(manager.Args).To(ContainElements(
				"--leader-elect",
				"--metrics-bind-address=:8443",
				"--health-probe-bind-address=:8081",
				"--bank-url=$(BANK_URL)",
			))
			Expect(manager.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
			Expect(manager.LivenessProbe.HTTPGet.Port.IntValue()).To(Equal(8081))
			Expect(manager.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
			Expect(manager.ReadinessProbe.HTTPGet.Port.IntValue()).To(Equal(8081))

			// $(BANK_URL) expands to a Service of the simulator in the same namespace, on its port.
			Expect(envValue(manager, "BANK_URL")).To(Equal("http://loan-operator-bank-sim:8000"))
			bank := typed[corev1.Service](r.get("Service", "loan-operator-bank-sim"))
			Expect(bank.Spec.Ports).To(ContainElement(HaveField("Port", BeEquivalentTo(8000))))
			Expect(selectedDeployments(r, bank.Spec.Selector)).To(ConsistOf("loan-operator-bank-sim"))
			sim := typed[appsv1.Deployment](r.get("Deployment", "loan-operator-bank-sim"))
			Expect(sim.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--addr=0.0.0.0:8000"))

			// The metrics Service reaches the controller's HTTPS port.
			metrics := typed[corev1.Service](r.get("Service", "loan-operator-controller-manager-metrics-service"))
			Expect(selectedDeployments(r, metrics.Spec.Selector)).To(ConsistOf("loan-operator-controller-manager"))
			Expect(metrics.Spec.Ports).To(ConsistOf(And(
				HaveField("Name", "https"), HaveField("Port", BeEquivalentTo(8443)),
				HaveField("TargetPort.IntVal", BeEquivalentTo(8443)))))
		})

		It("runs the gateway as its own ServiceAccount behind a Service on 8080, its secure metrics behind one on 8443", func() {
			gateway := typed[appsv1.Deployment](r.get("Deployment", "loan-operator-gateway"))
			pod := gateway.Spec.Template.Spec
			Expect(pod.ServiceAccountName).To(Equal("loan-operator-gateway"))
			container := pod.Containers[0]
			Expect(container.Args).To(ContainElements("--addr=:8080", "--metrics-bind-address=:8443"))
			// --metrics-secure defaults to true: HTTPS behind authentication and authorization.
			Expect(container.Args).NotTo(ContainElement(HavePrefix("--metrics-secure")))
			Expect(container.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
			Expect(container.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
			Expect(containerPort(container, container.ReadinessProbe.HTTPGet.Port.String())).To(BeEquivalentTo(8080))

			service := typed[corev1.Service](r.get("Service", "loan-operator-gateway"))
			Expect(selectedDeployments(r, service.Spec.Selector)).To(ConsistOf("loan-operator-gateway"))
			Expect(service.Spec.Ports).To(HaveLen(1))
			Expect(service.Spec.Ports[0].Port).To(BeEquivalentTo(8080))
			Expect(containerPort(container, service.Spec.Ports[0].TargetPort.String())).To(BeEquivalentTo(8080))

			// The metrics have a Service of their own, so that exposing the API never exposes them.
			metrics := typed[corev1.Service](r.get("Service", "loan-operator-gateway-metrics-service"))
			Expect(selectedDeployments(r, metrics.Spec.Selector)).To(ConsistOf("loan-operator-gateway"))
			Expect(metrics.Spec.Ports).To(HaveLen(1))
			Expect(metrics.Spec.Ports[0].Name).To(Equal("https"))
			Expect(metrics.Spec.Ports[0].Port).To(BeEquivalentTo(8443))
			Expect(containerPort(container, metrics.Spec.Ports[0].TargetPort.String())).To(BeEquivalentTo(8443))
		})

		It("lets only labelled namespaces reach the metrics, anyone the gateway's API, the controller the simulator", func() {
			policies := map[string]*networkingv1.NetworkPolicy{}
			for _, obj := range r.ofKind("NetworkPolicy") {
				np := typed[networkingv1.NetworkPolicy](obj)
				policies[np.Name] = np
			}

			metrics := policies["loan-operator-allow-metrics-traffic"]
			Expect(metrics).NotTo(BeNil())
			Expect(selectedDeployments(r, metrics.Spec.PodSelector.MatchLabels)).To(ConsistOf("loan-operator-controller-manager"))
			Expect(metrics.Spec.Ingress).To(HaveLen(1))
			Expect(metrics.Spec.Ingress[0].From).To(ConsistOf(HaveField("NamespaceSelector.MatchLabels",
				Equal(map[string]string{"metrics": "enabled"}))))
			Expect(metrics.Spec.Ingress[0].Ports).To(ConsistOf(HaveField("Port.IntVal", BeEquivalentTo(8443))))

			gatewayMetrics := policies["loan-operator-allow-gateway-metrics-traffic"]
			Expect(gatewayMetrics).NotTo(BeNil())
			Expect(selectedDeployments(r, gatewayMetrics.Spec.PodSelector.MatchLabels)).To(ConsistOf("loan-operator-gateway"))
			Expect(gatewayMetrics.Spec.Ingress).To(HaveLen(1))
			Expect(gatewayMetrics.Spec.Ingress[0].From).To(ConsistOf(HaveField("NamespaceSelector.MatchLabels",
				Equal(map[string]string{"metrics": "enabled"}))))
			Expect(gatewayMetrics.Spec.Ingress[0].Ports).To(ConsistOf(HaveField("Port.IntVal", BeEquivalentTo(8443))))

			gateway := policies["loan-operator-allow-gateway-traffic"]
			Expect(gateway).NotTo(BeNil())
			Expect(selectedDeployments(r, gateway.Spec.PodSelector.MatchLabels)).To(ConsistOf("loan-operator-gateway"))
			Expect(gateway.Spec.Ingress).To(HaveLen(1))
			Expect(gateway.Spec.Ingress[0].From).To(BeEmpty(), "open to every source")
			Expect(gateway.Spec.Ingress[0].Ports).To(ConsistOf(HaveField("Port.IntVal", BeEquivalentTo(8080))))

			bank := policies["loan-operator-allow-bank-sim-traffic"]
			Expect(bank).NotTo(BeNil())
			Expect(selectedDeployments(r, bank.Spec.PodSelector.MatchLabels)).To(ConsistOf("loan-operator-bank-sim"))
			Expect(bank.Spec.Ingress).To(HaveLen(1))
			Expect(bank.Spec.Ingress[0].From).To(HaveLen(1))
			Expect(bank.Spec.Ingress[0].From[0].NamespaceSelector).To(BeNil(), "pods of this namespace only")
			Expect(selectedDeployments(r, bank.Spec.Ingress[0].From[0].PodSelector.MatchLabels)).
				To(ConsistOf("loan-operator-controller-manager"))
		})

		It("ships the admission policy bound to itself, cluster-scoped", func() {
			policy := r.get("ValidatingAdmissionPolicy", "loan-operator-loanapplication-status-label")
			binding := r.get("ValidatingAdmissionPolicyBinding", "loan-operator-loanapplication-status-label")
			policyName, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName")
			Expect(policyName).To(Equal(policy.GetName()))
			actions, _, _ := unstructured.NestedStringSlice(binding.Object, "spec", "validationActions")
			Expect(actions).To(ConsistOf("Deny"))
			// The controller's identity is the policy's parameter, named as rendered.
			params := r.get("ConfigMap", "loan-operator-status-label-policy-params")
			data, _, _ := unstructured.NestedStringMap(params.Object, "data")
			Expect("system:serviceaccount:" + data["controllerNamespace"] + ":" + data["controllerServiceAccount"]).To(Equal(controllerUser))
			ref, _, _ := unstructured.NestedStringMap(binding.Object, "spec", "paramRef")
			Expect(ref).To(HaveKeyWithValue("name", params.GetName()))
			Expect(ref).To(HaveKeyWithValue("namespace", params.GetNamespace()))
		})
	})

	It("config/overlays/real-bank is config/default without the simulator, calling the real bank", func(ctx context.Context) {
		def := render(ctx, "default")
		realBank := render(ctx, "overlays/real-bank")

		var simulator []string
		for _, obj := range def.objects {
			if obj.GetLabels()["app.kubernetes.io/component"] == "bank-sim" {
				simulator = append(simulator, obj.GetKind()+"/"+obj.GetName())
			}
		}
		Expect(simulator).To(ConsistOf("Deployment/loan-operator-bank-sim", "Service/loan-operator-bank-sim",
			"NetworkPolicy/loan-operator-allow-bank-sim-traffic"))
		Expect(realBank.objects).To(HaveLen(len(def.objects) - len(simulator)))
		Expect(realBank.yaml).NotTo(ContainSubstring("loan-operator-bank-sim"))

		controller := typed[appsv1.Deployment](realBank.get("Deployment", "loan-operator-controller-manager"))
		manager := controller.Spec.Template.Spec.Containers[0]
		Expect(manager.Args).To(ContainElement("--bank-url=$(BANK_URL)"))
		Expect(envValue(manager, "BANK_URL")).To(HavePrefix("https://"))
		expectHardened(controller)
	})

	It("config/dev renders the CRD, the namespace, identities, roles, policy and flow control, and no workload", func(ctx context.Context) {
		r := render(ctx, "dev")
		Expect(r.kinds()).To(Equal(map[string]int{
			"CustomResourceDefinition":         1,
			"Namespace":                        1,
			"ServiceAccount":                   2,
			"ClusterRole":                      6, // manager, metrics auth and reader, admin, editor, viewer
			"ClusterRoleBinding":               3, // manager, metrics auth of each
			"Role":                             2, // leader election, gateway (in the namespace it serves)
			"RoleBinding":                      2,
			"ConfigMap":                        1, // the admission policy's parameters
			"ValidatingAdmissionPolicy":        1,
			"ValidatingAdmissionPolicyBinding": 1,
			"FlowSchema":                       2, // controller, gateway
			"PriorityLevelConfiguration":       2,
		}))
		Expect(r.get("Namespace", systemNamespace)).NotTo(BeNil())
		Expect(r.get("ServiceAccount", "loan-operator-controller-manager").GetNamespace()).To(Equal(systemNamespace))
		Expect(r.get("ServiceAccount", "loan-operator-gateway").GetNamespace()).To(Equal(systemNamespace))
		Expect(r.get("Role", "loan-operator-leader-election-role").GetNamespace()).To(Equal(systemNamespace))
		Expect(r.get("RoleBinding", "loan-operator-leader-election-rolebinding").GetNamespace()).To(Equal(systemNamespace))
		Expect(r.get("RoleBinding", "loan-operator-gateway-rolebinding").GetNamespace()).To(Equal("default"))
		metricsAuth := r.get("ClusterRoleBinding", "loan-operator-gateway-metrics-auth-rolebinding")
		role, _, _ := unstructured.NestedString(metricsAuth.Object, "roleRef", "name")
		Expect(r.get("ClusterRole", role).GetName()).To(Equal("loan-operator-metrics-auth-role"))
	})

	It("config/prometheus scrapes the controller's and the gateway's metrics Services over HTTPS with a token", func(ctx context.Context) {
		monitors := render(ctx, "prometheus")
		def := render(ctx, "default")
		Expect(monitors.kinds()).To(Equal(map[string]int{"ServiceMonitor": 2}))
		scraped := map[string]map[string]any{}
		for _, monitor := range monitors.objects {
			Expect(monitor.GetAPIVersion()).To(Equal("monitoring.coreos.com/v1"))
			selector, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
			Expect(selector).NotTo(BeEmpty())
			// The labels are not renamed by config/default, so the selector must find exactly
			// one Service there, and the endpoint must name one of its ports.
			var services []*corev1.Service
			for _, obj := range def.ofKind("Service") {
				service := typed[corev1.Service](obj)
				if labels.SelectorFromSet(selector).Matches(labels.Set(service.Labels)) {
					services = append(services, service)
				}
			}
			Expect(services).To(HaveLen(1), "ServiceMonitor %s", monitor.GetName())
			endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
			Expect(endpoints).To(HaveLen(1))
			endpoint := endpoints[0].(map[string]any)
			Expect(services[0].Spec.Ports).To(ContainElement(HaveField("Name", endpoint["port"])))
			scraped[services[0].Name] = endpoint
		}
		Expect(scraped).To(HaveLen(2))
		for _, service := range []string{"loan-operator-controller-manager-metrics-service", "loan-operator-gateway-metrics-service"} {
			Expect(scraped).To(HaveKey(service))
			endpoint := scraped[service]
			Expect(endpoint).To(HaveKeyWithValue("path", "/metrics"), service)
			Expect(endpoint).To(HaveKeyWithValue("port", "https"), service)
			Expect(endpoint).To(HaveKeyWithValue("scheme", "https"), service)
			Expect(endpoint).To(HaveKeyWithValue("bearerTokenFile", "/var/run/secrets/kubernetes.io/serviceaccount/token"), service)
		}
	})
})

// clusterScoped lists the kinds without a namespace among those config/ renders.
var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"FlowSchema": true, "PriorityLevelConfiguration": true,
}

// expectHardened checks what issue #7 asks of every pod.
func expectHardened(deployment *appsv1.Deployment) {
	GinkgoHelper()
	pod := deployment.Spec.Template.Spec
	name := deployment.Name
	Expect(pod.SecurityContext).NotTo(BeNil(), name)
	Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()), name)
	Expect(pod.SecurityContext.SeccompProfile).To(HaveValue(HaveField("Type", corev1.SeccompProfileTypeRuntimeDefault)), name)
	Expect(pod.Containers).NotTo(BeEmpty(), name)
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		where := name + "/" + c.Name
		Expect(c.SecurityContext).NotTo(BeNil(), where)
		Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()), where)
		Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()), where)
		Expect(c.SecurityContext.Capabilities).NotTo(BeNil(), where)
		Expect(c.SecurityContext.Capabilities.Drop).To(ContainElement(corev1.Capability("ALL")), where)
		Expect(c.SecurityContext.Capabilities.Add).To(BeEmpty(), where)
		Expect(c.SecurityContext.Privileged).To(Or(BeNil(), HaveValue(BeFalse())), where)
		if c.SecurityContext.RunAsUser != nil {
			Expect(*c.SecurityContext.RunAsUser).NotTo(BeZero(), where)
		}
		for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			Expect(c.Resources.Requests).To(HaveKey(resource), where)
			Expect(c.Resources.Limits).To(HaveKey(resource), where)
			request, limit := c.Resources.Requests[resource], c.Resources.Limits[resource]
			Expect(request.Cmp(limit)).To(BeNumerically("<=", 0), "%s: %s request above its limit", where, resource)
		}
		for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			Expect(probe).NotTo(BeNil(), where)
			Expect(probe.HTTPGet).NotTo(BeNil(), where)
			Expect(containerPort(c, probe.HTTPGet.Port.String())).NotTo(BeZero(), "%s: probe port %s", where, probe.HTTPGet.Port.String())
		}
	}
}

// containerPort resolves a port given by name or number to the number the container exposes,
// or 0 when the container declares no such port.
func containerPort(c corev1.Container, port string) int32 {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort
		}
	}
	return 0
}

// envValue is the literal value of a container's environment variable.
func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// deploymentNames names the rendered Deployments.
func deploymentNames(r *rendered) []string {
	deployments := r.ofKind("Deployment")
	names := make([]string, 0, len(deployments))
	for _, obj := range deployments {
		names = append(names, obj.GetName())
	}
	return names
}

// selectedDeployments names the rendered Deployments whose pods the label selector matches.
func selectedDeployments(r *rendered, selector map[string]string) []string {
	GinkgoHelper()
	Expect(selector).NotTo(BeEmpty(), "an empty selector selects every pod")
	var names []string
	for _, obj := range r.ofKind("Deployment") {
		deployment := typed[appsv1.Deployment](obj)
		if labels.SelectorFromSet(selector).Matches(labels.Set(deployment.Spec.Template.Labels)) {
			names = append(names, deployment.Name)
		}
	}
	return names
}
