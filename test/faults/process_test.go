package faults_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// extraProcess is a program the test starts beside the stack's own (a gateway with a token, a
// controller with secure metrics), its output in a log file, stopped when the test ends.
type extraProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// startExtra runs binary with args, logging to logPath, and waits until readyURL answers 200
// (with readyClient). The process dies with the test binary, and is stopped with SIGTERM at the
// end of the calling node.
func startExtra(ctx context.Context, binary, logPath, readyURL string, readyClient *http.Client, args ...string) *extraProcess {
	GinkgoHelper()
	logFile, err := os.Create(logPath)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(filepath.Join(programs.BinDir, binary), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	Expect(cmd.Start()).To(Succeed())
	p := &extraProcess{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	DeferCleanup(p.stop)
	Eventually(func(g Gomega) {
		g.Expect(p.done).NotTo(BeClosed(), "%s exited; see %s", binary, logPath)
		resp, err := readyClient.Get(readyURL)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithContext(ctx).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	return p
}

// stop sends SIGTERM and waits (SIGKILL after 15s), so that the log is complete.
func (p *extraProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
