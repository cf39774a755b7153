package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// credential is one seeded secret and what the demo expects of it.
type credential struct {
	secret, project, username, password string
	// how it is rotated: "scheduled" or "bulk"
	via string
	// failDeploy makes the simulator fail its deployment to staging
	failDeploy bool

	arn    string
	before map[string][]string
}

func demoCredentials() []*credential {
	return []*credential{
		{secret: "apinizer/demo/orders-client", project: "Orders", username: "orders-client",
			password: "Seed-Orders-1", via: "scheduled"},
		{secret: "apinizer/demo/payments-client", project: "Payments", username: "payments-client",
			password: "Seed-Payments-1", via: "bulk"},
		{secret: "apinizer/demo/reports-client", project: "Reports", username: "reports client+1@example",
			password: "Seed-Reports-1", via: "bulk"},
		{secret: "apinizer/demo/billing-batch", project: "Billing", username: "billing-batch",
			password: "Seed-Billing-1", via: "bulk", failDeploy: true},
	}
}

// missingSecret is a bulk job for a secret that does not exist.
const missingSecret = "apinizer/demo/does-not-exist"

func run(ctx context.Context, out io.Writer, logw io.Writer, envelope simulator.Envelope) (bool, error) {
	creds := demoCredentials()
	simCfg := simulator.Config{Envelope: envelope, Environments: []string{"production", "staging"}}
	for _, c := range creds {
		if c.failDeploy {
			simCfg.DeployFailures = append(simCfg.DeployFailures, simulator.DeployFailure{
				Project: c.project, Username: c.username, Environment: "staging",
				Message: "Connection refused",
			})
		}
	}

	fmt.Fprintln(out, "Starting moto, the Apinizer simulator and both functions under the Lambda RIE...")
	stack, err := localrun.Start(ctx, localrun.Options{Simulator: simCfg, Log: logw})
	if err != nil {
		return false, err
	}
	defer stack.Close()
	fmt.Fprintf(out, "  moto %s, apinizer simulator %s (%s envelope)\n\n", stack.Moto.URL, stack.Sim.URL, envelope)

	for _, c := range creds {
		if c.arn, err = stack.SeedCredential(ctx, c.secret, c.project, c.username, c.password); err != nil {
			return false, err
		}
		if c.before, err = stack.Versions(ctx, c.arn); err != nil {
			return false, err
		}
	}

	// a scheduled rotation, step by step, as Secrets Manager runs it
	ok := true
	for _, c := range creds {
		if c.via != "scheduled" {
			continue
		}
		fmt.Fprintf(out, "Scheduled rotation of %s\n", c.secret)
		_, steps, err := stack.ScheduledRotation(ctx, c.arn)
		if err != nil {
			return false, err
		}
		for _, s := range steps {
			verdict := "ok"
			if s.Err != nil {
				verdict, ok = "FAILED: "+s.Err.Error(), false
			}
			fmt.Fprintf(out, "  %-13s %s\n", s.Step, verdict)
		}
	}

	// bulk jobs, delivered as the SQS event source mapping delivers them
	var bodies []string
	for i, c := range creds {
		if c.via == "bulk" {
			bodies = append(bodies, fmt.Sprintf(`{"secretId":%q,"jobId":"demo-%d"}`, c.secret, i))
		}
	}
	bodies = append(bodies, fmt.Sprintf(`{"secretId":%q}`, missingSecret))
	if err := stack.Enqueue(ctx, bodies...); err != nil {
		return false, err
	}
	fmt.Fprintf(out, "\nBulk: %d jobs enqueued, delivered to the bulk function as one SQS batch\n", len(bodies))
	batch, err := stack.DeliverBatch(ctx)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "  records %d, acknowledged %d, batchItemFailures %d\n",
		len(batch.Event.Records), len(batch.Deleted), len(batch.Response.BatchItemFailures))
	if len(batch.Event.Records) != len(bodies) || len(batch.Response.BatchItemFailures) != 0 {
		ok = false
	}

	// what became of each secret
	fmt.Fprintln(out, "\nSecrets (version id prefix = staging labels)")
	for _, c := range creds {
		after, err := stack.Versions(ctx, c.arn)
		if err != nil {
			return false, err
		}
		check, err := stack.CheckCredential(ctx, c.arn, c.project, c.username, c.password)
		if err != nil {
			return false, err
		}
		want := "rotated, Apinizer holds AWSCURRENT"
		good := check.Converged() && check.Rotated
		if c.failDeploy {
			want = "not promoted, Apinizer holds AWSPENDING"
			good = check.MatchesPending && !check.Rotated
		}
		mark := "ok"
		if !good || !check.Held() {
			mark, ok = "WRONG", false
		}
		fmt.Fprintf(out, "  %-32s via %-9s %s\n", c.secret, c.via, mark)
		fmt.Fprintf(out, "    before: %s\n    after:  %s\n", stages(c.before), stages(after))
		fmt.Fprintf(out, "    Apinizer password = AWSCURRENT: %s, = AWSPENDING: %s (expected: %s)\n",
			yes(check.MatchesCurrent), yes(check.MatchesPending), want)
	}

	// the dead-letter queue
	records, _, err := stack.DeadLetters(ctx)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "\nDead-letter queue: %d record(s)\n", len(records))
	reasons := map[string]string{}
	for _, r := range records {
		reasons[r.SecretID] = r.Reason
		fmt.Fprintf(out, "  %-17s %-8s %s", r.Reason, r.Source, r.SecretID)
		if r.Username != "" {
			fmt.Fprintf(out, " (%s/%s)", r.ProjectName, r.Username)
		}
		fmt.Fprintln(out)
		for _, e := range r.Environments {
			if !e.Success {
				fmt.Fprintf(out, "    environment %s%s failed: %s\n", e.Name, podSuffix(e.Pod), e.Message)
			}
		}
		fmt.Fprintf(out, "    %s\n", r.Error)
	}
	wantReasons := map[string]string{missingSecret: deadletter.ReasonInvalidSecret}
	for _, c := range creds {
		if c.failDeploy {
			wantReasons[c.secret] = deadletter.ReasonDeploymentFailed
		}
	}
	if len(records) != len(wantReasons) {
		ok = false
	}
	for secret, reason := range wantReasons {
		if reasons[secret] != reason {
			ok = false
			fmt.Fprintf(out, "  missing: a %s record for %s\n", reason, secret)
		}
	}

	if ok {
		fmt.Fprintln(out, "\nDemo passed: every password Apinizer holds is stored in its secret.")
	} else {
		fmt.Fprintln(out, "\nDemo FAILED: see the lines marked above.")
	}
	return ok, nil
}

// stages prints version labels in a stable order, with short version ids.
func stages(vs map[string][]string) string {
	var parts []string
	for id, labels := range vs {
		labels = slices.Clone(labels)
		if len(labels) == 0 {
			continue
		}
		sort.Strings(labels)
		parts = append(parts, fmt.Sprintf("%s=%s", short(id), strings.Join(labels, "+")))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func podSuffix(pod string) string {
	if pod == "" {
		return ""
	}
	return "/" + pod
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
