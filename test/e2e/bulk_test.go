package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

func job(c credential, jobID string) string {
	if jobID == "" {
		return fmt.Sprintf(`{"secretId":%q}`, c.arn)
	}
	return fmt.Sprintf(`{"secretId":%q,"jobId":%q}`, c.arn, jobID)
}

func TestABulkBatchRotatesAndDeadLettersWhatCannotSucceed(t *testing.T) {
	for _, env := range envelopes {
		t.Run(env.name, func(t *testing.T) {
			drainDeadLetters(t)
			good := []credential{seedCredential(t, "Payments", "payments"), seedCredential(t, "Reports", "reports")}
			bad := seedCredential(t, "Billing", "billing")
			cfg := env.cfg
			cfg.DeployFailures = []simulator.DeployFailure{{Project: bad.project, Username: bad.username,
				Environment: "production", Pod: simulator.PodName("production", 1)}}
			useSimulator(t, cfg)

			bodies := []string{job(good[0], "j-1"), job(good[1], ""), job(bad, "j-3"), `{not json`,
				`{"secretId":"apinizer/e2e/no-such-secret"}`}
			if err := stack.Enqueue(testContext(t), bodies...); err != nil {
				t.Fatal(err)
			}
			b, err := stack.DeliverBatch(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Event.Records) != len(bodies) {
				t.Fatalf("delivered %d of %d", len(b.Event.Records), len(bodies))
			}
			if len(b.Response.BatchItemFailures) != 0 {
				t.Errorf("batchItemFailures %v, want none", b.Response.BatchItemFailures)
			}
			for _, c := range good {
				if got := check(t, c); !got.Converged() || !got.Rotated {
					t.Errorf("%s: %+v", c.username, got)
				}
			}
			if got := check(t, bad); !got.MatchesPending || got.Rotated {
				t.Errorf("failed deployment: %+v", got)
			}

			records := deadLetters(t)
			byReason := map[string]deadletter.Record{}
			for _, r := range records {
				byReason[r.Reason] = r
				if r.Source != "bulk" || r.MessageID == "" || r.JobBody == "" || r.Timestamp.IsZero() {
					t.Errorf("record lacks its message: %+v", r)
				}
			}
			if len(records) != 3 {
				t.Fatalf("want 3 records, got %d: %+v", len(records), records)
			}
			d := byReason["deployment_failed"]
			if d.SecretID != bad.arn || d.Username != bad.username || d.JobID != "j-3" || d.VersionID == "" {
				t.Errorf("deployment record %+v", d)
			}
			if !slices.ContainsFunc(d.Environments, func(e apinizer.EnvironmentResult) bool {
				return !e.Success && e.Name == "production"
			}) {
				t.Errorf("no failed production entry in %+v", d.Environments)
			}
			if !strings.Contains(byReason["invalid_job"].JobBody, "not a JSON object") {
				t.Errorf("invalid job record %+v", byReason["invalid_job"])
			}
			if !strings.Contains(byReason["invalid_secret"].SecretID, "no-such-secret") {
				t.Errorf("invalid secret record %+v", byReason["invalid_secret"])
			}
		})
	}
}

func TestATransientFailureIsRetriedByTheQueueAndNotDeadLettered(t *testing.T) {
	drainDeadLetters(t)
	c := seedCredential(t, "Orders", "flaky")
	useSimulator(t, simulator.Config{})
	// more 503s than one invocation retries
	stack.Sim.AddFaults(simulator.Fault{Status: 503, Count: 8, Project: c.project, Username: c.username})
	if err := stack.Enqueue(testContext(t), job(c, "flaky-1")); err != nil {
		t.Fatal(err)
	}
	b, err := stack.DeliverBatch(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Response.BatchItemFailures) != 1 ||
		b.Response.BatchItemFailures[0].ItemIdentifier != b.Event.Records[0].MessageId {
		t.Fatalf("want the message reported, got %+v", b.Response)
	}
	if got := check(t, c); got.Rotated {
		t.Fatalf("rotated although Apinizer never answered: %+v", got)
	}

	// the visibility timeout passes and SQS delivers it again
	if err := stack.ReleaseFailures(testContext(t), b); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err = stack.DeliverBatch(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Response.BatchItemFailures) == 0 {
			break
		}
		if err := stack.ReleaseFailures(testContext(t), b); err != nil {
			t.Fatal(err)
		}
	}
	if got := check(t, c); !got.Converged() || !got.Rotated {
		t.Fatalf("after redelivery: %+v", got)
	}
	records := deadLetters(t)
	if len(records) != 0 {
		t.Errorf("a transient failure was dead-lettered: %+v", records)
	}
}

func TestAJobDeliveredAgainAfterItFinishedDoesNotRotateTwice(t *testing.T) {
	c := seedCredential(t, "Orders", "twice")
	useSimulator(t, simulator.Config{})
	for range 2 {
		if err := stack.Enqueue(testContext(t), job(c, "once-only")); err != nil {
			t.Fatal(err)
		}
		b, err := stack.DeliverBatch(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Response.BatchItemFailures) != 0 {
			t.Fatalf("batch %+v", b.Response)
		}
	}
	if n := stack.Sim.PasswordChanges(c.project, c.username); n != 1 {
		t.Errorf("the password was changed %d times, want 1", n)
	}
	if got := check(t, c); !got.Converged() {
		t.Fatalf("%+v", got)
	}
}

func TestAWrongTokenIsOneConfigurationProblemNotADeadLetterFlood(t *testing.T) {
	drainDeadLetters(t)
	cs, bodies := seedJobs(t, 4, "token", "tok")
	// Apinizer stops accepting the token the functions hold
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{"another-token"}})
	t.Cleanup(func() { stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}}) })

	if err := stack.Enqueue(testContext(t), bodies...); err != nil {
		t.Fatal(err)
	}
	b, err := stack.DeliverBatch(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Response.BatchItemFailures) != len(bodies) {
		t.Errorf("want every message retried, got %d of %d", len(b.Response.BatchItemFailures), len(bodies))
	}
	records := deadLetters(t)
	if len(records) != 0 {
		t.Errorf("a token problem produced %d dead-letter records", len(records))
	}
	for _, c := range cs {
		check(t, c)
	}

	// once the token works again the same messages succeed
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}})
	if err := stack.ReleaseFailures(testContext(t), b); err != nil {
		t.Fatal(err)
	}
	b, err = stack.DeliverBatch(testContext(t))
	if err != nil || len(b.Response.BatchItemFailures) != 0 {
		t.Fatalf("after the fix: %+v, %v", b.Response, err)
	}
	for _, c := range cs {
		if got := check(t, c); !got.Converged() || !got.Rotated {
			t.Errorf("%s: %+v", c.username, got)
		}
	}
}

func TestABatchLargerThanTheConcurrencyKeepsApinizersLoadWithinIt(t *testing.T) {
	// the stack's bulk function runs with the defaults: 10 password changes
	// at Apinizer at once, 10 more jobs prepared beside them
	const jobs, bound = 25, 10
	drainDeadLetters(t)
	useSimulator(t, simulator.Config{LatencyMS: 400})
	var cs []credential
	var bodies []string
	for i := range jobs {
		c := seedCredential(t, "Orders", "load")
		cs = append(cs, c)
		bodies = append(bodies, job(c, fmt.Sprintf("load-%d", i)))
	}
	if err := stack.Enqueue(testContext(t), bodies...); err != nil {
		t.Fatal(err)
	}
	b, err := stack.DeliverJobs(testContext(t), stack.Bulk, jobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Event.Records) != jobs || len(b.Response.BatchItemFailures) != 0 {
		t.Fatalf("delivered %d of %d, failures %v", len(b.Event.Records), jobs, b.Response.BatchItemFailures)
	}
	for _, c := range cs {
		if got := check(t, c); !got.Converged() || !got.Rotated {
			t.Errorf("%s: %+v", c.username, got)
		}
	}

	mine := map[string]bool{}
	for _, c := range cs {
		mine[c.username] = true
	}
	var changes []simulator.Request
	for _, r := range stack.Sim.Requests() {
		if r.Method == http.MethodPatch && mine[r.Username] {
			changes = append(changes, r)
		}
	}
	if len(changes) != jobs {
		t.Errorf("password changes: expect %d, got %d", jobs, len(changes))
	}
	// at least half the bound shows the jobs ran side by side at all
	if most := simulator.MostAtOnce(changes); most > bound || most < bound/2 {
		t.Errorf("password changes at Apinizer at once: expect %d to %d, got %d", bound/2, bound, most)
	}
}

// S8 through the built function: ten jobs of 3 s each, one at a time,
// with 20 s before the deadline. The jobs that cannot finish in time are
// not started and are reported; none is cut off at Apinizer; the answer
// comes before the function times out.
func TestJobsThatCannotFinishBeforeTheDeadlineAreReportedNotCutOff(t *testing.T) {
	const timeout = 20 * time.Second
	drainDeadLetters(t)
	useSimulator(t, simulator.Config{LatencyMS: 3000})
	fn, err := standin.StartFunction(testContext(t), stack.RIE, standin.FunctionOptions{
		Name: "apinizer-bulk-one-at-a-time", Bootstrap: stack.BulkBootstrap, Timeout: timeout,
		Env:       append(slices.Clip(stack.FunctionEnv), "BULK_MAX_CONCURRENCY=1", "BULK_PREPARE_AHEAD=0"),
		LogWriter: &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()

	cs, bodies := seedJobs(t, 10, "deadline", "deadline")
	if err := stack.Enqueue(testContext(t), bodies...); err != nil {
		t.Fatal(err)
	}
	b, err := stack.DeliverJobs(testContext(t), fn, len(bodies))
	if err != nil {
		t.Fatal(err) // a timed-out invocation fails the whole batch
	}
	if b.Invocation >= timeout {
		t.Errorf("answered after %v, not before the %v deadline", b.Invocation, timeout)
	}
	reported := map[string]bool{}
	for _, f := range b.Response.BatchItemFailures {
		reported[f.ItemIdentifier] = true
	}
	if len(reported) == 0 || len(reported) == len(bodies) {
		t.Fatalf("reported %d of %d; expect the ones without time, some but not all", len(reported), len(bodies))
	}

	// each job either rotated or was never started; none reached Apinizer
	// and was given up on there
	byUser := map[string][]simulator.Request{}
	for _, r := range stack.Sim.Requests() {
		if r.Method == http.MethodPatch {
			byUser[r.Username] = append(byUser[r.Username], r)
		}
	}
	for i, r := range b.Event.Records {
		c := cs[slices.IndexFunc(cs, func(c credential) bool { return strings.Contains(r.Body, c.arn) })]
		got := check(t, c)
		switch {
		case reported[r.MessageId] && (len(byUser[c.username]) != 0 || got.Rotated):
			t.Errorf("record %d was reported, yet it started: %d changes, %+v", i, len(byUser[c.username]), got)
		case !reported[r.MessageId] && (!got.Converged() || !got.Rotated):
			t.Errorf("record %d was acknowledged but did not rotate: %+v", i, got)
		}
		for _, req := range byUser[c.username] {
			if req.Status != http.StatusOK {
				t.Errorf("record %d: a password change answered %d (499: cut off)", i, req.Status)
			}
		}
	}
	t.Logf("%d of %d started, answered after %v", len(bodies)-len(reported), len(bodies), b.Invocation)
}

// seedJobs seeds n credentials of project Orders named after user and
// returns them with one job body each, job ids jobPrefix-0, jobPrefix-1...
func seedJobs(t *testing.T, n int, user, jobPrefix string) ([]credential, []string) {
	t.Helper()
	var cs []credential
	var bodies []string
	for i := range n {
		c := seedCredential(t, "Orders", user)
		cs = append(cs, c)
		bodies = append(bodies, job(c, fmt.Sprintf("%s-%d", jobPrefix, i)))
	}
	return cs, bodies
}

// A partial ARN (no suffix) of a name that ends in a dash and six letters
// reads like a full ARN of another name. The job's token comes from the
// name DescribeSecret gives, so one job id given by name and then by
// partial ARN rotates the secret once.
func TestAJobByNameThenByPartialARNRotatesOnce(t *testing.T) {
	useSimulator(t, simulator.Config{})
	c := seedCredentialAt(t, "Orders", "partial", "/orders-client")
	name := "apinizer/e2e/" + c.username + "/orders-client"
	partial := c.arn[:len(c.arn)-len("-AbCdEf")]
	if !strings.HasSuffix(partial, ":secret:"+name) {
		t.Fatalf("partial ARN %s", partial)
	}
	for _, id := range []string{name, partial} {
		if err := stack.Enqueue(testContext(t), fmt.Sprintf(`{"secretId":%q,"jobId":"partial-once"}`, id)); err != nil {
			t.Fatal(err)
		}
		b, err := stack.DeliverBatch(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Response.BatchItemFailures) != 0 {
			t.Fatalf("by %s: batch %+v", id, b.Response)
		}
	}
	if changes := stack.Sim.PasswordChanges(c.project, c.username); changes != 1 {
		t.Errorf("the password was changed %d times, want 1", changes)
	}
	if got := check(t, c); !got.Converged() {
		t.Fatalf("%+v", got)
	}
}
