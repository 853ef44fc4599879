package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// perfStopBound is how long perf may take to write its data after SIGINT.
const perfStopBound = 30 * time.Second

// profiledProcesses are the processes whose CPU profiles explain the figures.
var profiledProcesses = []string{"etcd", "gateway", "controller-0"}

// profile starts `perf record` (sampled CPU stacks; Go binaries keep frame pointers, so the
// call graphs are complete) on the gateway, the controller and etcd, writing
// <perfDir>/<step>-<process>.perf.data, and the API server's own pprof profile, and answers the
// function that stops them. It does nothing without --perf-dir. Read them with
// `perf report -i <file> --no-children --stdio --sort symbol` and `go tool pprof -top <file>`.
func (b *bench) profile(step string) (stop func()) {
	if b.perfDir == "" {
		return func() {}
	}
	var cmds []*exec.Cmd
	for _, p := range b.sys.stack.Processes() {
		if p == nil || p.Pid() == 0 || !isProfiled(p.Name()) {
			continue
		}
		out := filepath.Join(b.perfDir, slug(step)+"-"+p.Name()+".perf.data")
		cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strconv.Itoa(p.Pid()))
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			progress("perf record for %s: %v (profiles need perf and the right to use it)", p.Name(), err)
			continue
		}
		cmds = append(cmds, cmd)
	}
	// Scenario 1 always saves the API server's profile of its whole window (endToEnd), and the
	// API server runs one CPU profile at a time.
	apiProfile := closedChannel()
	if step != scenarioEndToEnd {
		apiProfile = b.profileAPIServer(step)
	}
	return func() {
		for _, cmd := range cmds {
			stopPerf(cmd)
		}
		<-apiProfile
	}
}

// apiServerProfileSeconds is the length of the API server's CPU profile of a step (from its
// start): the API server binary is stripped, so perf cannot name its functions, but it serves
// Go's pprof to an administrator (--profiling, on by default).
const apiServerProfileSeconds = 25

// profileAPIServer fetches the API server's pprof CPU profile of the first seconds of a step
// into <perfDir>/<step>-kube-apiserver.pprof; the channel closes when it is written.
func (b *bench) profileAPIServer(step string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), (apiServerProfileSeconds+15)*time.Second)
		defer cancel()
		data, err := b.sys.apiRead(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(apiServerProfileSeconds))
		if err == nil {
			err = os.WriteFile(filepath.Join(b.perfDir, slug(step)+"-kube-apiserver.pprof"), data, 0o644)
		}
		if err != nil {
			progress("the API server's CPU profile of %q: %v", step, err)
		}
	}()
	return done
}

// stopPerf asks perf to write its data (SIGINT) and waits for it, killing it past the bound.
func stopPerf(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(perfStopBound):
		_ = cmd.Process.Kill()
		<-done
	}
}

func isProfiled(name string) bool {
	for _, p := range profiledProcesses {
		if p == name {
			return true
		}
	}
	return false
}

// slug turns a step name into a file name: "3 reads at 10000" -> "3-reads-at-10000".
func slug(s string) string {
	return strings.Join(strings.Fields(s), "-")
}

// preparePerfDir makes the profiles' folder and checks that perf runs.
func preparePerfDir(dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("--perf-dir needs perf (linux-tools) on PATH: %w", err)
	}
	return os.MkdirAll(dir, 0o755)
}

func closedChannel() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
