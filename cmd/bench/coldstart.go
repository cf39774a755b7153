package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apinizer-rotation/rotator/internal/standin"
)

const (
	// nextPath is where a Lambda runtime asks the Runtime API for its next
	// invocation. Its first request there ends the function's init phase,
	// which is what a cold start costs beyond the sandbox itself.
	nextPath = "/2018-06-01/runtime/invocation/next"

	// coldStartTimeout bounds one cold start run; a Go bootstrap needs
	// milliseconds.
	coldStartTimeout = 10 * time.Second

	// pythonTimeout bounds one run of python3 -c 'import boto3'.
	pythonTimeout = 30 * time.Second

	// reapDelay bounds the wait for a finished child's output pipes to
	// close, should something it started still hold them.
	reapDelay = 3 * time.Second

	// outputTailSize is how much of a child's last output an error quotes.
	outputTailSize = 2048
)

// errNoBoto3 is returned by pythonImport when the python3 on PATH cannot
// import boto3.
var errNoBoto3 = errors.New("python3 cannot import boto3 (pip install boto3, or make tools for moto)")

// coldStart starts the function binary bootstrap runs times, each against
// a fresh stand-in for the Lambda Runtime API, and returns for each run the
// time from starting the process to its first request for an invocation.
// An uncounted warm-up run goes first, so that the file cache favours no
// run. Each process is killed and reaped before the next one starts.
//
// The process runs in bootstrap's directory, as a function runs in
// /var/task, with only PATH, HOME, env (the function's configuration) and
// AWS_LAMBDA_RUNTIME_API in its environment.
func coldStart(ctx context.Context, bootstrap string, env []string, runs int) ([]time.Duration, error) {
	if runs < 1 {
		return nil, fmt.Errorf("measuring cold starts: runs must be at least 1, got %d", runs)
	}
	bin, err := filepath.Abs(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("measuring cold starts of %s: %w", bootstrap, err)
	}

	if _, err := coldStartOnce(ctx, bin, env); err != nil {
		return nil, fmt.Errorf("cold start of %s (warm-up run): %w", bin, err)
	}
	ds := make([]time.Duration, 0, runs)
	for i := range runs {
		d, err := coldStartOnce(ctx, bin, env)
		if err != nil {
			return nil, fmt.Errorf("cold start of %s (run %d of %d): %w", bin, i+1, runs, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// coldStartOnce runs bin once against a new Runtime API stand-in and
// returns the time until its first request for an invocation.
func coldStartOnce(ctx context.Context, bin string, env []string) (time.Duration, error) {
	api, err := startRuntimeAPI()
	if err != nil {
		return 0, err
	}
	defer api.close()

	out := &standin.TailWriter{}
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	// the stand-in's address goes last: of duplicate keys the last one wins
	cmd.Env = childEnv(append(slices.Clip(env), "AWS_LAMBDA_RUNTIME_API="+api.addr))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = reapDelay

	timer := time.NewTimer(coldStartTimeout)
	defer timer.Stop()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting it: %w", err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	// kill and reap it however the run ends; Kill fails harmlessly on a
	// process that has already exited
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	select {
	case at := <-api.first:
		return at.Sub(start), nil
	case <-exited:
		return 0, fmt.Errorf("it exited (%v) before asking for an invocation%s%s",
			waitErr, api.others(), quote(out))
	case <-timer.C:
		return 0, fmt.Errorf("it did not ask for an invocation within %s%s%s",
			coldStartTimeout, api.others(), quote(out))
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for its first request: %w", ctx.Err())
	}
}

// runtimeAPI stands in for the Lambda Runtime API just far enough to see
// a runtime's first request for an invocation: it notes the time and holds
// the request unanswered until the runtime goes away or close is called.
type runtimeAPI struct {
	addr  string         // host:port, for AWS_LAMBDA_RUNTIME_API
	first chan time.Time // receives the time of the first GET nextPath
	srv   *http.Server
	quit  chan struct{} // closed by close, to release held requests

	mu    sync.Mutex
	other []string // requests other than GET nextPath, for error messages
}

// startRuntimeAPI serves a runtimeAPI on a free loopback port.
func startRuntimeAPI() (*runtimeAPI, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the Runtime API stand-in: %w", err)
	}
	api := &runtimeAPI{
		addr:  l.Addr().String(),
		first: make(chan time.Time, 1),
		quit:  make(chan struct{}),
	}
	api.srv = &http.Server{Handler: http.HandlerFunc(api.serve), ReadHeaderTimeout: coldStartTimeout}
	go func() { _ = api.srv.Serve(l) }() // returns http.ErrServerClosed on close
	return api, nil
}

func (a *runtimeAPI) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if r.Method != http.MethodGet || r.URL.Path != nextPath {
		a.mu.Lock()
		a.other = append(a.other, r.Method+" "+r.URL.Path)
		a.mu.Unlock()
		http.Error(w, "not served by the bench's Runtime API stand-in", http.StatusNotFound)
		return
	}
	select {
	case a.first <- at: // the first one only; a retry is held all the same
	default:
	}
	select {
	case <-r.Context().Done():
	case <-a.quit:
	}
}

// others describes the requests other than for an invocation, such as an
// init error report, or returns "" when there were none.
func (a *runtimeAPI) others() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.other) == 0 {
		return ""
	}
	return " (it sent " + strings.Join(a.other, ", ") + ")"
}

// close releases held requests and stops the server.
func (a *runtimeAPI) close() {
	close(a.quit)
	_ = a.srv.Close()
}

// pythonImport times python3 -c 'import boto3' runs times, after an
// uncounted warm-up run: what the reference Python rotation templates pay
// at cold start before their handler runs. It runs the interpreter the
// python3 on PATH resolves to, with only PATH and HOME in its environment.
// It returns an error wrapping errNoBoto3 when boto3 cannot be imported.
func pythonImport(ctx context.Context, runs int) ([]time.Duration, error) {
	if runs < 1 {
		return nil, fmt.Errorf("timing the boto3 import: runs must be at least 1, got %d", runs)
	}
	python, err := pythonExecutable(ctx)
	if err != nil {
		return nil, fmt.Errorf("timing the boto3 import: %w", err)
	}
	if _, err := importBoto3(ctx, python); err != nil {
		return nil, fmt.Errorf("timing the boto3 import (warm-up run): %w", err)
	}
	ds := make([]time.Duration, 0, runs)
	for i := range runs {
		d, err := importBoto3(ctx, python)
		if err != nil {
			return nil, fmt.Errorf("timing the boto3 import (run %d of %d): %w", i+1, runs, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// pythonExecutable returns the interpreter that the python3 on PATH runs.
// A version manager's shim (pyenv's is a bash script) would otherwise add
// its own start-up to every timed run, which Lambda's runtime does not pay.
func pythonExecutable(ctx context.Context) (string, error) {
	path, err := exec.LookPath("python3")
	if err != nil {
		return "", fmt.Errorf("finding python3: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, pythonTimeout)
	defer cancel()
	// the parent's environment, which a shim may need to pick the version
	out, err := exec.CommandContext(ctx, path, "-c", "import sys; print(sys.executable or '')").Output()
	if err != nil {
		return "", fmt.Errorf("asking %s for its interpreter: %w", path, err)
	}
	if exe := strings.TrimSpace(string(out)); exe != "" {
		return exe, nil
	}
	return path, nil
}

// importBoto3 runs python -c 'import boto3' once and returns how long the
// process took, from start to exit.
func importBoto3(ctx context.Context, python string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, pythonTimeout)
	defer cancel()
	out := &standin.TailWriter{}
	cmd := exec.CommandContext(ctx, python, "-c", "import boto3")
	cmd.Env = childEnv(nil)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = reapDelay

	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	switch {
	case err == nil:
		return elapsed, nil
	case ctx.Err() != nil:
		return 0, fmt.Errorf("%s -c 'import boto3': %w", python, ctx.Err())
	case strings.Contains(out.Tail(), "No module named 'boto3'"):
		return 0, fmt.Errorf("%s: %w", python, errNoBoto3)
	default:
		return 0, fmt.Errorf("%s -c 'import boto3': %w%s", python, err, quote(out))
	}
}

// childEnv is a child's whole environment: PATH and HOME from ours, then
// extra. Nothing else leaks in from the parent.
func childEnv(extra []string) []string {
	var env []string
	for _, key := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(key); ok {
			env = append(env, key+"="+v)
		}
	}
	return append(env, extra...)
}

// median returns the middle value of ds, the mean of the two middle values
// when there is an even number of them, and 0 when ds is empty. ds is not
// changed.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return s[mid-1] + (s[mid]-s[mid-1])/2
}

// quote returns the tail for the end of an error message.
func quote(t *standin.TailWriter) string {
	if s := t.Tail(); s != "" {
		return "; its last output:\n" + s
	}
	return "; it wrote no output"
}

// outputTail returns the end of a command's output, trimmed, for an error
// message.
func outputTail(b []byte) string {
	if len(b) > outputTailSize {
		b = b[len(b)-outputTailSize:]
	}
	return strings.TrimSpace(string(b))
}
