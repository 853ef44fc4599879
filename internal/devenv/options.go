package devenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/lendo/loan-operator/internal/bank"
)

// The binaries that `make build` puts in bin/, and those of the control plane in
// KUBEBUILDER_ASSETS.
const (
	controllerBinary = "loan-controller"
	gatewayBinary    = "loan-gateway"
	bankSimBinary    = "bank-sim"
	etcdBinary       = "etcd"
	apiServerBinary  = "kube-apiserver"
)

// Options say what to start and where. The zero value of every field means its default, so that
// callers (make dev, the end-to-end tests, the benchmarks) set only what they change.
type Options struct {
	// DevDir holds etcd's data, the certificates, the kubeconfigs and the logs. Default ".dev".
	DevDir string
	// Reset deletes DevDir's etcd data first, to start from no applications.
	Reset bool
	// RepoDir is the repository, for config/dev and the default BinDir. Default ".".
	RepoDir string
	// BinDir holds loan-controller, loan-gateway and bank-sim. Default RepoDir/bin.
	BinDir string
	// AssetsDir holds etcd and kube-apiserver. Default $KUBEBUILDER_ASSETS.
	AssetsDir string
	// Kubectl is the kubectl that renders config/dev. Default: $KUBECTL, kubectl in AssetsDir,
	// else the one on PATH.
	Kubectl string

	// GatewayAddr and BankAddr are where the gateway and the bank simulator listen, on loopback.
	// Port 0 picks a free port once, kept across restarts of this Stack. Defaults
	// 127.0.0.1:8080 and 127.0.0.1:8000.
	GatewayAddr, BankAddr string
	// BankURL is a bank that runs elsewhere (the real bank, or any stand-in): the controller
	// uses it and the bank simulator is not started. Empty: the simulator at BankAddr.
	BankURL string
	// BankMinDelay and BankMaxDelay bound the bank's assessment. Both zero means the real bank's
	// 5s and 20s; for an almost instant bank, use 0 and 1ms.
	BankMinDelay, BankMaxDelay time.Duration
	// EtcdPort and APIServerPort: 0 reuses the port of the previous run on DevDir when it is
	// free, else picks a free one.
	EtcdPort, APIServerPort int
	// UnsafeNoFsync runs etcd without fsync: faster, but a crash of the machine can lose
	// applications. For throwaway tests only.
	UnsafeNoFsync bool

	// SkipController and SkipGateway leave that program out (a benchmark may run its own).
	SkipController, SkipGateway bool
	// ControllerReplicas is how many controller processes run. Default 1; above 1 they run with
	// leader election, as replicas of a Deployment would.
	ControllerReplicas int
	// LeaderElect turns leader election on even for one replica.
	LeaderElect bool
	// BankArgs, ControllerArgs and GatewayArgs are added to each program's arguments (a later
	// flag wins over the stack's own).
	BankArgs, ControllerArgs, GatewayArgs []string

	// Restart starts a program again when it dies, as a Deployment would, after a back-off
	// that doubles with each death; a program that dies five times within a minute is given
	// up on and reported on Exits. Without it, every unexpected exit is reported there at once.
	Restart bool

	// StartTimeout bounds the wait for each process to be ready. Default 60s.
	StartTimeout time.Duration
	// StopTimeout is how long a process may take to exit after SIGTERM before it is killed.
	// Default 15s.
	StopTimeout time.Duration
	// Log receives one line per step of the start and stop. Default: discarded.
	Log io.Writer
}

// withDefaults returns the options with every default filled in and every path absolute, since
// the children get the paths on their command lines.
func (o Options) withDefaults() (Options, error) {
	o.DevDir = orDefault(o.DevDir, ".dev")
	o.RepoDir = orDefault(o.RepoDir, ".")
	o.BinDir = orDefault(o.BinDir, filepath.Join(o.RepoDir, "bin"))
	o.AssetsDir = orDefault(o.AssetsDir, os.Getenv("KUBEBUILDER_ASSETS"))
	o.GatewayAddr = orDefault(o.GatewayAddr, "127.0.0.1:8080")
	o.BankAddr = orDefault(o.BankAddr, "127.0.0.1:8000")
	if o.BankMinDelay == 0 && o.BankMaxDelay == 0 {
		o.BankMinDelay, o.BankMaxDelay = 5*time.Second, 20*time.Second
	}
	if o.ControllerReplicas == 0 {
		o.ControllerReplicas = 1
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.AssetsDir == "" {
		return o, errors.New("no control-plane binaries: set KUBEBUILDER_ASSETS to the folder with kube-apiserver and etcd " +
			"(make dev does: it runs hack/envtest-assets.sh)")
	}
	for _, dir := range []*string{&o.DevDir, &o.RepoDir, &o.BinDir, &o.AssetsDir} {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return o, err
		}
		*dir = abs
	}
	o.Kubectl = orDefault(o.Kubectl, kubectlPath(o.AssetsDir))
	return o, o.validate()
}

func (o Options) validate() error {
	if o.BankMinDelay < 0 || o.BankMaxDelay < o.BankMinDelay {
		return fmt.Errorf("the bank's delays must satisfy 0 <= min (%s) <= max (%s)", o.BankMinDelay, o.BankMaxDelay)
	}
	if o.ControllerReplicas < 0 {
		return fmt.Errorf("controller replicas must not be negative, got %d", o.ControllerReplicas)
	}
	if err := validateBankURL(o.BankURL); err != nil {
		return err
	}
	for name, addr := range map[string]string{"gateway": o.GatewayAddr, "bank": o.BankAddr} {
		if err := checkLoopback(addr); err != nil {
			return fmt.Errorf("the %s's address: %w", name, err)
		}
	}
	const fromAssets, fromBuild = "KUBEBUILDER_ASSETS", "make build"
	binaries := map[string]string{
		filepath.Join(o.AssetsDir, etcdBinary):      fromAssets,
		filepath.Join(o.AssetsDir, apiServerBinary): fromAssets,
	}
	if o.BankURL == "" {
		binaries[filepath.Join(o.BinDir, bankSimBinary)] = fromBuild
	}
	if !o.SkipController {
		binaries[filepath.Join(o.BinDir, controllerBinary)] = fromBuild
	}
	if !o.SkipGateway {
		binaries[filepath.Join(o.BinDir, gatewayBinary)] = fromBuild
	}
	for path, hint := range binaries {
		if !isExecutable(path) {
			return fmt.Errorf("%s is missing or not executable (see %s)", path, hint)
		}
	}
	return nil
}

// validateBankURL accepts an empty URL (start the simulator) or an absolute http(s) URL.
func validateBankURL(raw string) error {
	if raw == "" {
		return nil
	}
	// The URL may carry the bank's credentials: the messages show it redacted, as the controller's do.
	u, err := url.Parse(raw)
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return fmt.Errorf("the bank's URL %s: %w", bank.RedactURL(raw), urlErr.Err)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the bank's URL %s must be http:// or https:// with a host, like http://127.0.0.1:8000", bank.RedactURL(raw))
	}
	return nil
}

// checkLoopback refuses an address outside 127.0.0.0/8: the local run serves nothing beyond
// this machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return fmt.Errorf("%q is not on 127.0.0.0/8: the local run listens on loopback only", addr)
	}
	return nil
}

func orDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

func kubectlPath(assetsDir string) string {
	if p := os.Getenv("KUBECTL"); p != "" {
		return p
	}
	if p := filepath.Join(assetsDir, "kubectl"); isExecutable(p) {
		return p
	}
	return "kubectl"
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}
