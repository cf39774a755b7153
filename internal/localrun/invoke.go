package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/internal/standin"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// Steps are the rotation steps in the order Secrets Manager calls them.
var Steps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// InvokeStep sends one rotation step event to the rotation function. A
// failed step comes back as a *standin.InvokeError.
func (s *Stack) InvokeStep(ctx context.Context, step, secretID, token string) error {
	ev, err := json.Marshal(events.SecretsManagerSecretRotationEvent{
		Step: step, SecretID: secretID, ClientRequestToken: token,
		RotationToken: "rotation-token-" + token,
	})
	if err != nil {
		return err
	}
	_, err = s.Rotate.Invoke(ctx, ev)
	s.noteError(err)
	return err
}

// noteError keeps the text of a failed invocation, for tests that scan
// everything the functions returned.
func (s *Stack) noteError(err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.invokeErrors = append(s.invokeErrors, err.Error())
}

// InvokeErrors returns the text of every failed invocation so far.
func (s *Stack) InvokeErrors() []string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return slices.Clone(s.invokeErrors)
}

// StepResult is the outcome of one step of a scheduled rotation.
type StepResult struct {
	Step string
	Err  error
}

// ScheduledRotation runs a rotation as Secrets Manager does: the
// placeholder version, then the four steps in order, stopping at the first
// that fails. It returns the token and what each step did.
func (s *Stack) ScheduledRotation(ctx context.Context, secretID string) (string, []StepResult, error) {
	token, err := s.BeginRotation(ctx, secretID)
	if err != nil {
		return "", nil, err
	}
	results, err := s.ResumeRotation(ctx, secretID, token)
	return token, results, err
}

// ResumeRotation runs the four steps for token again, as Secrets Manager
// does when it retries a rotation that failed.
func (s *Stack) ResumeRotation(ctx context.Context, secretID, token string) ([]StepResult, error) {
	var results []StepResult
	for _, step := range Steps {
		err := s.InvokeStep(ctx, step, secretID, token)
		results = append(results, StepResult{Step: step, Err: err})
		var ie *standin.InvokeError
		if err != nil && !errors.As(err, &ie) {
			return results, fmt.Errorf("invoking %s: %w", step, err)
		}
		if err != nil {
			break
		}
	}
	return results, nil
}

// Enqueue sends bodies to the job queue, ten per call.
func (s *Stack) Enqueue(ctx context.Context, bodies ...string) error {
	for start := 0; start < len(bodies); start += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i, b := range bodies[start:min(start+10, len(bodies))] {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b),
			})
		}
		out, err := s.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
			QueueUrl: aws.String(s.JobQueueURL), Entries: entries,
		})
		if err != nil {
			return fmt.Errorf("enqueueing jobs: %w", err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("enqueueing jobs: %d refused", len(out.Failed))
		}
	}
	return nil
}

// Batch is one invocation of the bulk function: the event it was given,
// its answer, and what was acknowledged.
type Batch struct {
	Event    events.SQSEvent
	Response events.SQSEventResponse
	// Deleted are the message ids acknowledged (deleted from the queue).
	Deleted []string
	// Invocation is how long the function took to answer, as the caller
	// of Invoke saw it.
	Invocation time.Duration
}

// DeliverBatch does what the SQS event source mapping does: it receives up
// to ten messages, invokes the bulk function with them as one event, and
// deletes every message not named in batchItemFailures. With no message
// waiting it returns a Batch with no records.
func (s *Stack) DeliverBatch(ctx context.Context) (Batch, error) {
	return s.DeliverBatchTo(ctx, s.Bulk)
}

// DeliverBatchTo is DeliverBatch to another running copy of the bulk
// function, as when the event source mapping runs several at once.
func (s *Stack) DeliverBatchTo(ctx context.Context, fn *standin.Function) (Batch, error) {
	return s.DeliverJobs(ctx, fn, 10)
}

// DeliverJobs is DeliverBatchTo with up to n messages in the event, as a
// mapping on a standard queue with a batch size of n and a batching window
// gathers them. The messages stay invisible for the job queue's visibility
// timeout.
func (s *Stack) DeliverJobs(ctx context.Context, fn *standin.Function, n int) (Batch, error) {
	var b Batch
	msgs, err := s.receiveJobs(ctx, n)
	if err != nil || len(msgs) == 0 {
		return b, err
	}
	for _, m := range msgs {
		b.Event.Records = append(b.Event.Records, events.SQSMessage{
			MessageId:         aws.ToString(m.MessageId),
			ReceiptHandle:     aws.ToString(m.ReceiptHandle),
			Body:              aws.ToString(m.Body),
			Md5OfBody:         aws.ToString(m.MD5OfBody),
			Attributes:        m.Attributes,
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSourceARN:    s.JobQueueARN,
			EventSource:       "aws:sqs",
			AWSRegion:         standin.Region,
		})
	}
	payload, err := json.Marshal(b.Event)
	if err != nil {
		return b, err
	}
	start := time.Now()
	raw, err := fn.Invoke(ctx, payload)
	b.Invocation = time.Since(start)
	s.noteError(err)
	if err != nil {
		// a failed invocation: the mapping retries the whole batch later
		return b, fmt.Errorf("bulk function failed the whole batch: %w", err)
	}
	if err := json.Unmarshal(raw, &b.Response); err != nil {
		return b, fmt.Errorf("bulk function answered something that is not a batch response: %w", err)
	}

	// acknowledge what succeeded; the failures stay for a later receive
	failed := map[string]bool{}
	for _, f := range b.Response.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if failed[aws.ToString(m.MessageId)] {
			continue
		}
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle,
		})
		b.Deleted = append(b.Deleted, aws.ToString(m.MessageId))
	}
	for chunk := range slices.Chunk(entries, 10) {
		if _, err := s.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(s.JobQueueURL), Entries: chunk,
		}); err != nil {
			return b, fmt.Errorf("deleting acknowledged jobs: %w", err)
		}
	}
	return b, nil
}

// receiveJobs receives up to n waiting messages, ten at a time, and stops
// early when the queue has no more. Up to ten it receives once, as a
// mapping's poller does.
func (s *Stack) receiveJobs(ctx context.Context, n int) ([]sqstypes.Message, error) {
	var msgs []sqstypes.Message
	for len(msgs) < n {
		out, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(s.JobQueueURL),
			MaxNumberOfMessages:         int32(min(10, n-len(msgs))),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
			WaitTimeSeconds:             0,
		})
		if err != nil {
			return nil, fmt.Errorf("receiving jobs: %w", err)
		}
		if len(out.Messages) == 0 {
			break
		}
		msgs = append(msgs, out.Messages...)
		if n <= 10 {
			break
		}
	}
	return msgs, nil
}

// DeadLetters reads every record waiting in the dead-letter queue and
// removes them from it.
func (s *Stack) DeadLetters(ctx context.Context) ([]deadletter.Record, []string, error) {
	var records []deadletter.Record
	var raws []string
	for {
		out, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.DeadLetterQueueURL), MaxNumberOfMessages: 10,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("reading the dead-letter queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return records, raws, nil
		}
		for _, m := range out.Messages {
			var r deadletter.Record
			body := aws.ToString(m.Body)
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				return nil, nil, fmt.Errorf("a dead-letter message is not a record: %w", err)
			}
			records = append(records, r)
			raws = append(raws, body)
			if _, err := s.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl: aws.String(s.DeadLetterQueueURL), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				return nil, nil, err
			}
		}
	}
}

// ReleaseFailures makes the messages a batch reported as failed visible
// again at once, as if their visibility timeout had passed.
func (s *Stack) ReleaseFailures(ctx context.Context, b Batch) error {
	failed := map[string]bool{}
	for _, f := range b.Response.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range b.Event.Records {
		if !failed[r.MessageId] {
			continue
		}
		if _, err := s.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(s.JobQueueURL), ReceiptHandle: aws.String(r.ReceiptHandle),
			VisibilityTimeout: 0,
		}); err != nil {
			return fmt.Errorf("releasing message %s: %w", r.MessageId, err)
		}
	}
	return nil
}

// ReleaseAll makes every message of a batch visible again at once, as if
// the invocation had died and the visibility timeout had passed.
func (s *Stack) ReleaseAll(ctx context.Context, b Batch) error {
	all := b
	all.Response.BatchItemFailures = nil
	for _, r := range b.Event.Records {
		if slices.Contains(b.Deleted, r.MessageId) {
			continue
		}
		all.Response.BatchItemFailures = append(all.Response.BatchItemFailures,
			events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
	}
	return s.ReleaseFailures(ctx, all)
}
