package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/faultproxy"
	"github.com/apinizer-rotation/rotator/internal/simulator"
)

// S9: a batch of ten goroutines shares one SDK client. Throttled calls are
// retried and the batch still succeeds; a dead-letter send that keeps
// failing leaves its messages reported, never lost.
func TestThrottledCallsSlowABatchAndLoseNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	defer disarm(ctx)

	batch := func(name string, failDeploy bool) []credential {
		t.Helper()
		stack.Sim.Reset()
		cfg := simulator.Config{Tokens: []string{stack.Token}}
		var creds []credential
		for i := range 10 {
			c, err := seed(ctx, cell{"throttle", name, fmt.Sprint(i), ""})
			if err != nil {
				t.Fatal(err)
			}
			creds = append(creds, c)
			if failDeploy {
				cfg.DeployFailures = append(cfg.DeployFailures,
					simulator.DeployFailure{Username: c.username, Environment: "staging"})
			}
		}
		stack.Sim.SetConfig(cfg)
		var bodies []string
		for _, c := range creds {
			bodies = append(bodies, job(c, c.jobID))
		}
		if err := stack.Enqueue(ctx, bodies...); err != nil {
			t.Fatal(err)
		}
		return creds
	}
	throttle := func(op string, times int) {
		stack.Proxy.Add(faultproxy.Rule{Service: map[string]string{"SendMessageBatch": "sqs"}[op],
			Operation: op, Times: times, Action: faultproxy.Fail, Status: 400, Code: "ThrottlingException",
			Message: "Rate exceeded"})
	}

	t.Run("secrets manager writes throttled", func(t *testing.T) {
		creds := batch("writes", false)
		throttle("PutSecretValue", 12)
		b, err := stack.DeliverBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Response.BatchItemFailures) != 0 {
			t.Errorf("throttling turned into failures: %+v", b.Response.BatchItemFailures)
		}
		for _, c := range creds {
			if err := converged(ctx, c); err != nil {
				t.Error(err)
			}
		}
		_ = disarm(ctx)
	})

	t.Run("dead-letter sends throttled a while", func(t *testing.T) {
		batch("dlq-while", true)
		_, _, _ = stack.DeadLetters(ctx)
		throttle("SendMessageBatch", 2)
		b, err := stack.DeliverBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		records, _, err := stack.DeadLetters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Response.BatchItemFailures) != 0 || len(records) != 10 {
			t.Errorf("failures %d, records %d; want 0 and 10", len(b.Response.BatchItemFailures), len(records))
		}
		_ = disarm(ctx)
	})

	t.Run("dead-letter sends throttled for good", func(t *testing.T) {
		creds := batch("dlq-always", true)
		_, _, _ = stack.DeadLetters(ctx)
		throttle("SendMessageBatch", -1)
		b, err := stack.DeliverBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Response.BatchItemFailures) != 10 {
			t.Fatalf("want all ten reported, got %d", len(b.Response.BatchItemFailures))
		}
		for _, c := range creds {
			if err := invariant(ctx, c, "with the dead-letter queue refusing"); err != nil {
				t.Error(err)
			}
		}

		// the queue recovers, the deployments too: the redelivered jobs
		// finish their own rotations
		if err := disarm(ctx); err != nil {
			t.Fatal(err)
		}
		if err := stack.ReleaseFailures(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := drainJobs(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range creds {
			if err := converged(ctx, c); err != nil {
				t.Error(err)
			}
		}
	})
}

func converged(ctx context.Context, c credential) error {
	got, err := stack.CheckCredential(ctx, c.arn, c.project, c.username, c.seed)
	if err != nil {
		return err
	}
	if !got.Converged() || !got.Rotated {
		return fmt.Errorf("%s: %+v", c.username, got)
	}
	return nil
}
