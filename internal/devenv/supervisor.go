package devenv

import (
	"fmt"
	"sync"
	"time"
)

// The restart policy of Options.Restart, the local counterpart of a Deployment's pods: a program
// that dies is started again after a back-off that doubles with each death, and one that dies
// crashLoopLimit times within crashLoopWindow is given up on, which stops the stack.
const (
	crashLoopLimit  = 5
	crashLoopWindow = time.Minute
	firstBackoff    = time.Second
	maxBackoff      = 10 * time.Second
)

// supervisor restarts the processes that exit without being asked to.
type supervisor struct {
	limit   int
	window  time.Duration
	backoff func(deaths int) time.Duration
	// logf tells the person at the keyboard what happened; giveUp receives the exit that made a
	// process reach the limit.
	logf   func(format string, args ...any)
	giveUp func(*ExitError)

	mu      sync.Mutex
	deaths  map[*Process][]time.Time
	stopped bool
}

func newSupervisor(logf func(string, ...any), giveUp func(*ExitError)) *supervisor {
	return &supervisor{
		limit: crashLoopLimit, window: crashLoopWindow, backoff: doublingBackoff,
		logf: logf, giveUp: giveUp, deaths: map[*Process][]time.Time{},
	}
}

// doublingBackoff waits 1s after the first death, then 2s, 4s, up to 10s, as the kubelet does
// (from 10s up to 5 minutes there: a local run wants its programs back sooner).
func doublingBackoff(deaths int) time.Duration {
	d := firstBackoff
	for i := 1; i < deaths && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// exited is called by a process's waiter when it exits unexpectedly.
func (s *supervisor) exited(p *Process, e *ExitError) {
	now := time.Now()
	s.mu.Lock()
	recent := []time.Time{now}
	for _, t := range s.deaths[p] {
		if now.Sub(t) < s.window {
			recent = append(recent, t)
		}
	}
	s.deaths[p] = recent
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return
	}
	if len(recent) >= s.limit {
		e.Deaths, e.Within = len(recent), s.window
		s.giveUp(e)
		return
	}
	delay := s.backoff(len(recent))
	s.logf("%s exited unexpectedly (%v): restarting it in %s (death %d of %d allowed within %s; log: %s)",
		p.Name(), e.Err, delay, len(recent), s.limit-1, s.window, p.LogPath())
	time.AfterFunc(delay, func() { s.restart(p) })
}

// restart starts p again, unless the stack is stopping. It does not wait for p to be ready: like
// a kubelet, it only runs the process; a death before ready is reported and counted like any.
func (s *supervisor) restart(p *Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || p.Running() {
		return
	}
	if err := p.spawn(); err != nil {
		s.logf("restarting %s failed: %v", p.Name(), err)
		go s.exited(p, &ExitError{Name: p.Name(), Err: err, LogPath: p.LogPath(), LogTail: tail(p.LogPath(), 20)})
		return
	}
	s.logf("restarted %s (pid %d)", p.Name(), p.Pid())
}

// stop ends the restarts: after it returns, no process is started again, so that stopping the
// stack stops every process for good.
func (s *supervisor) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
}

// crashLoopMessage says why the stack stops, for ExitError.Error.
func crashLoopMessage(e *ExitError) string {
	return fmt.Sprintf("%s died %d times within %s (last: %v), so the stack stops; last lines of %s:\n%s",
		e.Name, e.Deaths, e.Within, e.Err, e.LogPath, e.LogTail)
}
