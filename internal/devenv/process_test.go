package devenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run real child processes (sh), since what they check is how the stack treats
// real exits and signals.

// shellProcess is a Process running script with sh, ready once ready says so.
func shellProcess(t *testing.T, script string, ready readyFunc, reports chan *ExitError) *Process {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	return &Process{
		name: "sh", path: sh, args: []string{"-c", script}, ready: ready,
		logPath:      filepath.Join(t.TempDir(), "sh.log"),
		startTimeout: 5 * time.Second, stopTimeout: 2 * time.Second,
		report: func(e *ExitError) { reports <- e },
	}
}

func readyAtOnce(context.Context) error { return nil }

func neverReady(context.Context) error { return errors.New("not yet") }

func TestProcessThatDiesIsReportedWithItsLogTail(t *testing.T) {
	reports := make(chan *ExitError, 1)
	p := shellProcess(t, "echo 'about to fail: boom'; sleep 0.2; exit 3", readyAtOnce, reports)
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case e := <-reports:
		if e.Name != "sh" || !strings.Contains(e.Err.Error(), "exit status 3") || !strings.Contains(e.LogTail, "boom") {
			t.Fatalf("report = %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the exit was not reported")
	}
	if p.Running() {
		t.Fatal("Running after exit")
	}
}

func TestProcessThatExitsBeforeReadyFailsStartWithItsLogTail(t *testing.T) {
	reports := make(chan *ExitError, 1)
	p := shellProcess(t, "echo 'listen: address already in use'; exit 1", neverReady, reports)
	err := p.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start = %v", err)
	}
}

func TestProcessNeverReadyIsKilledAfterTheStartTimeout(t *testing.T) {
	reports := make(chan *ExitError, 1)
	p := shellProcess(t, "sleep 30", neverReady, reports)
	p.startTimeout = 300 * time.Millisecond
	err := p.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "was not ready within") {
		t.Fatalf("Start = %v", err)
	}
	if p.Running() {
		t.Fatal("the process was left running")
	}
	if len(reports) != 0 {
		t.Fatalf("a kill on purpose was reported: %v", <-reports)
	}
}

func TestProcessStopAndKillAreNotReportedAndItStartsAgain(t *testing.T) {
	reports := make(chan *ExitError, 2)
	p := shellProcess(t, "exec sleep 30", readyAtOnce, reports)
	for _, end := range []func() error{p.Stop, p.Kill} {
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v", err)
		}
		began := time.Now()
		if err := end(); err != nil {
			t.Fatalf("stopping: %v", err)
		}
		if p.Running() || time.Since(began) > time.Second {
			t.Fatalf("still running %v after the signal, or slow (%s)", p.Running(), time.Since(began))
		}
	}
	if len(reports) != 0 {
		t.Fatalf("an exit on purpose was reported: %v", <-reports)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop of a stopped process: %v", err)
	}
}

func TestProcessIgnoringSIGTERMIsKilledAfterTheStopTimeout(t *testing.T) {
	reports := make(chan *ExitError, 1)
	// The shell ignores SIGTERM and says when it is ready to be stopped.
	p := shellProcess(t, "trap '' TERM; echo trapped; while true; do sleep 0.1; done", nil, reports)
	p.ready = func(context.Context) error {
		// A line of its own: the log's header line quotes the script, which says "trapped" too.
		if strings.Contains(tail(p.logPath, 5), "\n    trapped") {
			return nil
		}
		return errors.New("not trapped yet")
	}
	p.stopTimeout = 500 * time.Millisecond
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop = %v, want an error saying it was killed", err)
	}
	if p.Running() {
		t.Fatal("still running")
	}
}

func TestProcessLogHidesTheBankPassword(t *testing.T) {
	p := shellProcess(t, "exit 0", readyAtOnce, make(chan *ExitError, 1))
	p.args = append(p.args, "sh", "--bank-url=https://lendo:s3cret-token@bank.example:8443/api")
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	_ = p.Stop()
	logged, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logged), "s3cret-token") {
		t.Errorf("the log shows the bank's password:\n%s", logged)
	}
	if !strings.Contains(string(logged), "--bank-url=https://lendo:xxxxx@bank.example:8443/api") {
		t.Errorf("the log does not show the bank URL with its password hidden:\n%s", logged)
	}
}

func TestTailKeepsTheLastLines(t *testing.T) {
	reports := make(chan *ExitError, 1)
	p := shellProcess(t, "for i in $(seq 1 100); do echo line $i; done", neverReady, reports)
	_ = p.Start(context.Background())
	got := tail(p.logPath, 3)
	if want := "    line 98\n    line 99\n    line 100"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
}
