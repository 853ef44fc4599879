// Package testenv starts the control plane that the test suites run against: a real
// kube-apiserver and etcd through controller-runtime's envtest, with the LoanApplication CRD
// installed from config/crd/bases, and a kubeconfig file so that the real kubectl can be pointed
// at it. The binaries come from KUBEBUILDER_ASSETS, which `make test` provides (see
// hack/envtest-assets.sh).
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The suites' defaults for Gomega's Eventually, set in each suite's Test function
// (SetDefaultEventuallyTimeout, SetDefaultEventuallyPollingInterval). Gomega's own 1 s fits
// an idle machine; on a loaded 2-core one, a cache sync or a watch event can take longer, and
// a spec that waits past 1 s fails by accident. A wait that is part of what a spec tests sets
// its own timeout.
const (
	EventuallyTimeout = 20 * time.Second
	EventuallyPolling = 50 * time.Millisecond
)

// Env is a running test control plane.
type Env struct {
	// Environment is envtest's handle, for AddUser and the like.
	Environment *envtest.Environment
	// Config reaches the API server as an administrator, without a client-side rate limit.
	Config *rest.Config
	// Client is a controller-runtime client over Config that knows the LoanApplication types.
	Client client.Client
	// KubeconfigPath is a kubeconfig file for Config, for kubectl and for child processes.
	KubeconfigPath string
	dir            string
}

// RepoRoot is the repository's top folder, found from this source file so that tests work from
// any package directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start starts etcd and kube-apiserver and installs the CRDs. Call Stop when done.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, " +
			"or export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
	}
	if err := loansv1alpha1.AddToScheme(scheme.Scheme); err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the test control plane: %w", err)
	}
	// envtest's config carries a client-side limit (QPS 1000); tests and benchmarks measure the
	// system, not the limiter. A negative QPS turns client-go's limiter off.
	cfg.QPS, cfg.Burst = -1, -1
	env := &Env{Environment: te, Config: cfg}
	if env.Client, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		_ = te.Stop()
		return nil, err
	}
	if err := env.writeKubeconfig(); err != nil {
		_ = te.Stop()
		return nil, err
	}
	return env, nil
}

func (e *Env) writeKubeconfig() error {
	dir, err := os.MkdirTemp("", "loan-testenv-")
	if err != nil {
		return err
	}
	e.dir = dir
	user, err := e.Environment.ControlPlane.AddUser(envtest.User{Name: "test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the kubeconfig user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	e.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	return os.WriteFile(e.KubeconfigPath, kubeconfig, 0o600)
}

// Stop stops the control plane and removes the kubeconfig.
func (e *Env) Stop() error {
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
	return e.Environment.Stop()
}

// KubectlPath is the kubectl to run: $KUBECTL, else one built next to the control plane (where
// the machine has none), else the one on PATH.
func KubectlPath() string {
	if p := os.Getenv("KUBECTL"); p != "" {
		return p
	}
	if assets := os.Getenv("KUBEBUILDER_ASSETS"); assets != "" {
		if p := filepath.Join(assets, "kubectl"); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	return "kubectl"
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// Kubectl runs the real kubectl against the test API server and returns its standard output
// and standard error.
func (e *Env) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return e.KubectlWithInput(ctx, "", args...)
}

// KubectlWithInput runs kubectl like Kubectl, with input as its standard input (for
// `kubectl apply -f -`).
func (e *Env) KubectlWithInput(ctx context.Context, input string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, KubectlPath(), append([]string{"--kubeconfig", e.KubeconfigPath}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
