package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lendo/loan-operator/internal/bank"
)

// ExitError reports a process of the stack that ended without being asked to.
type ExitError struct {
	// Name is the process's name ("controller-0", "kube-apiserver"...).
	Name string
	// Err is how it ended, as os/exec tells it (an *exec.ExitError for an exit code or a signal).
	Err error
	// LogPath is its log file; LogTail the last lines of it.
	LogPath string
	LogTail string
	// Deaths is how many times it died within Within, when Options.Restart gave up on it.
	Deaths int
	Within time.Duration
}

func (e *ExitError) Error() string {
	if e.Deaths > 0 {
		return crashLoopMessage(e)
	}
	return fmt.Sprintf("%s exited unexpectedly (%v); last lines of %s:\n%s", e.Name, e.Err, e.LogPath, e.LogTail)
}

// readyFunc answers nil once the process serves what it is for.
type readyFunc func(ctx context.Context) error

// Process is one child process of the stack: a built binary with fixed arguments, its output
// appended to a log file. It can be started again after it stopped or was killed, with the same
// arguments (so the same ports and data).
type Process struct {
	name    string
	path    string
	args    []string
	logPath string
	ready   readyFunc
	// startTimeout bounds the wait for ready; stopTimeout the wait between SIGTERM and SIGKILL.
	startTimeout, stopTimeout time.Duration
	// report receives the exits nobody asked for.
	report func(*ExitError)

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the running command has been waited for
	waitErr error
	stopped bool // Stop or Kill was called on the running command: its exit is expected
}

// Name is the process's name in logs and reports.
func (p *Process) Name() string { return p.name }

// Args are the arguments it runs with (without the program).
func (p *Process) Args() []string { return append([]string(nil), p.args...) }

// LogPath is the file its standard output and error are appended to.
func (p *Process) LogPath() string { return p.logPath }

// Pid is the process id while it runs, else 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil || p.exited() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running tells whether it was started and has not exited.
func (p *Process) Running() bool { return p.Pid() != 0 }

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start runs the process and waits until it is ready, it exits, startTimeout passes or ctx ends.
// A process that does not become ready is killed.
func (p *Process) Start(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("%s is already running", p.name)
	}
	if err := p.spawn(); err != nil {
		return err
	}
	if err := p.waitReady(ctx); err != nil {
		_ = p.Kill()
		return err
	}
	return nil
}

func (p *Process) spawn() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(logFile, "\n=== %s: %s %s\n", time.Now().Format(time.RFC3339), p.path, strings.Join(redactArgs(p.args), " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttributes()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.stopped, p.waitErr = cmd, done, false, nil
	p.mu.Unlock()
	go p.wait(cmd, done, logFile)
	return nil
}

// bankURLFlag is the controller's flag whose value may carry the bank's credentials.
const bankURLFlag = "--bank-url="

// redactArgs are args fit for a log: a bank URL's password hidden (bank.RedactURL), since the
// logs are read, copied and attached to issues.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, arg := range args {
		if value, ok := strings.CutPrefix(arg, bankURLFlag); ok {
			arg = bankURLFlag + bank.RedactURL(value)
		}
		out[i] = arg
	}
	return out
}

// childAttributes puts the child in its own process group, so that a Ctrl-C in the terminal
// reaches only the stack, which then stops the children in order; and asks the kernel to kill
// the child if the stack itself dies, so that no orphan keeps a port or etcd's data.
func childAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func (p *Process) wait(cmd *exec.Cmd, done chan struct{}, logFile io.Closer) {
	err := cmd.Wait()
	_ = logFile.Close()
	p.mu.Lock()
	p.waitErr = err
	expected := p.stopped
	close(done)
	p.mu.Unlock()
	if !expected && p.report != nil {
		p.report(&ExitError{Name: p.name, Err: exitReason(err), LogPath: p.logPath, LogTail: tail(p.logPath, 20)})
	}
}

func exitReason(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

func (p *Process) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.startTimeout)
	defer cancel()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	var lastErr error
	for {
		probeCtx, cancelProbe := context.WithTimeout(ctx, 2*time.Second)
		lastErr = p.ready(probeCtx)
		cancelProbe()
		if lastErr == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (%v); last lines of %s:\n%s",
				p.name, exitReason(p.waitErrLocked()), p.logPath, tail(p.logPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("%s was not ready within %s (%v); last lines of %s:\n%s",
				p.name, p.startTimeout, lastErr, p.logPath, tail(p.logPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Process) waitErrLocked() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Stop sends SIGTERM and waits for the process to exit, sending SIGKILL after stopTimeout.
// Stopping a process that is not running does nothing.
func (p *Process) Stop() error {
	return p.signal(syscall.SIGTERM, p.stopTimeout)
}

// Kill sends SIGKILL and waits for the process to exit, as when a node loses a pod.
func (p *Process) Kill() error {
	return p.signal(syscall.SIGKILL, p.stopTimeout)
}

func (p *Process) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil || p.exited() {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.mu.Unlock()

	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return fmt.Errorf("%s did not stop within %s of %v: killed", p.name, grace, sig)
	case <-time.After(grace):
		return fmt.Errorf("%s did not exit within %s of SIGKILL", p.name, grace)
	}
}

// tail returns the last n lines of a file, at most 8 KiB of it.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer func() { _ = f.Close() }()
	const most = 8 << 10
	info, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	offset := max(info.Size()-most, 0)
	buf := make([]byte, info.Size()-offset)
	if _, err := f.ReadAt(buf, offset); err != nil && !errors.Is(err, io.EOF) {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
