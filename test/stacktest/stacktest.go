// Package stacktest holds what the suites that run the whole system on real processes
// (test/e2e and test/faults) share: finding or building the programs, the options of a stack
// that decides in seconds, free loopback addresses, the check for a process that died, and the
// two HTTP calls both suites make (a create through the gateway, the bank simulator's counts).
//
// Only tests import it. Its functions return errors instead of failing a test, so that it
// depends on no test framework and each suite asserts in its own style.
package stacktest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lendo/loan-operator/internal/devenv"
	"github.com/lendo/loan-operator/test/testenv"
)

// stackPrograms are the programs a stack runs, by binary name, with the package of each.
var stackPrograms = map[string]string{
	"loan-controller": "./cmd/controller",
	"loan-gateway":    "./cmd/gateway",
	"bank-sim":        "./cmd/bank-sim",
}

// Programs say where a suite's stacks find the repository and the built programs.
type Programs struct {
	// RepoDir is the repository: config/dev, and where go build runs.
	RepoDir string
	// BinDir holds loan-controller, loan-gateway and bank-sim.
	BinDir string
}

// Prepare is a suite's set-up before its first stack. It checks that KUBEBUILDER_ASSETS names
// the control plane, then takes the programs from binDir (binaries built elsewhere) or, when
// binDir is empty, from the repository's bin/, where make build puts them. When one of them is
// missing there (a suite run with go test before any make build), it builds all of them into
// scratch, announcing each build on log.
func Prepare(binDir, scratch string, log io.Writer) (Programs, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return Programs{}, errors.New("KUBEBUILDER_ASSETS must name the folder with kube-apiserver and etcd: run `make test-e2e`")
	}
	p := Programs{RepoDir: testenv.RepoRoot(), BinDir: binDir}
	if p.BinDir == "" {
		p.BinDir = filepath.Join(p.RepoDir, "bin")
	}
	if allBuilt(p.BinDir) {
		return p, nil
	}
	p.BinDir = scratch
	return p, p.Build(scratch, stackPrograms, log)
}

// allBuilt tells whether dir holds every program of a stack, executable.
func allBuilt(dir string) bool {
	for name := range stackPrograms {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Build builds each package of the repository into dir under its binary name (the map's key),
// announcing each on log.
func (p Programs) Build(dir string, packages map[string]string, log io.Writer) error {
	for name, pkg := range packages {
		_, _ = fmt.Fprintf(log, "building %s\n", pkg)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = p.RepoDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}

// QuickOptions are the options of a stack for a test, in devDir, its steps logged to log: free
// loopback ports, a bank that decides in 1 to 3 seconds (the real one takes 5 to 20) and a
// controller that polls 1 second after a submission and every half second after, so that an
// application is decided within seconds. A suite adds what its own tests need.
func (p Programs) QuickOptions(devDir string, log io.Writer) devenv.Options {
	return devenv.Options{
		DevDir:       devDir,
		RepoDir:      p.RepoDir,
		BinDir:       p.BinDir,
		GatewayAddr:  "127.0.0.1:0",
		BankAddr:     "127.0.0.1:0",
		BankMinDelay: time.Second,
		BankMaxDelay: 3 * time.Second,
		ControllerArgs: []string{
			"--first-poll-delay=1s", "--poll-interval=500ms",
		},
		// A control plane and four programs starting on two shared cores: more than the
		// default 60s per process, so that a busy machine is not taken for a broken start.
		StartTimeout: 90 * time.Second,
		Log:          log,
	}
}

// FreeAddrs are n distinct free loopback addresses, for programs whose address must be known
// before they start. Each listener is held until all n are chosen, so no two are the same;
// another program may still take one before its user binds it (the user then fails and says so).
func FreeAddrs(n int) ([]string, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// UnexpectedExit is the first exit of a process of the stack that nobody asked for, or nil.
// It does not wait: a suite calls it after each test, since a process that died without the
// test killing it is a failure whatever the test itself checked.
func UnexpectedExit(stack *devenv.Stack) error {
	select {
	case exit := <-stack.Exits():
		return exit
	default:
		return nil
	}
}
