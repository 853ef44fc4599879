package devenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// supervised runs script under a supervisor with a short back-off, and returns the process, the
// exits it gave up on and what it logged.
func supervised(t *testing.T, script string, limit int) (*Process, *supervisor, chan *ExitError, *syncLog) {
	t.Helper()
	gaveUp := make(chan *ExitError, 1)
	log := &syncLog{}
	s := newSupervisor(log.printf, func(e *ExitError) { gaveUp <- e })
	s.limit, s.backoff = limit, func(deaths int) time.Duration { return time.Duration(deaths) * 50 * time.Millisecond }
	p := shellProcess(t, script, readyAtOnce, nil)
	p.report = func(e *ExitError) { s.exited(p, e) }
	t.Cleanup(func() { s.stop(); _ = p.Kill() })
	return p, s, gaveUp, log
}

type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestSupervisorRestartsAKilledProcessAndSaysSo(t *testing.T) {
	p, _, gaveUp, log := supervised(t, "exec sleep 30", crashLoopLimit)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := p.Pid()
	// As `kill -9` from another terminal: not through Kill, which marks the exit as asked for.
	p.mu.Lock()
	_ = p.cmd.Process.Kill()
	p.mu.Unlock()

	deadline := time.Now().Add(5 * time.Second)
	for p.Pid() == 0 || p.Pid() == first {
		if time.Now().After(deadline) {
			t.Fatalf("not restarted; log:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(gaveUp) != 0 {
		t.Fatalf("gave up after one death: %v", <-gaveUp)
	}
	for _, want := range []string{"sh exited unexpectedly (signal: killed): restarting it in 50ms", "restarted sh"} {
		if !strings.Contains(log.String(), want) {
			t.Fatalf("the log does not say %q:\n%s", want, log)
		}
	}
}

func TestSupervisorGivesUpOnAProcessThatKeepsDyingWithItsLogTail(t *testing.T) {
	p, _, gaveUp, log := supervised(t, "echo 'cannot reach the bank: boom'; sleep 0.05; exit 2", 4)
	began := time.Now()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-gaveUp:
		if e.Deaths != 4 || !strings.Contains(e.Error(), "sh died 4 times within 1m0s") || !strings.Contains(e.Error(), "boom") {
			t.Fatalf("gave up with %q (deaths %d)", e.Error(), e.Deaths)
		}
		// Back-offs of 50, 100 and 150 ms between the four deaths: restarts were not immediate.
		if took := time.Since(began); took < 300*time.Millisecond {
			t.Fatalf("four deaths in %s: no back-off", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("never gave up; log:\n%s", log)
	}
	time.Sleep(300 * time.Millisecond)
	if p.Running() {
		t.Fatal("restarted after giving up")
	}
}

func TestSupervisorDoesNotRestartOnceStopped(t *testing.T) {
	p, s, _, _ := supervised(t, "sleep 0.1; exit 1", crashLoopLimit)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.stop()
	time.Sleep(400 * time.Millisecond)
	if p.Running() {
		t.Fatal("restarted after stop")
	}
}

// A death just before the stack stops has its restart already scheduled: stopping must cancel
// it too, or make dev would leave that program running after it exits.
func TestSupervisorDropsARestartScheduledBeforeTheStop(t *testing.T) {
	p, s, _, log := supervised(t, "sleep 0.1; exit 1", crashLoopLimit)
	s.backoff = func(int) time.Duration { return 300 * time.Millisecond }
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "restarting it in") {
		if time.Now().After(deadline) {
			t.Fatalf("the death was not reported; log:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.stop()
	time.Sleep(600 * time.Millisecond)
	if p.Running() || strings.Contains(log.String(), "restarted sh") {
		t.Fatalf("restarted after stop; log:\n%s", log)
	}
}

func TestDoublingBackoff(t *testing.T) {
	for deaths, want := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 9: 10 * time.Second,
	} {
		if got := doublingBackoff(deaths); got != want {
			t.Errorf("doublingBackoff(%d) = %s, want %s", deaths, got, want)
		}
	}
}
