package standin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// tailSize is how much of a child's last output an error quotes.
	tailSize = 2048

	// waitDelay bounds how long Stop waits for a killed child's output pipe
	// to close.
	waitDelay = 3 * time.Second

	// pollInterval is the pause between readiness checks.
	pollInterval = 50 * time.Millisecond

	// settle is how long a child must stay up after its readiness check
	// passed. A check can pass against another program that took the port,
	// and the child then dies on its bind within a millisecond or so.
	settle = 100 * time.Millisecond
)

// process is a child started in its own session. The session, not only the
// process group, is what stop kills: the RIE puts the function it runs in a
// process group of its own, so killing the RIE's group alone would leave a
// function that is busy in its handler running until the handler returns.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *TailWriter

	done    chan struct{} // closed once Wait has returned
	waitErr error         // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts name with args in dir. env nil means the parent's
// environment. Both output streams go to logw and to a short tail kept for
// error messages.
func startProcess(name string, args []string, dir string, env []string, logw io.Writer) (
	*process, error,
) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out := &TailWriter{w: logw}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}

	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exitError returns a non-nil error once the process has exited, quoting
// the end of its output. It wraps errPortTaken when the output says the
// port was in use.
func (p *process) exitError() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	tail := p.out.Tail()
	if strings.Contains(strings.ToLower(tail), "address already in use") {
		return fmt.Errorf("%s exited (%v): %w", p.name, p.waitErr, errPortTaken)
	}
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.waitErr, tail)
}

// waitReady calls ready until it reports true, the process exits, or ctx or
// timeout ends.
func (p *process) waitReady(
	ctx context.Context, timeout time.Duration, ready func(context.Context) bool,
) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if err := p.exitError(); err != nil {
			return err
		}
		if ready(ctx) {
			select {
			case <-p.done:
			case <-time.After(settle):
			}
			return p.exitError()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s was not ready within %s: %w", p.name, timeout, ctx.Err())
		case <-p.done:
		case <-tick.C:
		}
	}
}

// stop kills the process's session and waits for it. It is safe to call
// more than once and from several goroutines.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		sid := p.cmd.Process.Pid

		// kill the session leader's group first, so nothing new is spawned,
		// then every group left in the session
		_ = syscall.Kill(-sid, syscall.SIGKILL)
		for _, pgid := range sessionGroups(sid) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}

		select {
		case <-p.done:
		case <-time.After(waitDelay + time.Second):
			p.stopErr = fmt.Errorf("stopping %s (pid %d): still running after SIGKILL", p.name, sid)
		}
	})
	return p.stopErr
}

// sessionGroups lists the process groups of the processes in session sid.
// It reads /proc, so it finds nothing where there is none (macOS); there the
// group kill alone has to do.
func sessionGroups(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var groups []int
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st, ok := parseStat(stat)
		if ok && st.sid == sid && st.pgid != sid {
			groups = append(groups, st.pgid)
		}
	}
	return groups
}

// childProcesses lists the processes whose parent is ppid, exited ones
// that are not reaped yet included. It reads /proc, so elsewhere (macOS) it
// returns an error.
func childProcesses(ppid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// a process that is gone by now is simply left out
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if st, ok := parseStat(stat); ok && st.ppid == ppid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procStat is what this package reads from a /proc/PID/stat line.
type procStat struct {
	ppid int // parent process
	pgid int // process group
	sid  int // session
}

// parseStat reads the parent, process group and session out of a
// /proc/PID/stat line. The command name in parentheses may itself hold
// spaces and parentheses, so the fields are counted from the last ')'.
func parseStat(stat []byte) (procStat, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, false
	}
	// after the name: state ppid pgrp session ...
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 4 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	sid, err3 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, pgid: pgid, sid: sid}, true
}

// TailWriter passes output on to w and keeps its last 2 KiB for error
// messages; its zero value only keeps. Errors from w are dropped: a failing
// log must not block or kill the child. It is safe for concurrent use.
type TailWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (t *TailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	if t.w != nil {
		_, _ = t.w.Write(b)
	}
	return len(b), nil
}

// Tail returns the last output kept, trimmed.
func (t *TailWriter) Tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
