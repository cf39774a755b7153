package e2e

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// With a gateway configured, testSecret passes only once the gateway
// accepts the new password: it waits out the propagation lag, and fails,
// inside the function's timeout, when the gateway never accepts it.
func TestTestSecretChecksTheGateway(t *testing.T) {
	modes := []struct{ name, probePath string }{
		{"token endpoint", ""},
		{"Basic auth probe", "/gateway/orders/ping"},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			env := append(append([]string{}, stack.FunctionEnv...), "APINIZER_GATEWAY_URL="+stack.Sim.URL)
			if mode.probePath != "" {
				env = append(env, "APINIZER_GATEWAY_PROBE_PATH="+mode.probePath)
			}
			fn, err := standin.StartFunction(testContext(t), stack.RIE, standin.FunctionOptions{
				Bootstrap: stack.RotateBootstrap, Env: env, Timeout: 8 * time.Second, LogWriter: &logs,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer fn.Stop()
			rotate := func(c credential) error {
				token, err := stack.BeginRotation(testContext(t), c.arn)
				if err != nil {
					t.Fatal(err)
				}
				for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
					ev, _ := json.Marshal(events.SecretsManagerSecretRotationEvent{Step: step, SecretID: c.arn,
						ClientRequestToken: token})
					if _, err := fn.Invoke(testContext(t), ev); err != nil {
						return err
					}
				}
				return nil
			}

			// the gateway takes a second and a half to accept the password
			useSimulator(t, simulator.Config{GatewayLagMS: 1500})
			c := seedCredential(t, "Orders", "gateway")
			if err := rotate(c); err != nil {
				t.Fatalf("with a lagging gateway: %v", err)
			}
			if got := check(t, c); !got.Converged() || !got.Rotated {
				t.Fatalf("%+v", got)
			}
			pw, _ := stack.Password(testContext(t), c.arn, "AWSCURRENT")
			if !stack.Sim.GatewayAccepts(c.username, pw) {
				t.Error("promoted a password the gateway does not accept")
			}

			// the gateway never takes it in time: testSecret fails within
			// the function's timeout, nothing is promoted
			c = seedCredential(t, "Orders", "gateway-never")
			useSimulator(t, simulator.Config{GatewayLagMS: 60_000})
			err = rotate(c)
			var ie *standin.InvokeError
			if !errors.As(err, &ie) || ie.TimedOut() || !strings.Contains(ie.Message, "gateway") {
				t.Fatalf("want testSecret's own gateway error, got %v", err)
			}
			if got := check(t, c); got.Rotated || !got.MatchesPending {
				t.Errorf("after the refusal: %+v", got)
			}
		})
	}
}

// Apinizer refusing the password (a 400 with any text) is a clear failure,
// asked once, dead-lettered as rejected.
func TestARejectedPasswordIsAClearFailureAskedOnce(t *testing.T) {
	drainDeadLetters(t)
	useSimulator(t, simulator.Config{})
	c := seedCredential(t, "Orders", "rejected")
	stack.Sim.AddFaults(simulator.Fault{Status: 400, Count: 10, Project: c.project, Username: c.username,
		Body: `{"status":"FAILURE","resultMessage":"Password does not satisfy the policy!"}`})
	before := len(stack.Sim.Requests())
	_, steps, err := stack.ScheduledRotation(testContext(t), c.arn)
	if err != nil {
		t.Fatal(err)
	}
	last := steps[len(steps)-1]
	if last.Step != "setSecret" || last.Err == nil || !strings.Contains(last.Err.Error(), "does not satisfy the policy") {
		t.Fatalf("want setSecret to fail with Apinizer's text, got %+v", last)
	}
	if n := len(stack.Sim.Requests()) - before; n != 1 {
		t.Errorf("Apinizer was asked %d times, want once", n)
	}
	records := deadLetters(t)
	if len(records) != 1 || records[0].Reason != "rejected" {
		t.Errorf("records %+v", records)
	}
	stack.Sim.ClearFaults()
}

// The token secret may hold client credentials: the function exchanges
// them at Apinizer's token endpoint and rotates with the token it gets.
func TestClientCredentialsInTheTokenSecret(t *testing.T) {
	useSimulator(t, simulator.Config{})
	stack.Sim.SetCredential("admin", "apiops-client", "Client-Secret-9&=+")
	if _, err := stack.SecretsManager.CreateSecret(testContext(t), &secretsmanager.CreateSecretInput{
		Name:         aws.String("apinizer-client-credentials"),
		SecretString: aws.String(`{"clientId":"apiops-client","clientSecret":"Client-Secret-9&=+"}`),
	}); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, stack.FunctionEnv...), "APINIZER_TOKEN_SECRET_ID=apinizer-client-credentials")
	fn, err := standin.StartFunction(testContext(t), stack.RIE, standin.FunctionOptions{
		Bootstrap: stack.RotateBootstrap, Env: env, LogWriter: &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()

	for range 2 {
		c := seedCredential(t, "Orders", "client-credentials")
		token, err := stack.BeginRotation(testContext(t), c.arn)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
			ev, _ := json.Marshal(events.SecretsManagerSecretRotationEvent{Step: step, SecretID: c.arn,
				ClientRequestToken: token})
			if _, err := fn.Invoke(testContext(t), ev); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		if got := check(t, c); !got.Converged() || !got.Rotated {
			t.Fatalf("%+v", got)
		}
	}
	exchanges := 0
	for _, r := range stack.Sim.Requests() {
		if strings.HasSuffix(r.Path, "/apiops/auth/token") {
			exchanges++
		}
	}
	if exchanges != 1 {
		t.Errorf("%d token exchanges for two rotations in one warm function, want 1", exchanges)
	}
}
