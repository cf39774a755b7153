package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// stack is shared by the tests of this package; each test uses secrets of
// its own and sets the simulator's configuration it needs.
var stack *localrun.Stack

// logs holds everything the stand-ins and the functions printed.
var logs lockedBuffer

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	stack, err = localrun.Start(ctx, localrun.Options{Log: &logs, FunctionTimeout: 30 * time.Second})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()

	// nothing any test did may have leaked a password or the token into a
	// log line, an error or a dead-letter record
	if code == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		secrets, err := usedSecrets(ctx)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "listing the secrets used:", err)
			code = 1
		} else if len(secrets) < 2 && flag.Lookup("test.run").Value.String() == "" {
			fmt.Fprintf(os.Stderr, "leak scan: only %d secrets found: the run did not do what it should\n", len(secrets))
			code = 1
		} else if leaks := findLeaks(secrets, map[string]string{
			"the logs": logs.String(), "the dead-letter records": deadLetterBodies.String(),
			"the errors the functions returned": strings.Join(stack.InvokeErrors(), "\n"),
		}); len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "LEAK:", strings.Join(leaks, "; "))
			code = 1
		} else {
			fmt.Printf("leak scan: %d passwords and the token, in %d forms each, found in none of %d bytes of logs "+
				"(metrics included), %d bytes of dead-letter records and %d returned errors\n",
				len(secrets), len(forms("x")), len(logs.String()), len(deadLetterBodies.String()),
				len(stack.InvokeErrors()))
		}
	}
	stack.Close()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "last log lines:\n"+tail(logs.String(), 40))
	}
	os.Exit(code)
}

// lockedBuffer is a bytes.Buffer safe for the writers of several processes.
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

// envelopes are the simulator's answer styles every scenario runs in.
var envelopes = []struct {
	name string
	cfg  simulator.Config
}{
	{"seed envelope", simulator.Config{Envelope: simulator.EnvelopeSeed, Shape: simulator.ShapeEnvironments}},
	{"current envelope", simulator.Config{Envelope: simulator.EnvelopeCurrent, Shape: simulator.ShapeEnvironments}},
	{"current envelope with pods", simulator.Config{Envelope: simulator.EnvelopeCurrent, Shape: simulator.ShapePods}},
}

// useSimulator sets the simulator's configuration, keeping the stack's
// token accepted, and restores the default when the test ends.
func useSimulator(t *testing.T, cfg simulator.Config) {
	t.Helper()
	cfg.Tokens = append(cfg.Tokens, stack.Token)
	stack.Sim.SetConfig(cfg)
	t.Cleanup(func() { stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}}) })
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deadLetterBodies keeps every dead-letter message read, for the leak scan.
var deadLetterBodies lockedBuffer

// deadLetters reads and removes every record waiting in the dead-letter
// queue.
func deadLetters(t *testing.T) []deadletter.Record {
	t.Helper()
	records, raws, err := stack.DeadLetters(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range raws {
		fmt.Fprintln(&deadLetterBodies, r)
	}
	return records
}

// drainDeadLetters empties the dead-letter queue before a test starts.
func drainDeadLetters(t *testing.T) { deadLetters(t) }

var seq struct {
	mu sync.Mutex
	n  int
}

// credential seeds a credential with a unique name and returns its secret.
type credential struct {
	arn, project, username, seed string
}

func seedCredential(t *testing.T, project, username string) credential {
	t.Helper()
	return seedCredentialAt(t, project, username, "")
}

// seedCredentialAt is seedCredential with suffix added to the secret's
// name (apinizer/e2e/<username>-<n><suffix>).
func seedCredentialAt(t *testing.T, project, username, suffix string) credential {
	t.Helper()
	seq.mu.Lock()
	seq.n++
	n := seq.n
	seq.mu.Unlock()
	c := credential{project: project, username: fmt.Sprintf("%s-%d", username, n),
		seed: fmt.Sprintf("Seed-Password-%d-x", n)}
	arn, err := stack.SeedCredential(testContext(t), "apinizer/e2e/"+c.username+suffix,
		c.project, c.username, c.seed)
	if err != nil {
		t.Fatal(err)
	}
	c.arn = arn
	return c
}

func check(t *testing.T, c credential) localrun.Check {
	t.Helper()
	got, err := stack.CheckCredential(testContext(t), c.arn, c.project, c.username, c.seed)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Held() {
		t.Fatalf("%s: the password Apinizer holds is in neither AWSCURRENT nor AWSPENDING", c.username)
	}
	return got
}

func tail(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
