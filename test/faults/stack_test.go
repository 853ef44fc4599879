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

// faultTiming is added to the quick stack's controller timing (a bank that decides in 1 to 3
// seconds, polled 1 second after a submission and every half second after) for the faults: a
// 404 three seconds after a submission means the bank forgot; a bank call gives up after 3
// seconds; and backoff after bank errors stops growing at 5 seconds, so that a spell of faults
// costs seconds, not minutes, once the bank recovers.
var faultTiming = []string{
	"--not-found-grace=3s",
	"--retry-max-delay=5s",
	"--bank-timeout=3s",
}

// startStack starts the whole system as `make dev` does, in bin/faults/<name> (wiped first; the
// logs stay there after the run for a post-mortem), and stops it when the calling container
// ends. tweak changes the options before the start.
func startStack(ctx context.Context, name string, tweak func(*devenv.Options)) *devenv.Stack {
	GinkgoHelper()
	devDir := filepath.Join(programs.RepoDir, "bin", "faults", name)
	Expect(os.RemoveAll(devDir)).To(Succeed())
	opts := programs.QuickOptions(devDir, GinkgoWriter)
	// The tests never crash the machine, only processes: etcd without fsync is safe here.
	opts.UnsafeNoFsync = true
	opts.ControllerArgs = append(opts.ControllerArgs, faultTiming...)
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
