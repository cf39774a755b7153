package faults

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/faultproxy"
	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// raceRounds is how often each race runs; RACE_ROUNDS overrides it (the
// issue asks for 50 in a row: RACE_ROUNDS=50 make test-faults).
func raceRounds() int {
	if n, err := strconv.Atoi(os.Getenv("RACE_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// A scheduled rotation and a bulk job for the same secret, the job arriving
// at each boundary of the rotation. The rule: a job never replaces a
// rotation in progress; it waits while the placeholder has no value, and
// otherwise finishes that rotation with its stored password.
func TestAScheduledRotationAndABulkJobConverge(t *testing.T) {
	for _, after := range []string{"placeholder", "createSecret", "setSecret", "testSecret"} {
		t.Run("job after "+after, func(t *testing.T) {
			for round := range raceRounds() {
				if err := scheduledVersusJob(t, after, round); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		})
	}
}

func scheduledVersusJob(t *testing.T, after string, round int) error {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	defer disarm(ctx)
	stack.Proxy.ResetCalls()
	stack.Sim.Reset()
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}})
	cred, err := seed(ctx, cell{"race", after, "job", strconv.Itoa(round)})
	if err != nil {
		return err
	}
	token, err := stack.BeginRotation(ctx, cred.arn)
	if err != nil {
		return err
	}
	steps := map[string]int{"placeholder": 0, "createSecret": 1, "setSecret": 2, "testSecret": 3}[after]
	for _, step := range localrun.Steps[:steps] {
		if err := stack.InvokeStep(ctx, step, cred.arn, token); err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
	}

	// the job arrives
	if err := stack.Enqueue(ctx, job(cred, cred.jobID)); err != nil {
		return err
	}
	b, err := stack.DeliverBatch(ctx)
	if err != nil {
		return err
	}
	if after == "placeholder" && len(b.Response.BatchItemFailures) != 1 {
		return fmt.Errorf("a job must wait while the placeholder has no value: %+v", b.Response)
	}
	if after != "placeholder" && len(b.Response.BatchItemFailures) != 0 {
		return fmt.Errorf("the job must finish the rotation in progress: %+v", b.Response)
	}
	if err := invariant(ctx, cred, "after the job"); err != nil {
		return err
	}

	// the scheduled rotation goes on, then the waiting job comes back
	for _, step := range localrun.Steps[steps:] {
		if err := stack.InvokeStep(ctx, step, cred.arn, token); err != nil {
			return fmt.Errorf("scheduled %s after the job: %w", step, err)
		}
	}
	if err := stack.ReleaseFailures(ctx, b); err != nil {
		return err
	}
	if err := drainJobs(ctx); err != nil {
		return err
	}
	got, err := stack.CheckCredential(ctx, cred.arn, cred.project, cred.username, cred.seed)
	if err != nil {
		return err
	}
	if !got.Converged() {
		return fmt.Errorf("not converged: %+v", got)
	}
	n, err := valuedVersions(ctx, cred.arn)
	if err != nil {
		return err
	}
	want := 2 // the job finished the scheduled rotation: one new password
	if after == "placeholder" {
		want = 3 // the job waited, then rotated on its own
	}
	if n != want {
		return fmt.Errorf("%d values, want %d", n, want)
	}
	if made := stack.Proxy.Count("secretsmanager", "GetRandomPassword"); made != want-1 {
		return fmt.Errorf("%d passwords generated, want %d", made, want-1)
	}
	return nil
}

// Two bulk jobs for the same secret in two invocations at once: the first
// is held at each of its Secrets Manager calls while the second runs whole.
func TestTwoBulkJobsForOneSecretConverge(t *testing.T) {
	second, err := standin.StartFunction(t.Context(), stack.RIE, standin.FunctionOptions{
		Name: "apinizer-bulk-2", Bootstrap: stack.BulkBootstrap, Env: stack.FunctionEnv,
		Timeout: functionTimeout, LogWriter: &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	for _, hold := range []struct {
		op    string
		phase faultproxy.Phase
	}{
		{"GetSecretValue", faultproxy.Before},
		{"GetRandomPassword", faultproxy.Before},
		{"PutSecretValue", faultproxy.Before},
		{"PutSecretValue", faultproxy.After},
		{"UpdateSecretVersionStage", faultproxy.Before},
	} {
		name := fmt.Sprintf("first held %s %s", map[faultproxy.Phase]string{faultproxy.Before: "before",
			faultproxy.After: "after"}[hold.phase], hold.op)
		t.Run(name, func(t *testing.T) {
			for round := range raceRounds() {
				if err := twoJobs(t, second, hold.op, hold.phase, round); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		})
	}
}

func twoJobs(t *testing.T, second *standin.Function, op string, phase faultproxy.Phase, round int) error {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	defer disarm(ctx)
	stack.Proxy.ResetCalls()
	stack.Sim.Reset()
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}})
	cred, err := seed(ctx, cell{"race", "two jobs", op, strconv.Itoa(round)})
	if err != nil {
		return err
	}

	// the first job is held at its call until the second one is done
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stack.Proxy.Add(faultproxy.Rule{Service: "secretsmanager", Operation: op, Phase: phase,
		Action: faultproxy.Pass, Hook: func() {
			once.Do(func() { close(held) })
			<-release
		}})
	if err := stack.Enqueue(ctx, job(cred, "first")); err != nil {
		return err
	}
	var first localrun.Batch
	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		first, firstErr = stack.DeliverBatch(ctx)
	}()
	select {
	case <-held:
	case <-done:
		return fmt.Errorf("the first job never reached %s: %v", op, firstErr)
	case <-ctx.Done():
		return ctx.Err()
	}
	stack.Proxy.Clear()

	// the second job, in another invocation, runs whole meanwhile
	if err := stack.Enqueue(ctx, job(cred, "second")); err != nil {
		return err
	}
	b2, err := stack.DeliverBatchTo(ctx, second)
	close(release)
	<-done
	if err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	if err := invariant(ctx, cred, "after both jobs"); err != nil {
		return err
	}
	for _, b := range []localrun.Batch{first, b2} {
		if err := stack.ReleaseFailures(ctx, b); err != nil {
			return err
		}
	}
	if err := drainJobs(ctx); err != nil {
		return err
	}
	got, err := stack.CheckCredential(ctx, cred.arn, cred.project, cred.username, cred.seed)
	if err != nil {
		return err
	}
	if !got.Converged() || !got.Rotated {
		return fmt.Errorf("not converged: %+v", got)
	}
	if n, err := valuedVersions(ctx, cred.arn); err != nil || n > 3 {
		return fmt.Errorf("%d values (two jobs make at most two passwords): %v", n, err)
	}
	if made := stack.Proxy.Count("secretsmanager", "GetRandomPassword"); made > 2 {
		return fmt.Errorf("%d passwords generated by two jobs", made)
	}
	return nil
}
