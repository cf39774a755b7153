package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

func TestAScheduledRotationConvergesInEveryEnvelope(t *testing.T) {
	for _, env := range envelopes {
		t.Run(env.name, func(t *testing.T) {
			useSimulator(t, env.cfg)
			c := seedCredential(t, "Orders", "orders-client")

			_, steps, err := stack.ScheduledRotation(testContext(t), c.arn)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				if s.Err != nil {
					t.Fatalf("%s: %v", s.Step, s.Err)
				}
			}
			if got := check(t, c); !got.Converged() || !got.Rotated {
				t.Fatalf("after the rotation: %+v", got)
			}

			// R1: the next rotation starts from AWSPENDING left on the
			// current version and succeeds
			first, _ := stack.Password(testContext(t), c.arn, "AWSCURRENT")
			_, steps, err = stack.ScheduledRotation(testContext(t), c.arn)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				if s.Err != nil {
					t.Fatalf("second rotation %s: %v", s.Step, s.Err)
				}
			}
			second, _ := stack.Password(testContext(t), c.arn, "AWSCURRENT")
			if got := check(t, c); !got.Converged() || first == second {
				t.Fatalf("after the second rotation: %+v", got)
			}
		})
	}
}

func TestAFailedDeploymentIsDeadLetteredAndTheRetrySendsTheSamePassword(t *testing.T) {
	for _, env := range envelopes {
		t.Run(env.name, func(t *testing.T) {
			drainDeadLetters(t)
			c := seedCredential(t, "Billing", "billing")
			cfg := env.cfg
			cfg.DeployFailures = []simulator.DeployFailure{{Project: c.project, Username: c.username,
				Environment: "staging", Message: "Connection refused"}}
			useSimulator(t, cfg)

			token, steps, err := stack.ScheduledRotation(testContext(t), c.arn)
			if err != nil {
				t.Fatal(err)
			}
			last := steps[len(steps)-1]
			if last.Step != "setSecret" || last.Err == nil {
				t.Fatalf("want setSecret to fail, got %+v", steps)
			}
			var ie *standin.InvokeError
			if !errors.As(last.Err, &ie) || !strings.Contains(ie.Message, "staging") {
				t.Errorf("the error does not name the failed environment: %v", last.Err)
			}
			got := check(t, c)
			if !got.MatchesPending || got.Rotated {
				t.Fatalf("after the failed deployment: %+v", got)
			}
			pending, _ := stack.Password(testContext(t), c.arn, "AWSPENDING")

			records := deadLetters(t)
			if len(records) != 1 {
				t.Fatalf("want one dead-letter record, got %d", len(records))
			}
			r := records[0]
			if r.Reason != "deployment_failed" || r.Source != "rotation" || r.SecretID != c.arn ||
				r.Username != c.username || r.ProjectName != c.project || r.VersionID != token {
				t.Errorf("record %+v", r)
			}
			failed := 0
			for _, e := range r.Environments {
				if !e.Success {
					failed++
					if e.Name != "staging" || e.Message != "Connection refused" {
						t.Errorf("failed entry %+v", e)
					}
				}
			}
			if failed == 0 {
				t.Error("the record lists no failed environment")
			}

			// Secrets Manager retries the rotation with the same token
			useSimulator(t, env.cfg)
			steps, err = stack.ResumeRotation(testContext(t), c.arn, token)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				if s.Err != nil {
					t.Fatalf("retry %s: %v", s.Step, s.Err)
				}
			}
			current, _ := stack.Password(testContext(t), c.arn, "AWSCURRENT")
			if current != pending {
				t.Error("the retry promoted another password than the one first stored")
			}
			if got := check(t, c); !got.Converged() {
				t.Fatalf("after the retry: %+v", got)
			}
		})
	}
}

func TestTheSampleEventsDriveARotation(t *testing.T) {
	c := seedCredential(t, "Orders", "sample-events")
	token, err := stack.BeginRotation(testContext(t), c.arn)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rotate-create", "rotate-set", "rotate-test", "rotate-finish"} {
		raw, err := os.ReadFile("../../events/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var ev events.SecretsManagerSecretRotationEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ev.SecretID, ev.ClientRequestToken = c.arn, token
		payload, _ := json.Marshal(ev)
		if _, err := stack.Rotate.Invoke(testContext(t), payload); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if got := check(t, c); !got.Converged() || !got.Rotated {
		t.Fatalf("after the sample events: %+v", got)
	}
}

func TestBadEventsFailClearlyAndTouchNothing(t *testing.T) {
	c := seedCredential(t, "Orders", "bad-events")
	before, err := stack.Versions(testContext(t), c.arn)
	if err != nil {
		t.Fatal(err)
	}
	requests := len(stack.Sim.Requests())
	cases := []struct{ name, payload, want string }{
		{"unknown step", `{"Step":"create_secret","SecretId":"` + c.arn + `","ClientRequestToken":"t1"}`, "Step"},
		{"no token", `{"Step":"createSecret","SecretId":"` + c.arn + `"}`, "ClientRequestToken is missing"},
		{"token not a version", `{"Step":"createSecret","SecretId":"` + c.arn +
			`","ClientRequestToken":"00000000-0000-0000-0000-000000000000"}`, "rotation"},
		{"not an object", `[1,2]`, "json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stack.Rotate.Invoke(testContext(t), []byte(tc.payload))
			var ie *standin.InvokeError
			if !errors.As(err, &ie) {
				t.Fatalf("want a function error, got %v", err)
			}
			if ie.StatusCode != 200 || !strings.Contains(strings.ToLower(ie.Message), strings.ToLower(tc.want)) {
				t.Errorf("error %d %q does not say %q", ie.StatusCode, ie.Message, tc.want)
			}
		})
	}
	after, _ := stack.Versions(testContext(t), c.arn)
	if len(after) != len(before) || len(stack.Sim.Requests()) != requests {
		t.Error("a bad event changed the secret or reached Apinizer")
	}
}
