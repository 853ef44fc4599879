// Package devenv runs the whole system on one machine, without a cluster: etcd and
// kube-apiserver (the binaries envtest uses), config/dev applied to them, the bank simulator, the
// controller and the gateway, each a child process of a built binary, on loopback. `make dev`,
// the end-to-end tests and the benchmarks start it through Start; the returned Stack lets them
// stop, kill and restart each process.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// Stack is a running local system.
type Stack struct {
	// KubeconfigPath is the administrator's kubeconfig (DevDir/kubeconfig), for people and kubectl.
	KubeconfigPath string
	// ControllerKubeconfig and GatewayKubeconfig are the programs' own, as their ServiceAccounts.
	ControllerKubeconfig, GatewayKubeconfig string
	// Config and Client reach the API server as the administrator, without client-side rate limit.
	Config *rest.Config
	Client client.Client
	// APIServerURL, GatewayURL and BankURL are the base URLs of the three servers.
	APIServerURL, GatewayURL, BankURL string
	// ControllerProbeURLs and ControllerMetricsURLs are each controller replica's health-probe
	// and metrics (plain HTTP) base URLs.
	ControllerProbeURLs, ControllerMetricsURLs []string

	// The processes. Gateway is nil with SkipGateway, Bank with BankURL; Controllers is empty with
	// SkipController.
	Etcd, APIServer, Bank, Gateway *Process
	Controllers                    []*Process

	opts       Options
	exits      chan *ExitError
	supervisor *supervisor
}

// Start starts etcd, kube-apiserver, applies config/dev, then the bank simulator, the controller
// replicas and the gateway, each only once the one before is ready. On failure it stops what it
// started. Call Stop when done.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Stack{opts: o, exits: make(chan *ExitError, 16)}
	s.supervisor = newSupervisor(s.logf, s.giveUp)
	if err := s.prepare(); err != nil {
		return nil, err
	}
	if err := s.startAll(ctx); err != nil {
		if stopErr := s.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return s, nil
}

// Exits reports every process that exits without Stop or Kill having been called on it; with
// Options.Restart, only one that died too often and is not restarted any more.
func (s *Stack) Exits() <-chan *ExitError { return s.exits }

// Processes are all the processes in their start order.
func (s *Stack) Processes() []*Process {
	out := []*Process{s.Etcd, s.APIServer}
	if s.Bank != nil {
		out = append(out, s.Bank)
	}
	out = append(out, s.Controllers...)
	if s.Gateway != nil {
		out = append(out, s.Gateway)
	}
	return out
}

// DevDir is the folder with the data, the kubeconfigs and the logs.
func (s *Stack) DevDir() string { return s.opts.DevDir }

// Stop stops every process, the last started first, each with SIGTERM and then SIGKILL after
// the stop timeout.
func (s *Stack) Stop() error {
	// No restart from here on: a program stopped now must stay stopped.
	s.supervisor.stop()
	procs := s.Processes()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i] == nil || !procs[i].Running() {
			continue
		}
		s.logf("stopping %s", procs[i].Name())
		errs = append(errs, procs[i].Stop())
	}
	return errors.Join(errs...)
}

// Kubectl runs kubectl as the administrator with input on its standard input and returns its
// standard output and standard error.
func (s *Stack) Kubectl(ctx context.Context, input string, args ...string) (stdout, stderr string, err error) {
	return kubectl(ctx, s.opts.Kubectl, s.KubeconfigPath, input, args...)
}

// KubectlWith runs kubectl like Kubectl, with another kubeconfig (ControllerKubeconfig or
// GatewayKubeconfig, to act as that program does).
func (s *Stack) KubectlWith(ctx context.Context, kubeconfig, input string, args ...string) (stdout, stderr string, err error) {
	return kubectl(ctx, s.opts.Kubectl, kubeconfig, input, args...)
}

func (s *Stack) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(s.opts.Log, format+"\n", args...)
}

// report passes an unexpected exit on to the supervisor (Options.Restart) or to Exits.
func (s *Stack) report(p *Process, e *ExitError) {
	if s.opts.Restart {
		s.supervisor.exited(p, e)
		return
	}
	s.logf("%s exited unexpectedly (%v): see %s", e.Name, e.Err, e.LogPath)
	s.giveUp(e)
}

// giveUp reports an exit on Exits without ever blocking the process's waiter.
func (s *Stack) giveUp(e *ExitError) {
	select {
	case s.exits <- e:
	default:
	}
}

func (s *Stack) startAll(ctx context.Context) error {
	started := time.Now()
	for _, p := range []*Process{s.Etcd, s.APIServer} {
		if err := s.startProcess(ctx, p); err != nil {
			return err
		}
	}
	s.logf("applying config/dev (CRD, namespace, ServiceAccounts, roles, admission policy, flow control)")
	if err := applyDevConfig(ctx, s.opts, s.KubeconfigPath, s.Client); err != nil {
		return err
	}
	// The bank simulator (unless Options.BankURL names another bank), the controllers, the gateway.
	for _, p := range s.Processes()[2:] {
		if err := s.startProcess(ctx, p); err != nil {
			return err
		}
	}
	s.logf("all ready in %s", time.Since(started).Round(100*time.Millisecond))
	return nil
}

func (s *Stack) startProcess(ctx context.Context, p *Process) error {
	s.logf("starting %s (log: %s)", p.Name(), p.LogPath())
	return p.Start(ctx)
}

// prepare makes the folders, certificates and kubeconfigs and defines the processes.
func (s *Stack) prepare() error {
	o := s.opts
	etcdDir := filepath.Join(o.DevDir, "etcd")
	if o.Reset {
		s.logf("DEV_RESET: deleting %s", etcdDir)
		if err := os.RemoveAll(etcdDir); err != nil {
			return err
		}
	}
	for _, dir := range []string{"logs", "pki", "kubeconfigs"} {
		if err := os.MkdirAll(filepath.Join(o.DevDir, dir), 0o700); err != nil {
			return err
		}
	}
	p, err := choosePorts(filepath.Join(o.DevDir, "ports.json"), o.EtcdPort, o.APIServerPort)
	if err != nil {
		return err
	}
	if err := s.prepareControlPlane(etcdDir, p); err != nil {
		return err
	}
	return s.preparePrograms()
}

func (s *Stack) prepareControlPlane(etcdDir string, p ports) error {
	o := s.opts
	certs, err := loadOrCreatePKI(filepath.Join(o.DevDir, "pki"))
	if err != nil {
		return err
	}
	files := apiServerFiles{certDir: certs.dir, clientCA: certs.path(caCertFile)}
	if files.servingCert, files.servingKey, err = certs.ensureServingCert(); err != nil {
		return err
	}
	if files.saKey, files.saPub, err = certs.ensureServiceAccountKey(); err != nil {
		return err
	}
	s.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(p.APIServer)
	if err := s.writeKubeconfigs(certs); err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		return err
	}
	s.Etcd = s.newProcess("etcd", filepath.Join(o.AssetsDir, etcdBinary), etcdArgs(etcdDir, p, o.UnsafeNoFsync),
		httpReady(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(p.EtcdClient)+"/health"))
	s.APIServer = s.newProcess("kube-apiserver", filepath.Join(o.AssetsDir, apiServerBinary), apiServerArgs(files, p),
		httpReady(httpClient, s.APIServerURL+"/readyz"))
	return nil
}

func (s *Stack) writeKubeconfigs(certs *pki) error {
	dir := s.opts.DevDir
	s.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	s.ControllerKubeconfig = filepath.Join(dir, "kubeconfigs", "controller")
	s.GatewayKubeconfig = filepath.Join(dir, "kubeconfigs", "gateway")
	admin, err := writeKubeconfig(certs, s.APIServerURL, identity{user: AdminUser, groups: []string{"system:masters"}, path: s.KubeconfigPath})
	if err != nil {
		return err
	}
	for _, id := range []identity{
		{user: ControllerUser, groups: ServiceAccountGroups, path: s.ControllerKubeconfig},
		{user: GatewayUser, groups: ServiceAccountGroups, path: s.GatewayKubeconfig},
	} {
		if _, err := writeKubeconfig(certs, s.APIServerURL, id); err != nil {
			return err
		}
	}
	if s.Config, err = restConfig(admin); err != nil {
		return err
	}
	s.Client, err = client.New(s.Config, client.Options{Scheme: newScheme()})
	return err
}

func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	_ = loansv1alpha1.AddToScheme(scheme)
	return scheme
}

func (s *Stack) newProcess(name, path string, args []string, ready readyFunc) *Process {
	p := &Process{
		name: name, path: path, args: args, ready: ready,
		logPath:      filepath.Join(s.opts.DevDir, "logs", name+".log"),
		startTimeout: s.opts.StartTimeout, stopTimeout: s.opts.StopTimeout,
	}
	p.report = func(e *ExitError) { s.report(p, e) }
	return p
}
