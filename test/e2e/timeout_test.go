package e2e

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apinizer-rotation/rotator/internal/faultproxy"
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

// R10, the other side: Secrets Manager takes the pending value and never
// answers. createSecret gives up inside the function's timeout with an
// error that names the call; the retried rotation finds the value written
// and converges.
func TestSecretsManagerThatNeverAnswersFailsInTimeAndTheRetryConverges(t *testing.T) {
	c := seedCredential(t, "Orders", "sm-blackholed")
	proxy, err := faultproxy.Start(stack.Moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	env := append(slices.Clip(stack.FunctionEnv), "AWS_ENDPOINT_URL="+proxy.URL)
	fn, err := standin.StartFunction(testContext(t), stack.RIE, standin.FunctionOptions{
		Bootstrap: stack.RotateBootstrap, Env: env, Timeout: 8 * time.Second, LogWriter: &logs,
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

	proxy.Add(faultproxy.Rule{Service: "secretsmanager", Operation: "PutSecretValue",
		Phase: faultproxy.After, Action: faultproxy.Hang})
	start := time.Now()
	err = invoke("createSecret")
	var ie *standin.InvokeError
	if !errors.As(err, &ie) || ie.TimedOut() {
		t.Fatalf("want the step's own error before the function timed out, got %v", err)
	}
	if !strings.Contains(ie.Message, "PutSecretValue") ||
		!strings.Contains(ie.Message, "deadline") {
		t.Errorf("the error does not say what timed out: %q", ie.Message)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("createSecret took %v, longer than the function's timeout", took)
	}
	if n := stack.Sim.PasswordChanges(c.project, c.username); n != 0 {
		t.Errorf("Apinizer got %d password changes before the pending value was stored", n)
	}

	// Secrets Manager answers again; the same token's retry converges
	proxy.Clear()
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		if err := invoke(step); err != nil {
			t.Fatalf("retry %s: %v", step, err)
		}
	}
	if got := check(t, c); !got.Converged() || !got.Rotated {
		t.Fatalf("after the retry: %+v", got)
	}
	if made := proxy.Count("secretsmanager", "GetRandomPassword"); made != 1 {
		t.Errorf("passwords generated: expect 1 (the retry keeps the stored one), got %d", made)
	}
}
