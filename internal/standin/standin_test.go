package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// quietLog collects a stand-in's output and prints it only if the test
// failed. Register it before the stand-in, so that it prints after Stop.
func quietLog(t *testing.T) *lockedBuffer {
	t.Helper()
	b := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() && b.String() != "" {
			t.Logf("stand-in output:\n%s", b.String())
		}
	})
	return b
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func refusesConnections(t *testing.T, rawURL string) bool {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return true
	}
	conn.Close()
	return false
}

// processGone reports whether pid has exited: no longer in /proc, or a
// zombie nobody reaped.
func processGone(t *testing.T, pid int) bool {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		t.Fatalf("reading the state of pid %d: %v", pid, err)
	}
	i := bytes.LastIndexByte(stat, ')')
	state := strings.Fields(string(stat[i+1:]))[0]
	return state == "Z" || state == "X"
}

func TestMoto(t *testing.T) {
	ctx := context.Background()
	logw := quietLog(t)

	start := time.Now()
	m, err := StartMoto(ctx, logw)
	if err != nil {
		t.Fatalf("StartMoto: %v", err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	t.Logf("moto answered on %s after %s", m.URL, time.Since(start).Round(time.Millisecond))

	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatalf("AWSConfig: %v", err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	q := sqs.NewFromConfig(cfg)

	t.Run("a secret and a queue can be created through the SDK", func(t *testing.T) {
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:         aws.String("standin/test"),
			SecretString: aws.String(`{"username":"u","password":"p"}`),
		})
		if err != nil {
			t.Fatalf("CreateSecret: %v", err)
		}
		got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId:     aws.String("standin/test"),
			VersionStage: aws.String("AWSCURRENT"),
		})
		if err != nil {
			t.Fatalf("GetSecretValue: %v", err)
		}
		if want := `{"username":"u","password":"p"}`; aws.ToString(got.SecretString) != want {
			t.Errorf("secret string: expect %s, got %s", want, aws.ToString(got.SecretString))
		}

		created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("standin-test")})
		if err != nil {
			t.Fatalf("CreateQueue: %v", err)
		}
		if !strings.HasPrefix(aws.ToString(created.QueueUrl), m.URL) {
			t.Errorf("queue URL: expect it under %s, got %s", m.URL, aws.ToString(created.QueueUrl))
		}
	})

	t.Run("Reset removes every secret and queue", func(t *testing.T) {
		if err := m.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		secrets, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		if err != nil {
			t.Fatalf("ListSecrets: %v", err)
		}
		if len(secrets.SecretList) != 0 {
			t.Errorf("secrets after Reset: expect none, got %d", len(secrets.SecretList))
		}
		queues, err := q.ListQueues(ctx, &sqs.ListQueuesInput{})
		if err != nil {
			t.Fatalf("ListQueues: %v", err)
		}
		if len(queues.QueueUrls) != 0 {
			t.Errorf("queues after Reset: expect none, got %v", queues.QueueUrls)
		}
	})

	t.Run("Env points the SDK's standard variables at moto", func(t *testing.T) {
		env := m.Env()
		for _, want := range []string{
			"AWS_ENDPOINT_URL=" + m.URL,
			"AWS_REGION=us-east-1",
			"AWS_DEFAULT_REGION=us-east-1",
			"AWS_EC2_METADATA_DISABLED=true",
		} {
			if !slices.Contains(env, want) {
				t.Errorf("Env: expect %s in %v", want, env)
			}
		}
	})

	t.Run("Stop kills the server and can be called again", func(t *testing.T) {
		if err := m.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if !refusesConnections(t, m.URL) {
			t.Errorf("after Stop, %s still accepts connections", m.URL)
		}
		if err := m.Stop(); err != nil {
			t.Errorf("second Stop: expect nil, got %v", err)
		}
	})
}

// echoReply is what testdata/echofn answers.
type echoReply struct {
	Event json.RawMessage `json:"event"`
	Env   string          `json:"env"`
	PID   int             `json:"pid"`
}

func startEcho(t *testing.T, timeout time.Duration) *Function {
	t.Helper()
	ctx := context.Background()
	logw := quietLog(t)

	rie, err := EnsureRIE(ctx)
	if err != nil {
		t.Fatalf("EnsureRIE: %v", err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("RepoRoot: %v", err)
	}
	bootstrap := filepath.Join(t.TempDir(), "echofn", "bootstrap")
	if err := buildBootstrap(ctx, root, "./internal/standin/testdata/echofn", bootstrap); err != nil {
		t.Fatalf("building echofn: %v", err)
	}

	start := time.Now()
	f, err := StartFunction(ctx, rie, FunctionOptions{
		Name:      "echo",
		Bootstrap: bootstrap,
		Env:       []string{"ECHO_GREETING=hello"},
		Timeout:   timeout,
		LogWriter: logw,
	})
	if err != nil {
		t.Fatalf("StartFunction: %v", err)
	}
	t.Cleanup(func() { _ = f.Stop() })
	t.Logf("emulator accepted connections after %s", time.Since(start).Round(time.Millisecond))
	return f
}

func invokeEcho(t *testing.T, f *Function, event string) echoReply {
	t.Helper()
	body, err := f.Invoke(context.Background(), []byte(event))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", event, err)
	}
	var r echoReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("Invoke(%s): answer %q: %v", event, body, err)
	}
	return r
}

func invokeError(t *testing.T, f *Function, event string) *InvokeError {
	t.Helper()
	_, err := f.Invoke(context.Background(), []byte(event))
	var ierr *InvokeError
	if !errors.As(err, &ierr) {
		t.Fatalf("Invoke(%s): expect an *InvokeError, got %v", event, err)
	}
	return ierr
}

func TestFunction(t *testing.T) {
	t.Setenv("STANDIN_PARENT_ONLY", "leaked")
	f := startEcho(t, time.Second)
	var firstPID int

	t.Run("an event is echoed with the function's environment", func(t *testing.T) {
		start := time.Now()
		r := invokeEcho(t, f, `{"n":1,"env":"ECHO_GREETING"}`)
		t.Logf("first (cold) invocation took %s", time.Since(start).Round(time.Millisecond))
		if string(r.Event) != `{"n":1,"env":"ECHO_GREETING"}` {
			t.Errorf("event: expect it echoed, got %s", r.Event)
		}
		if r.Env != "hello" {
			t.Errorf("ECHO_GREETING: expect hello, got %q", r.Env)
		}
		firstPID = r.PID
	})

	t.Run("the function sees Lambda's variables but not the parent's", func(t *testing.T) {
		for name, want := range map[string]string{
			"AWS_LAMBDA_FUNCTION_NAME":        "echo",
			"AWS_LAMBDA_FUNCTION_TIMEOUT":     "1",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
			"STANDIN_PARENT_ONLY":             "",
		} {
			r := invokeEcho(t, f, `{"env":"`+name+`"}`)
			if r.Env != want {
				t.Errorf("%s: expect %q, got %q", name, want, r.Env)
			}
		}
	})

	t.Run("sequential invocations reuse the warm process", func(t *testing.T) {
		for i := range 5 {
			r := invokeEcho(t, f, `{"n":`+strconv.Itoa(i)+`}`)
			if r.PID != firstPID {
				t.Errorf("invocation %d: expect pid %d, got %d", i, firstPID, r.PID)
			}
		}
	})

	t.Run("a handler error is an InvokeError with its message", func(t *testing.T) {
		ierr := invokeError(t, f, `{"fail":true}`)
		want := InvokeError{
			Function: "echo", StatusCode: 200,
			Type: "errorString", Message: "echofn was asked to fail",
		}
		if *ierr != want {
			t.Errorf("expect %+v, got %+v", want, *ierr)
		}
	})

	t.Run("a panic is an InvokeError with HTTP 502", func(t *testing.T) {
		ierr := invokeError(t, f, `{"panic":true}`)
		if ierr.StatusCode != 502 || ierr.Message != "echofn was asked to panic" {
			t.Errorf("expect HTTP 502 %q, got %+v", "echofn was asked to panic", ierr)
		}
	})

	t.Run("after a panic the next invocation is a cold start", func(t *testing.T) {
		r := invokeEcho(t, f, `{}`)
		if r.PID == firstPID {
			t.Errorf("expect a new process, got the old pid %d", r.PID)
		}
	})

	t.Run("a timeout is an InvokeError that says so", func(t *testing.T) {
		ierr := invokeError(t, f, `{"sleepMs":3000}`)
		timedOut := strings.Contains(ierr.Message, "Task timed out after 1")
		if !ierr.TimedOut() || ierr.StatusCode != 200 || !timedOut {
			t.Errorf("expect a timeout after 1 s, got %+v", ierr)
		}
		invokeEcho(t, f, `{}`)
	})

	t.Run("concurrent callers are served one at a time", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				_, err := f.Invoke(context.Background(), []byte(`{"sleepMs":20,"n":`+strconv.Itoa(i)+`}`))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Invoke: %v", err)
			}
		}
	})

	t.Run("an abandoned invocation leaves a fresh emulator behind", func(t *testing.T) {
		warm := invokeEcho(t, f, `{}`).PID
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := f.Invoke(ctx, []byte(`{"sleepMs":900}`))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("expect context.DeadlineExceeded, got %v", err)
		}
		if !processGone(t, warm) {
			t.Errorf("the function process %d, busy in its handler, still runs", warm)
		}
		if r := invokeEcho(t, f, `{}`); r.PID == warm {
			t.Errorf("expect a new process, got the old pid %d", r.PID)
		}
	})

	t.Run("Restart gives a cold start on the same URL", func(t *testing.T) {
		before, url := invokeEcho(t, f, `{}`).PID, f.InvokeURL
		if err := f.Restart(context.Background()); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if f.InvokeURL != url {
			t.Logf("Restart moved from %s to %s", url, f.InvokeURL)
		}
		if !processGone(t, before) {
			t.Errorf("the old function process %d still runs", before)
		}
		if r := invokeEcho(t, f, `{"n":2}`); r.PID == before || string(r.Event) != `{"n":2}` {
			t.Errorf("expect a new process echoing the event, got %+v", r)
		}
	})

	t.Run("Stop kills the emulator and the function and can be called again", func(t *testing.T) {
		pid := invokeEcho(t, f, `{}`).PID
		if err := f.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if !refusesConnections(t, f.InvokeURL) {
			t.Errorf("after Stop, %s still accepts connections", f.InvokeURL)
		}
		if !processGone(t, pid) {
			t.Errorf("after Stop, the function process %d still runs", pid)
		}
		if err := f.Stop(); err != nil {
			t.Errorf("second Stop: expect nil, got %v", err)
		}
		if _, err := f.Invoke(context.Background(), []byte(`{}`)); err == nil {
			t.Error("Invoke after Stop: expect an error, got nil")
		}
	})
}

func TestStopKillsAFunctionBusyInItsHandler(t *testing.T) {
	f := startEcho(t, 10*time.Second)
	pid := invokeEcho(t, f, `{}`).PID

	done := make(chan error, 1)
	go func() {
		_, err := f.Invoke(context.Background(), []byte(`{"sleepMs":5000}`))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	if err := f.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := <-done; err == nil {
		t.Error("the interrupted Invoke: expect an error, got nil")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Stop took %s: it waited for the handler", elapsed)
	}
	if !processGone(t, pid) {
		t.Errorf("the function process %d, busy in its handler, still runs", pid)
	}
}

func TestFunctionPIDFindsTheBinaryUnderTheEmulator(t *testing.T) {
	f := startEcho(t, 5*time.Second)
	if pid, err := f.FunctionPID(); err == nil {
		t.Errorf("before the first invocation: expect an error, got pid %d", pid)
	}

	want := invokeEcho(t, f, `{}`).PID
	pid, err := f.FunctionPID()
	if err != nil {
		t.Fatalf("FunctionPID: %v", err)
	}
	if pid != want {
		t.Errorf("expect the pid the function itself reported, %d, got %d", want, pid)
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatalf("reading the executable of pid %d: %v", pid, err)
	}
	if binary, err := filepath.EvalSymlinks(f.binary); err != nil || exe != binary {
		t.Errorf("executable of pid %d: expect %s, got %s (%v)", pid, f.binary, exe, err)
	}
	hwm := vmHWM(t, pid)
	if hwm <= 1<<20 {
		t.Errorf("VmHWM of pid %d: expect more than 1 MiB, got %d bytes", pid, hwm)
	}
	t.Logf("function pid %d, peak RSS %.1f MiB", pid, float64(hwm)/(1<<20))

	if err := f.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pid, err := f.FunctionPID(); err == nil {
		t.Errorf("after Stop: expect an error, got pid %d", pid)
	}
}

// vmHWM returns the peak resident set size of pid in bytes, from
// /proc/PID/status.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading the status of pid %d: %v", pid, err)
	}
	for line := range strings.Lines(string(status)) {
		if value, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("pid %d: %q: %v", pid, line, err)
			}
			return kib * 1024
		}
	}
	t.Fatalf("pid %d: no VmHWM in its status:\n%s", pid, status)
	return 0
}

func TestClassifyResponse(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   *InvokeError
	}{
		{"a result is no error", 200, `{"ok":true}`, nil},
		{"a result that is not an object is no error", 200, `[1,2]`, nil},
		{"an empty result is no error", 200, ``, nil},
		{
			"a returned error carries type and message", 200,
			`{"errorMessage":"boom","errorType":"errorString"}`,
			&InvokeError{StatusCode: 200, Type: "errorString", Message: "boom"},
		},
		{
			"a panic carries status 502", 502,
			`{"errorMessage":"oops","errorType":"string","stackTrace":[]}`,
			&InvokeError{StatusCode: 502, Type: "string", Message: "oops"},
		},
		{
			"a timeout is recognised by the emulator's text", 200,
			`Task timed out after 3.00 seconds`,
			&InvokeError{
				StatusCode: 200, Type: TimeoutErrorType,
				Message: "Task timed out after 3.00 seconds",
			},
		},
		{
			"an empty failure takes the status text", 500, ``,
			&InvokeError{StatusCode: 500, Message: "Internal Server Error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyResponse(tt.status, []byte(tt.body))
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("expect %+v, got %+v", tt.want, got)
			}
		})
	}
}

func TestBuildFunctionNamesAMissingFunction(t *testing.T) {
	_, err := BuildFunction(context.Background(), "no-such-function", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "building function no-such-function") {
		t.Errorf("expect an error naming the function, got %v", err)
	}
}

func TestParseStat(t *testing.T) {
	st, ok := parseStat([]byte("42 (a (b) c) S 1 40 39 0 -1"))
	if want := (procStat{ppid: 1, pgid: 40, sid: 39}); !ok || st != want {
		t.Errorf("expect %+v, got %+v, %v", want, st, ok)
	}
}

func TestRestartMovesToNewPortsWhenItsOwnAreTaken(t *testing.T) {
	f := startEcho(t, 5*time.Second)
	old := f.InvokeURL
	if err := f.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// another program takes the emulator's port while it is down
	u, err := url.Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("taking %s: %v", u.Host, err)
	}
	defer l.Close()

	if err := f.Restart(context.Background()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if f.InvokeURL == old {
		t.Fatalf("InvokeURL: expect a new one, got the taken %s", old)
	}
	if r := invokeEcho(t, f, `{"n":3}`); string(r.Event) != `{"n":3}` {
		t.Errorf("event: expect it echoed, got %s", r.Event)
	}
}
