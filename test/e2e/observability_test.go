package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

// logLines returns the functions' JSON log lines that name the secret.
func logLines(secretID string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["secretId"] == secretID {
			out = append(out, m)
		}
	}
	return out
}

// One line per step or job, with stable keys, in JSON through the Lambda
// slog handler.
func TestEachStepAndJobLogsOneLineWithTheStableKeys(t *testing.T) {
	useSimulator(t, simulator.Config{})
	c := seedCredential(t, "Orders", "logged")
	if _, steps, err := stack.ScheduledRotation(testContext(t), c.arn); err != nil || steps[3].Err != nil {
		t.Fatalf("rotation: %v %+v", err, steps)
	}
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		done := 0
		for _, m := range logLines(c.arn) {
			if m["step"] == step && m["message"] == "step done" {
				done++
				for _, k := range []string{"versionId", "outcome", "durationMs", "requestId", "level"} {
					if _, ok := m[k]; !ok {
						t.Errorf("%s: line lacks %q: %v", step, k, m)
					}
				}
			}
		}
		if done != 1 {
			t.Errorf("%s: %d 'step done' lines, want 1", step, done)
		}
	}

	if err := stack.Enqueue(testContext(t), job(c, "logged-job")); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.DeliverBatch(testContext(t)); err != nil {
		t.Fatal(err)
	}
	jobs := 0
	for _, m := range logLines(c.arn) {
		if m["message"] == "job done" {
			jobs++
			for _, k := range []string{"messageId", "jobId", "versionId", "project", "username", "outcome", "durationMs"} {
				if _, ok := m[k]; !ok {
					t.Errorf("job line lacks %q: %v", k, m)
				}
			}
		}
	}
	if jobs != 1 {
		t.Errorf("%d 'job done' lines, want 1", jobs)
	}
	if !strings.Contains(logs.String(), `"_aws"`) || !strings.Contains(logs.String(), `"RotationsSucceeded"`) {
		t.Error("no embedded-metric line in the functions' output")
	}
}

// Names with path and query delimiters, percent signs, spaces and non-ASCII
// produce exactly one request each, to the credential's own path, encoded.
func TestOddNamesProduceExactlyOneEncodedRequestEach(t *testing.T) {
	useSimulator(t, simulator.Config{})
	names := []struct{ project, username string }{
		{"Or/ders", "a/b"},
		{"Orders?x=1", "c?d#e"},
		{"100%", "%2F%2e%2e"},
		{"My Project", "user name+1@example.com"},
		{"Sipariş", "kullanıcı-ü"},
	}
	var bodies []string
	var creds []credential
	for i, n := range names {
		c := credential{project: n.project, username: n.username, seed: fmt.Sprintf("Seed-Odd-%d-x", i)}
		arn, err := stack.SeedCredential(testContext(t), fmt.Sprintf("apinizer/e2e/odd-%d", i), c.project, c.username, c.seed)
		if err != nil {
			t.Fatal(err)
		}
		c.arn = arn
		creds = append(creds, c)
		bodies = append(bodies, job(c, ""))
	}
	before := len(stack.Sim.Requests())
	if err := stack.Enqueue(testContext(t), bodies...); err != nil {
		t.Fatal(err)
	}
	b, err := stack.DeliverBatch(testContext(t))
	if err != nil || len(b.Response.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", b.Response, err)
	}
	requests := stack.Sim.Requests()[before:]
	if len(requests) != len(names) {
		t.Errorf("%d requests reached Apinizer for %d credentials: %+v", len(requests), len(names), requests)
	}
	for _, c := range creds {
		seen := 0
		for _, r := range requests {
			if r.Project == c.project && r.Username == c.username {
				seen++
				if r.Method != "PATCH" {
					t.Errorf("%s: method %s", c.username, r.Method)
				}
				if decoded, err := url.PathUnescape(r.RawPath); err != nil || !strings.HasPrefix(r.RawPath, "/apiops/projects/") ||
					strings.Count(r.RawPath, "/") != 6 {
					t.Errorf("%s: raw path %q (%s) is not one encoded segment per name", c.username, r.RawPath, decoded)
				}
			}
		}
		if seen != 1 {
			t.Errorf("%s/%s: %d requests, want exactly 1", c.project, c.username, seen)
		}
		if got := check(t, c); !got.Converged() || !got.Rotated {
			t.Errorf("%s: %+v", c.username, got)
		}
	}
}
