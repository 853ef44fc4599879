package manifests_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// rendered is the output of `kubectl kustomize` for one package under config/.
type rendered struct {
	dir     string
	yaml    string
	objects []*unstructured.Unstructured
}

// render builds config/<dir> with kubectl's kustomize, as the Makefile does.
func render(ctx context.Context, dir string) *rendered {
	GinkgoHelper()
	out, errOut, err := env.Kubectl(ctx, "kustomize", filepath.Join(configDir, dir))
	Expect(err).NotTo(HaveOccurred(), "kubectl kustomize config/%s: %s", dir, errOut)
	r := &rendered{dir: dir, yaml: out}
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred(), "decoding config/%s", dir)
		if len(obj.Object) > 0 {
			r.objects = append(r.objects, obj)
		}
	}
	Expect(r.objects).NotTo(BeEmpty(), "config/%s renders nothing", dir)
	return r
}

// file writes the rendered YAML to a temporary file for kubectl apply -f.
func (r *rendered) file() string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), strings.ReplaceAll(r.dir, "/", "_")+".yaml")
	Expect(os.WriteFile(path, []byte(r.yaml), 0o600)).To(Succeed())
	return path
}

// ofKind returns the rendered objects of one kind.
func (r *rendered) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range r.objects {
		if obj.GetKind() == kind {
			out = append(out, obj)
		}
	}
	return out
}

// kinds counts the rendered objects by kind.
func (r *rendered) kinds() map[string]int {
	out := map[string]int{}
	for _, obj := range r.objects {
		out[obj.GetKind()]++
	}
	return out
}

// get returns the rendered object of that kind and name, and fails when there is none.
func (r *rendered) get(kind, name string) *unstructured.Unstructured {
	GinkgoHelper()
	for _, obj := range r.ofKind(kind) {
		if obj.GetName() == name {
			return obj
		}
	}
	Fail(fmt.Sprintf("config/%s renders no %s %q", r.dir, kind, name))
	return nil
}

// typed converts a rendered object into its Go type (a Deployment, a Service...).
func typed[T any](obj *unstructured.Unstructured) *T {
	GinkgoHelper()
	out := new(T)
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, out, true)).
		To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())
	return out
}

// applyRendered renders config/<dir> and applies it for real, as an administrator.
func applyRendered(ctx context.Context, dir string) *rendered {
	GinkgoHelper()
	r := render(ctx, dir)
	out, errOut, err := env.Kubectl(ctx, "apply", "-f", r.file())
	Expect(err).NotTo(HaveOccurred(), "kubectl apply config/%s:\n%s\n%s", dir, out, errOut)
	return r
}

// identity is a user of the test API server, authenticated by a client certificate.
type identity struct {
	name      string
	config    *rest.Config
	client    client.WithWatch
	clientset *kubernetes.Clientset
}

// serviceAccountGroups are the groups the API server gives a token of a ServiceAccount in
// loan-operator-system; the local run presents the same in its client certificates.
var serviceAccountGroups = []string{
	"system:serviceaccounts", "system:serviceaccounts:" + systemNamespace, "system:authenticated",
}

// newIdentity adds a user with those groups to the test API server.
func newIdentity(name string, groups ...string) *identity {
	GinkgoHelper()
	user, err := env.Environment.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	Expect(err).NotTo(HaveOccurred())
	cfg := user.Config()
	cfg.QPS, cfg.Burst = -1, -1
	id := &identity{name: name, config: cfg}
	id.client, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	id.clientset, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	return id
}
