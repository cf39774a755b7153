package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultFunctionTimeout is the function timeout when FunctionOptions sets
// none.
const DefaultFunctionTimeout = 60 * time.Second

// TimeoutErrorType is InvokeError.Type when the function ran out of time, the
// name AWS itself gives that error. The RIE answers a plain text instead.
const TimeoutErrorType = "Sandbox.Timedout"

const (
	// functionStartTimeout bounds the wait for the RIE's ports; it takes
	// tens of milliseconds.
	functionStartTimeout = 10 * time.Second

	// invokeGrace is added to the function timeout to bound an Invoke whose
	// ctx has no deadline: the RIE answers a timeout soon after it.
	invokeGrace = 30 * time.Second

	invokePath = "/2015-03-31/functions/function/invocations"
)

// FunctionOptions says what StartFunction runs and how.
type FunctionOptions struct {
	// Name is AWS_LAMBDA_FUNCTION_NAME; it defaults to the name of the
	// directory Bootstrap is in.
	Name string

	// Bootstrap is the function binary, as BuildFunction returns it. It runs
	// in its own directory, as a function runs in /var/task.
	Bootstrap string

	// Env is added to the function's environment, after and over the
	// defaults: its configuration, and Moto.Env to reach moto.
	Env []string

	// Timeout is AWS_LAMBDA_FUNCTION_TIMEOUT, in whole seconds, rounded up.
	// Zero means DefaultFunctionTimeout.
	Timeout time.Duration

	// LogWriter receives the output of the RIE and of the function. Nil
	// discards it.
	LogWriter io.Writer
}

// Function is a function binary running under the Lambda Runtime Interface
// Emulator. Its methods are safe for concurrent use; Invoke runs one
// invocation at a time, because two overlapping ones crash the emulator.
type Function struct {
	// Name is the function's name, as its process sees it.
	Name string

	// InvokeURL is where the emulator takes invocations. It changes only
	// when Restart has to move to new ports.
	InvokeURL string

	rie     string
	binary  string
	timeout time.Duration
	env     []string
	logw    io.Writer
	client  *http.Client

	// invokeMu is held for a whole invocation or restart.
	invokeMu sync.Mutex

	// procMu guards the fields below and InvokeURL; it is never held
	// while waiting on the emulator, so Stop is never delayed.
	procMu  sync.Mutex
	proc    *process
	emuPort int
	apiPort int
	stopped bool
	stops   int // counts Stop calls, so a Restart can tell it raced one
}

// StartFunction runs opts.Bootstrap under the RIE binary rie, on free
// loopback ports, and waits until the emulator accepts connections. The
// function itself starts on the first invocation, as a cold start does.
//
// Its environment is PATH and HOME, the variables Lambda sets about the
// function (name, timeout, memory 128 MB, JSON log format), and opts.Env:
// nothing else from the parent leaks in. ctx bounds the start only.
func StartFunction(ctx context.Context, rie string, opts FunctionOptions) (*Function, error) {
	if opts.Bootstrap == "" {
		return nil, errors.New("starting a function: FunctionOptions.Bootstrap is empty")
	}
	binary, err := filepath.Abs(opts.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("starting a function: %w", err)
	}
	if !isExecutable(binary) {
		return nil, fmt.Errorf("starting a function: %s is not an executable file", binary)
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(filepath.Dir(binary))
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultFunctionTimeout
	}
	seconds := max(1, int((timeout+time.Second-1)/time.Second))
	logw := opts.LogWriter
	if logw == nil {
		logw = io.Discard
	}

	f := &Function{
		Name:    name,
		rie:     rie,
		binary:  binary,
		timeout: time.Duration(seconds) * time.Second,
		env:     functionEnv(name, seconds, opts.Env),
		logw:    logw,
		client:  &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	if err := f.start(ctx, 0, 0, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// functionEnv builds the environment of the RIE, which hands all of it on
// to the function. Later entries win, so extra overrides the defaults.
func functionEnv(name string, timeoutSeconds int, extra []string) []string {
	var env []string
	for _, key := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(key); ok {
			env = append(env, key+"="+v)
		}
	}
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(timeoutSeconds),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	)
	return append(env, extra...)
}

// start runs the emulator on emuPort and apiPort, or on new free ports when
// those are zero or taken. stops is the Stop count the caller saw; a Stop
// since then wins over this start.
func (f *Function) start(ctx context.Context, emuPort, apiPort, stops int) error {
	for attempt := 1; ; attempt++ {
		if emuPort == 0 || attempt > 1 {
			var err error
			if emuPort, apiPort, err = twoFreePorts(); err != nil {
				return fmt.Errorf("starting function %s: %w", f.Name, err)
			}
		}
		err := f.startOn(ctx, emuPort, apiPort, stops)
		if errors.Is(err, errPortTaken) && attempt < startAttempts {
			continue
		}
		return err
	}
}

func (f *Function) startOn(ctx context.Context, emuPort, apiPort, stops int) error {
	emuAddr := "127.0.0.1:" + strconv.Itoa(emuPort)
	apiAddr := "127.0.0.1:" + strconv.Itoa(apiPort)
	args := []string{
		"--runtime-interface-emulator-address", emuAddr,
		"--runtime-api-address", apiAddr,
		f.binary,
	}
	proc, err := startProcess(f.rie, args, filepath.Dir(f.binary), f.env, f.logw)
	if err != nil {
		return fmt.Errorf("starting function %s: %w", f.Name, err)
	}

	// both listeners: the runtime API's bind failing also ends the process
	err = proc.waitReady(ctx, functionStartTimeout, func(ctx context.Context) bool {
		return canConnect(ctx, apiAddr) && canConnect(ctx, emuAddr)
	})
	if err != nil {
		_ = proc.stop()
		return fmt.Errorf("starting function %s under %s: %w", f.Name, f.rie, err)
	}

	f.procMu.Lock()
	defer f.procMu.Unlock()
	if f.stops != stops {
		_ = proc.stop()
		return fmt.Errorf("starting function %s: stopped while starting", f.Name)
	}
	f.proc, f.emuPort, f.apiPort, f.stopped = proc, emuPort, apiPort, false
	f.InvokeURL = "http://" + emuAddr + invokePath
	return nil
}

func twoFreePorts() (int, int, error) {
	a, err := FreePort()
	if err != nil {
		return 0, 0, err
	}
	for {
		b, err := FreePort()
		if err != nil || b != a {
			return a, b, err
		}
	}
}

func canConnect(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// Invoke sends payload as the event and returns the function's response.
// When the function failed it returns the response together with an
// *InvokeError: a returned error (HTTP 200 with errorType and
// errorMessage), a panic or crash (HTTP 502), or a timeout (TimedOut).
// Other errors mean the emulator could not be reached.
//
// If ctx ends before the answer, the emulator is restarted: it would still
// be running the invocation, and the next one would crash it.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	f.invokeMu.Lock()
	defer f.invokeMu.Unlock()

	f.procMu.Lock()
	url, proc, stopped, stops := f.InvokeURL, f.proc, f.stopped, f.stops
	f.procMu.Unlock()
	if stopped {
		return nil, fmt.Errorf("invoking function %s: it is stopped", f.Name)
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout+invokeGrace)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("invoking function %s: %w", f.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		err = fmt.Errorf("invoking function %s: %w", f.Name, err)
		if exitErr := proc.exitError(); exitErr != nil {
			return nil, errors.Join(err, exitErr)
		}
		if ctx.Err() != nil {
			// the emulator still runs the invocation: start a fresh one
			rctx := context.WithoutCancel(ctx)
			if rerr := f.restart(rctx, stops); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoking function %s: reading the response: %w", f.Name, err)
	}

	if ierr := classifyResponse(resp.StatusCode, body); ierr != nil {
		ierr.Function = f.Name
		return body, ierr
	}
	return body, nil
}

// Restart stops the emulator and the function and starts them again: the
// next invocation is a cold start. It keeps the ports if it can, and
// otherwise moves to new ones and updates InvokeURL. It also starts a
// stopped Function again.
func (f *Function) Restart(ctx context.Context) error {
	f.invokeMu.Lock()
	defer f.invokeMu.Unlock()

	f.procMu.Lock()
	stops := f.stops
	f.procMu.Unlock()
	return f.restart(ctx, stops)
}

// restart runs with invokeMu held.
func (f *Function) restart(ctx context.Context, stops int) error {
	f.procMu.Lock()
	old, emuPort, apiPort := f.proc, f.emuPort, f.apiPort
	f.procMu.Unlock()

	if old != nil {
		if err := old.stop(); err != nil {
			return fmt.Errorf("restarting function %s: %w", f.Name, err)
		}
	}
	if err := f.start(ctx, emuPort, apiPort, stops); err != nil {
		return fmt.Errorf("restarting: %w", err)
	}
	return nil
}

// Kill kills the emulator and the function at once, as a crash would, also
// in the middle of an invocation, which then fails. Unlike Stop it does not
// wait for the invocation's lock, so it may be called from inside one (a
// fault hook); call Restart afterwards to bring the function back.
func (f *Function) Kill() error {
	f.procMu.Lock()
	proc := f.proc
	f.procMu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.stop(); err != nil {
		return fmt.Errorf("killing function %s: %w", f.Name, err)
	}
	return nil
}

// Stop kills the emulator and the function, also in the middle of an
// invocation. It is safe to call more than once.
func (f *Function) Stop() error {
	f.procMu.Lock()
	f.stopped = true
	f.stops++
	proc := f.proc
	f.procMu.Unlock()

	if proc == nil {
		return nil
	}
	if err := proc.stop(); err != nil {
		return fmt.Errorf("stopping function %s: %w", f.Name, err)
	}
	return nil
}

// FunctionPID returns the pid of the function binary running under the
// emulator, to read its memory use in /proc/PID. The emulator starts the
// binary, as its child, on the first invocation, and again on the next one
// after a crash, a timeout or Restart; until then there is no such process
// and FunctionPID returns an error. It reads /proc, so it works on Linux
// only.
func (f *Function) FunctionPID() (int, error) {
	f.procMu.Lock()
	proc, stopped := f.proc, f.stopped
	f.procMu.Unlock()
	if stopped || proc == nil {
		return 0, fmt.Errorf("finding the process of function %s: it is stopped", f.Name)
	}
	binary, err := os.Stat(f.binary)
	if err != nil {
		return 0, fmt.Errorf("finding the process of function %s: %w", f.Name, err)
	}

	rie := proc.cmd.Process.Pid
	children, err := childProcesses(rie)
	if err != nil {
		return 0, fmt.Errorf("finding the process of function %s: %w", f.Name, err)
	}
	var pids []int
	for _, pid := range children {
		// the same file, whatever symbolic links its path went through; a
		// child that has exited has no exe left and is skipped
		exe, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
		if err == nil && os.SameFile(exe, binary) {
			pids = append(pids, pid)
		}
	}
	switch len(pids) {
	case 1:
		return pids[0], nil
	case 0:
		return 0, fmt.Errorf("finding the process of function %s: the emulator (pid %d) runs no %s: "+
			"it starts it on the first invocation", f.Name, rie, f.binary)
	default:
		return 0, fmt.Errorf("finding the process of function %s: the emulator (pid %d) runs %d of %s: %v",
			f.Name, rie, len(pids), f.binary, pids)
	}
}

// InvokeError is a failed invocation: what the function, or the emulator on
// its behalf, answered.
type InvokeError struct {
	Function   string
	StatusCode int    // HTTP status of the emulator's answer
	Type       string // errorType, or TimeoutErrorType; may be empty
	Message    string // errorMessage, or the text of the answer
}

func (e *InvokeError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("function %s failed (HTTP %d): %s", e.Function, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("function %s failed (HTTP %d): %s: %s",
		e.Function, e.StatusCode, e.Type, e.Message)
}

// TimedOut reports whether the function ran out of time.
func (e *InvokeError) TimedOut() bool { return e.Type == TimeoutErrorType }

// timeoutPrefix starts the RIE's whole answer to a timed out invocation,
// "Task timed out after N.00 seconds", sent with HTTP 200.
var timeoutPrefix = []byte("Task timed out after ")

// classifyResponse turns an answer of the emulator into an *InvokeError, or
// nil when the function succeeded.
func classifyResponse(status int, body []byte) *InvokeError {
	ok := status >= 200 && status < 300
	text := bytes.TrimSpace(body)
	if ok && bytes.HasPrefix(text, timeoutPrefix) {
		return &InvokeError{StatusCode: status, Type: TimeoutErrorType, Message: string(text)}
	}

	var fnErr struct {
		Type    *string `json:"errorType"`
		Message *string `json:"errorMessage"`
	}
	if json.Unmarshal(text, &fnErr) == nil && (fnErr.Type != nil || fnErr.Message != nil) {
		e := &InvokeError{StatusCode: status}
		if fnErr.Type != nil {
			e.Type = *fnErr.Type
		}
		if fnErr.Message != nil {
			e.Message = *fnErr.Message
		}
		return e
	}

	if ok {
		return nil
	}
	msg := bytesTail(text)
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &InvokeError{StatusCode: status, Message: msg}
}
