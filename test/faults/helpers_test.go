package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/internal/localrun"
)

// credential is one seeded secret of a cell.
type credential struct {
	arn, project, username, seed, jobID string
}

var cells int

func seed(ctx context.Context, c cell) (credential, error) {
	cells++
	name := strings.NewReplacer(" ", "-", ",", "", "/", "-").Replace(
		fmt.Sprintf("%s-%s-%s-%s-%d", c.function, c.point, c.way, c.rerun, cells))
	cred := credential{project: "Faults", username: strings.ToLower(name),
		seed: fmt.Sprintf("Seed-Password-%d-x", cells), jobID: fmt.Sprintf("job-%d", cells)}
	arn, err := stack.SeedCredential(ctx, "apinizer/faults/"+cred.username, cred.project, cred.username, cred.seed)
	if err != nil {
		return cred, err
	}
	cred.arn = arn
	return cred, stack.EnableRotation(ctx, arn)
}

func job(c credential, jobID string) string {
	if jobID == "" {
		return fmt.Sprintf(`{"secretId":%q}`, c.arn)
	}
	return fmt.Sprintf(`{"secretId":%q,"jobId":%q}`, c.arn, jobID)
}

// redeliver: SQS hands the same message out again once its visibility
// timeout passes; a message already acknowledged is delivered once more,
// as at-least-once delivery may.
func redeliver(ctx context.Context, cred credential, b localrun.Batch) error {
	if len(b.Deleted) > 0 || len(b.Event.Records) == 0 {
		return stack.Enqueue(ctx, job(cred, cred.jobID))
	}
	return stack.ReleaseAll(ctx, b)
}

// moveBack: an operator moves the job's dead-letter records back to the job
// queue; the original message, if it was not acknowledged, comes back too.
func moveBack(ctx context.Context, cred credential, b localrun.Batch) error {
	records, _, err := stack.DeadLetters(ctx)
	if err != nil {
		return err
	}
	moved := 0
	for _, r := range records {
		if r.SecretID == cred.arn && r.JobBody != "" {
			if err := stack.Enqueue(ctx, r.JobBody); err != nil {
				return err
			}
			moved++
		}
	}
	if len(b.Deleted) == 0 && len(b.Event.Records) > 0 {
		return stack.ReleaseAll(ctx, b)
	}
	if moved == 0 {
		// nothing to move back: the job is sent again instead
		return stack.Enqueue(ctx, job(cred, cred.jobID))
	}
	return nil
}

// scheduled: Secrets Manager's next scheduled rotation. While a rotation is
// incomplete (AWSPENDING with a value beside AWSCURRENT) AWS retries that
// one with its token instead of starting another; the job's own message
// comes back too if it was not acknowledged.
func scheduled(ctx context.Context, cred credential, b localrun.Batch) error {
	vs, err := stack.Versions(ctx, cred.arn)
	if err != nil {
		return err
	}
	var steps []localrun.StepResult
	if token := strayPending(vs); token != "" {
		steps, err = stack.ResumeRotation(ctx, cred.arn, token)
	} else {
		_, steps, err = stack.ScheduledRotation(ctx, cred.arn)
	}
	if err != nil {
		return err
	}
	for _, s := range steps {
		if s.Err != nil {
			return fmt.Errorf("scheduled rotation %s: %w", s.Step, s.Err)
		}
	}
	if len(b.Deleted) == 0 && len(b.Event.Records) > 0 {
		return stack.ReleaseAll(ctx, b)
	}
	return nil
}

func strayPending(vs map[string][]string) string {
	for id, stages := range vs {
		pending, current := false, false
		for _, s := range stages {
			pending = pending || s == "AWSPENDING"
			current = current || s == "AWSCURRENT"
		}
		if pending && !current {
			return id
		}
	}
	return ""
}

// drainJobs delivers the job queue until it is empty, making failed
// messages visible again at once, as their visibility timeout would.
func drainJobs(ctx context.Context) error {
	for range 6 {
		b, err := stack.DeliverBatch(ctx)
		if err != nil {
			return err
		}
		if len(b.Event.Records) == 0 {
			return nil
		}
		if err := stack.ReleaseFailures(ctx, b); err != nil {
			return err
		}
	}
	return fmt.Errorf("the job queue did not drain")
}

// valuedVersions counts the versions of the secret that hold a value.
func valuedVersions(ctx context.Context, arn string) (int, error) {
	out, err := stack.SecretsManager.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true),
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range out.Versions {
		got, err := stack.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(arn), VersionId: v.VersionId,
		})
		if err != nil {
			continue
		}
		var cred struct{ Password string }
		if json.Unmarshal([]byte(aws.ToString(got.SecretString)), &cred) == nil {
			n++
		}
	}
	return n, nil
}
