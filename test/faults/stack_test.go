package faults_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/internal/devenv"
)

// httpClient bounds every request the tests make that has no deadline of its own.
var httpClient = &http.Client{Timeout: 15 * time.Second}

// The controller's timing on the test stacks. The bank decides in 1 to 3 seconds (the real one
// takes 5 to 20), so the controller polls 1 second after a submission and every half second
// after; a 404 three seconds after a submission means the bank forgot; and backoff after bank
// errors stops growing at 5 seconds, so that a spell of faults costs seconds, not minutes, once
// the bank recovers.
var controllerTiming = []string{
	"--first-poll-delay=1s",
	"--poll-interval=500ms",
	"--not-found-grace=3s",
	"--retry-max-delay=5s",
	"--bank-timeout=3s",
}

// startStack starts the whole system as `make dev` does, in bin/faults/<name> (wiped first; the
// logs stay there after the run for a post-mortem), and stops it when the calling container
// ends. tweak changes the options before the start.
func startStack(ctx context.Context, name string, tweak func(*devenv.Options)) *devenv.Stack {
	GinkgoHelper()
	devDir := filepath.Join(repoDir, "bin", "faults", name)
	Expect(os.RemoveAll(devDir)).To(Succeed())
	opts := devenv.Options{
		DevDir:       devDir,
		RepoDir:      repoDir,
		BinDir:       binDir,
		GatewayAddr:  "127.0.0.1:0",
		BankAddr:     "127.0.0.1:0",
		BankMinDelay: time.Second,
		BankMaxDelay: 3 * time.Second,
		// The tests never crash the machine, only processes: etcd without fsync is safe here.
		UnsafeNoFsync:  true,
		ControllerArgs: append([]string(nil), controllerTiming...),
		StartTimeout:   90 * time.Second,
		Log:            GinkgoWriter,
	}
	if tweak != nil {
		tweak(&opts)
	}
	stack, err := devenv.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(stack.Stop()).To(Succeed())
	})
	return stack
}

// expectNoUnexpectedExit fails when a process of the stack ended without being asked to.
func expectNoUnexpectedExit(stack *devenv.Stack) {
	GinkgoHelper()
	select {
	case exit := <-stack.Exits():
		Fail(exit.Error())
	default:
	}
}

// ensureRunning restarts every process of the stack that a test stopped or killed and did not
// bring back (because it failed half-way), so that the next test starts on a whole system.
func ensureRunning(ctx context.Context, stack *devenv.Stack) {
	GinkgoHelper()
	for _, p := range stack.Processes() {
		if !p.Running() {
			By("restarting " + p.Name() + ", left stopped by the test")
			Expect(p.Start(ctx)).To(Succeed())
		}
	}
}
