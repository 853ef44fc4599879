package e2e_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/lendo/loan-operator/internal/controller"
	"github.com/lendo/loan-operator/test/stacktest"
	"github.com/lendo/loan-operator/test/testenv"
)

// The real bank's assessment, which the first spec configures explicitly (they are also
// devenv's defaults).
const bankMinDelay, bankMaxDelay = 5 * time.Second, 20 * time.Second

// handlingAllowance is what a decision takes besides the bank's assessment and the controller's
// polling: the watch event and one POST that submit the application, the status write and the
// label patch that record the decision, kubectl's own start, and this test's 250 ms polling. Each
// is well under a second on loopback.
const handlingAllowance = 4 * time.Second

// decisionBound is the latest an application may be decided when the bank takes between min and
// max: the bank decides at most max after the submission, and the controller sees it at its
// next poll, at most one poll interval (stretched by half the jitter) later, or at the first
// poll when that comes after max. It follows from the configured delays, not from a measurement.
func decisionBound(bankMaxDelay time.Duration) time.Duration {
	t := controller.DefaultTiming
	firstPoll := t.FirstPollDelay + time.Duration(float64(t.FirstPollDelay)*t.Jitter)
	latePoll := t.PollInterval + time.Duration(float64(t.PollInterval)*t.Jitter/2)
	return max(bankMaxDelay+latePoll, firstPoll) + handlingAllowance
}

// What `make dev` runs, as a person runs it: cmd/devenv from the repository's folder, set up by
// environment variables, with the real bank's 5 to 20 second assessment. The Done-when of the
// issue: a sample applied with kubectl and a POST to the gateway both end approved or rejected
// within what the bank's delays allow, kubectl lists the approved ones by label, a program that
// dies is restarted and one that keeps dying stops the stack, BANK_URL replaces the simulator,
// and Ctrl-C stops everything with exit code 0.
var _ = Describe("make dev", Ordered, func() {
	var (
		devenvBin, devDir, gatewayAddr, bankAddr string
		kubeconfig                               string
	)

	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		Expect(programs.Build(dir, map[string]string{"devenv": "./cmd/devenv"}, GinkgoWriter)).To(Succeed())
		devenvBin = filepath.Join(dir, "devenv")
		devDir = filepath.Join(GinkgoT().TempDir(), "dev")
		kubeconfig = filepath.Join(devDir, "kubeconfig")
		// Addresses known before the start, for the banner's commands and the POST below.
		addrs, err := stacktest.FreeAddrs(2)
		Expect(err).NotTo(HaveOccurred())
		gatewayAddr, bankAddr = addrs[0], addrs[1]
	})

	// start runs cmd/devenv with the README's variables and waits for its banner.
	start := func(extraEnv ...string) *gexec.Session {
		GinkgoHelper()
		cmd := exec.Command(devenvBin, "-bin-dir", programs.BinDir)
		cmd.Dir = programs.RepoDir
		cmd.Env = append(os.Environ(), "DEV_DIR="+devDir, "GATEWAY_ADDR="+gatewayAddr, "BANK_ADDR="+bankAddr)
		cmd.Env = append(cmd.Env, extraEnv...)
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { session.Kill().Wait(30 * time.Second) })
		Eventually(session).WithTimeout(2 * time.Minute).Should(gbytes.Say("loan-operator is running"))
		Eventually(session).WithTimeout(5 * time.Second).Should(gbytes.Say("DEV_RESET=1 starts from empty"))
		return session
	}

	kubectl := func(args ...string) string {
		GinkgoHelper()
		cmd := exec.Command(testenv.KubectlPath(), args...)
		cmd.Dir = programs.RepoDir
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "kubectl %v: %s", args, out)
		return string(out)
	}

	It("takes a sample and a POST to a decision within the bank's delays and stops everything on Ctrl-C", func(ctx SpecContext) {
		session := start("BANK_MIN_DELAY="+bankMinDelay.String(), "BANK_MAX_DELAY="+bankMaxDelay.String())
		bound := decisionBound(bankMaxDelay)
		out := string(session.Out.Contents())
		for _, try := range []string{
			"KUBECONFIG=" + kubeconfig + " kubectl apply -f config/samples/",
			"curl -s -X POST http://" + gatewayAddr + "/api/v1/applications",
			"KUBECONFIG=" + kubeconfig + " kubectl get loanapplications -l status=approved",
		} {
			Expect(out).To(ContainSubstring(try), "the banner's commands to try")
		}

		sent := time.Now()
		kubectl("apply", "-f", "config/samples/")
		posted := createThroughGateway(ctx, "http://"+gatewayAddr, "Grace", "Hopper")
		statuses := map[string]string{}
		Eventually(func(g Gomega) {
			statuses = map[string]string{}
			table := kubectl("get", "loanapplications", "--no-headers", "-o", "custom-columns=N:.metadata.name,S:.metadata.labels.status")
			for line := range strings.Lines(table) {
				if f := strings.Fields(line); len(f) == 2 {
					statuses[f[0]] = f[1]
				}
			}
			g.Expect(statuses).To(HaveLen(3))
			for name, status := range statuses {
				g.Expect(status).To(BeElementOf("approved", "rejected"), name)
			}
		}).WithContext(ctx).WithTimeout(bound + 10*time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		took := time.Since(sent)
		GinkgoWriter.Printf("make dev: the samples and a POST decided %s after sending, with the bank's %s-%s assessment (bound %s)\n",
			took, bankMinDelay, bankMaxDelay, bound)
		AddReportEntry("decided after", took.String())
		Expect(took).To(BeNumerically("<", bound), "the bank's longest assessment, one late poll and the handling allowance")
		Expect(statuses).To(HaveKey(posted))
		Expect(statuses).To(HaveKey("ada-lovelace"))

		var approved []string
		for name, status := range statuses {
			if status == "approved" {
				approved = append(approved, "loanapplication.loans.lendo.se/"+name)
			}
		}
		// ConsistOf, not Equal on sorted slices: when the bank rejected all three, kubectl's empty
		// list and the nil approved are the same answer.
		Expect(strings.Fields(kubectl("get", "loanapplications", "-l", "status=approved", "-o", "name"))).
			To(ConsistOf(approved))

		children := childPIDs(session.Command.Process.Pid)
		Expect(children).To(HaveLen(5), "etcd, kube-apiserver, bank-sim, controller, gateway")
		session.Interrupt()
		Eventually(session).WithTimeout(time.Minute).Should(gexec.Exit(0))
		Expect(session.Out).To(gbytes.Say("Stopped"))
		expectGone(children)
	}, SpecTimeout(4*time.Minute))

	It("keeps the applications, restarts a controller killed with -9, and stops when a program keeps dying", func(ctx SpecContext) {
		// An almost instant bank, so that the applications created below are decided at once.
		session := start("BANK_MIN_DELAY=0s", "BANK_MAX_DELAY=300ms")
		names := strings.Fields(kubectl("get", "loanapplications", "-o", "name"))
		Expect(names).To(HaveLen(3), "the applications of the previous run")

		controllerPID := childNamed(session, "loan-controller")
		Expect(syscall.Kill(controllerPID, syscall.SIGKILL)).To(Succeed())
		Eventually(session).WithTimeout(10 * time.Second).Should(gbytes.Say(
			`controller-0 exited unexpectedly \(signal: killed\): restarting it in 1s`))
		Eventually(session).WithTimeout(10 * time.Second).Should(gbytes.Say(`restarted controller-0 \(pid \d+\)`))
		Expect(childNamed(session, "loan-controller")).NotTo(Equal(controllerPID))
		Consistently(session).WithTimeout(2*time.Second).ShouldNot(gexec.Exit(), "one death must not stop the stack")

		// Applications created while the new controller starts are all decided by it.
		for i := range 3 {
			createThroughGateway(ctx, "http://"+gatewayAddr, "Killed", "Controller "+letters(i))
		}
		Eventually(func(g Gomega) {
			table := kubectl("get", "loanapplications", "--no-headers", "-o", "custom-columns=S:.metadata.labels.status")
			statuses := strings.Fields(table)
			g.Expect(statuses).To(HaveLen(6))
			for _, status := range statuses {
				g.Expect(status).To(BeElementOf("approved", "rejected"))
			}
		}).WithContext(ctx).WithTimeout(decisionBound(300 * time.Millisecond)).WithPolling(250 * time.Millisecond).Should(Succeed())

		// A bank that dies five times within a minute (restarted after 1, 2, 4 and 8 s) stops it.
		children := childPIDs(session.Command.Process.Pid)
		for death := 1; death <= 5; death++ {
			var bank int
			Eventually(func() int {
				bank = childNamed(session, "bank-sim")
				return bank
			}).WithTimeout(15*time.Second).Should(BeNumerically(">", 0), "bank-sim was not restarted before death %d", death)
			Expect(syscall.Kill(bank, syscall.SIGKILL)).To(Succeed())
			if death < 5 {
				Eventually(session).WithTimeout(10 * time.Second).Should(gbytes.Say(`restarted bank-sim`))
			}
		}
		Eventually(session).WithTimeout(time.Minute).Should(gexec.Exit())
		Expect(session.ExitCode()).To(Equal(1), "a program that keeps dying must make make dev fail")
		Expect(session.Err).To(gbytes.Say(`bank-sim died 5 times within 1m0s \(last: signal: killed\), so the stack stops; last lines of`))
		expectGone(children)
	}, SpecTimeout(4*time.Minute))

	It("uses the bank of BANK_URL instead of starting the simulator, and says so", func(ctx SpecContext) {
		addrs, err := stacktest.FreeAddrs(1)
		Expect(err).NotTo(HaveOccurred())
		bank := exec.Command(filepath.Join(programs.BinDir, "bank-sim"), "--addr="+addrs[0], "--min-delay=0s", "--max-delay=1ms")
		bankSession, err := gexec.Start(bank, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { bankSession.Kill().Wait(10 * time.Second) })

		session := start("BANK_URL=http://" + addrs[0])
		Expect(string(session.Out.Contents())).To(ContainSubstring("bank            http://" + addrs[0] + "   (BANK_URL"))
		Expect(childNamed(session, "bank-sim")).To(BeZero(), "the simulator must not be started")
		Expect(childPIDs(session.Command.Process.Pid)).To(HaveLen(4), "etcd, kube-apiserver, controller, gateway")

		id := createThroughGateway(ctx, "http://"+gatewayAddr, "Barbara", "Liskov")
		Eventually(func(g Gomega) {
			stats, err := stacktest.BankStats(ctx, httpClient, "http://"+addrs[0])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(stats.ApplicationsCreated).To(BeNumerically(">=", 1), "the bank of BANK_URL got no application")
			g.Expect(kubectl("get", "loanapplication", id, "-o", "jsonpath={.metadata.labels.status}")).
				To(BeElementOf("approved", "rejected"))
		}).WithContext(ctx).WithTimeout(decisionBound(time.Millisecond)).WithPolling(250 * time.Millisecond).Should(Succeed())

		session.Interrupt()
		Eventually(session).WithTimeout(time.Minute).Should(gexec.Exit(0))
	}, SpecTimeout(4*time.Minute))

	It("starts from empty with DEV_RESET=1", func(ctx SpecContext) {
		session := start("DEV_RESET=1")
		Expect(strings.TrimSpace(kubectl("get", "loanapplications", "-o", "name"))).To(BeEmpty())
		session.Interrupt()
		Eventually(session).WithTimeout(time.Minute).Should(gexec.Exit(0))
	}, SpecTimeout(4*time.Minute))
})

// childNamed is the pid of the session's child whose command line names program, or 0.
func childNamed(session *gexec.Session, program string) int {
	GinkgoHelper()
	for _, pid := range childPIDs(session.Command.Process.Pid) {
		if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil &&
			strings.Contains(strings.SplitN(string(cmdline), "\x00", 2)[0], program) {
			return pid
		}
	}
	return 0
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	GinkgoHelper()
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var children []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			children = append(children, child)
		}
	}
	return children
}

// expectGone checks that none of the processes is left.
func expectGone(pids []int) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for _, pid := range pids {
			err := syscall.Kill(pid, 0)
			g.Expect(errors.Is(err, syscall.ESRCH)).To(BeTrue(), "process %d is still there", pid)
		}
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
