package e2e

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// R9 and R10: Apinizer takes the password and never answers. The step
// gives up inside the function's timeout with an error that says what
// timed out; the password is in AWSPENDING; the retried rotation converges.
func TestApinizerThatNeverAnswersFailsInTimeAndTheRetryConverges(t *testing.T) {
	c := seedCredential(t, "Orders", "blackholed")
	useSimulator(t, simulator.Config{LatencyMS: 60_000})

	fn, err := standin.StartFunction(testContext(t), stack.RIE, standin.FunctionOptions{
		Bootstrap: stack.RotateBootstrap, Env: stack.FunctionEnv, Timeout: 8 * time.Second, LogWriter: &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	token, err := stack.BeginRotation(testContext(t), c.arn)
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(step string) error {
		ev, _ := json.Marshal(events.SecretsManagerSecretRotationEvent{Step: step, SecretID: c.arn,
			ClientRequestToken: token})
		_, err := fn.Invoke(testContext(t), ev)
		return err
	}
	if err := invoke("createSecret"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = invoke("setSecret")
	var ie *standin.InvokeError
	if !errors.As(err, &ie) || ie.TimedOut() {
		t.Fatalf("want the step's own error before the function timed out, got %v", err)
	}
	if !strings.Contains(ie.Message, "apinizer") || !strings.Contains(ie.Message, "deadline") {
		t.Errorf("the error does not say what timed out: %q", ie.Message)
	}
	if time.Since(start) > 8*time.Second {
		t.Errorf("setSecret took %v, longer than the function's timeout", time.Since(start))
	}
	if got := check(t, c); !got.MatchesPending {
		t.Fatalf("Apinizer took the pending password, the secret must hold it: %+v", got)
	}

	// Apinizer answers again; Secrets Manager retries with the same token
	useSimulator(t, simulator.Config{})
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		if err := invoke(step); err != nil {
			t.Fatalf("retry %s: %v", step, err)
		}
	}
	if got := check(t, c); !got.Converged() || !got.Rotated {
		t.Fatalf("after the retry: %+v", got)
	}
	if n := stack.Sim.PasswordChanges(c.project, c.username); n < 2 {
		t.Errorf("password changes %d", n)
	}
}
