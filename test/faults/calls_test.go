package faults

import (
	"context"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

// writeOps are the Secrets Manager calls that share the account's 50
// writes per second.
var writeOps = []string{"PutSecretValue", "UpdateSecretVersionStage"}

func secretsManagerCalls() (all, writes int) {
	all = stack.Proxy.Count("secretsmanager", "")
	for _, op := range writeOps {
		writes += stack.Proxy.Count("secretsmanager", op)
	}
	return all, writes
}

// Secrets Manager calls, counted at the proxy: a bulk job makes at most
// five and two writes; a scheduled rotation at most ten and two writes. (The token secret is read
// once per cold start, before these counts: the functions are warm.)
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	defer disarm(ctx)
	stack.Sim.Reset()
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}})

	// warm both functions up, so the token read is not counted
	warm, err := seed(ctx, cell{"calls", "warm", "", ""})
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.Enqueue(ctx, job(warm, "warm")); err != nil {
		t.Fatal(err)
	}
	if err := drainJobs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stack.ScheduledRotation(ctx, warm.arn); err != nil {
		t.Fatal(err)
	}

	c, err := seed(ctx, cell{"calls", "bulk", "", ""})
	if err != nil {
		t.Fatal(err)
	}
	stack.Proxy.ResetCalls()
	if err := stack.Enqueue(ctx, job(c, "count")); err != nil {
		t.Fatal(err)
	}
	if err := drainJobs(ctx); err != nil {
		t.Fatal(err)
	}
	all, writes := secretsManagerCalls()
	t.Logf("bulk job: %d Secrets Manager calls, %d writes", all, writes)
	if all > 5 || writes != 2 {
		t.Errorf("bulk job: %d calls and %d writes, want at most 5 and exactly 2", all, writes)
	}

	stack.Proxy.ResetCalls()
	token, err := stack.BeginRotation(ctx, c.arn)
	if err != nil {
		t.Fatal(err)
	}
	stack.Proxy.ResetCalls() // the placeholder is Secrets Manager's own write
	steps, err := stack.ResumeRotation(ctx, c.arn, token)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Err != nil {
			t.Fatalf("%s: %v", s.Step, s.Err)
		}
	}
	all, writes = secretsManagerCalls()
	t.Logf("scheduled rotation: %d Secrets Manager calls, %d writes", all, writes)
	// every step describes the secret; createSecret reads both versions and
	// the later steps find them in the warm function's version cache
	if writes != 2 || all > 10 {
		t.Errorf("scheduled rotation: %d calls and %d writes, want at most 10 and exactly 2", all, writes)
	}
}
