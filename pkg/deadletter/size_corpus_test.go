package deadletter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/apinizer-rotation/rotator/internal/corpus"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// sqsMaxMessage is the message size limit the README and maxJobBody
// assume: 256 KiB, SQS's long-standing default. (A queue may allow up to
// 1 MiB; the answers below exceed that too.)
const sqsMaxMessage = 256 << 10

// sizedSQS applies SQS's size limits: a message over limit bytes is
// refused, and so is a whole batch whose messages add up to more.
type sizedSQS struct {
	limit int
	sizes []int
}

func (s *sizedSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput,
	_ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	total := 0
	for _, e := range in.Entries {
		total += len(aws.ToString(e.MessageBody))
	}
	if total > s.limit {
		s.sizes = append(s.sizes, total)
		return nil, &types.BatchRequestTooLong{Message: aws.String(
			fmt.Sprintf("the messages add up to %d bytes, more than %d", total, s.limit))}
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		n := len(aws.ToString(e.MessageBody))
		s.sizes = append(s.sizes, n)
		if n > s.limit {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id,
				Code: aws.String("InvalidParameterValue"), SenderFault: true,
				Message: aws.String(fmt.Sprintf("message of %d bytes is longer than %d", n, s.limit))})
			continue
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// corpusAnswerBody reads the body of one corpus answer (after the first
// blank line), expanded.
func corpusAnswerBody(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../testdata/corpus/apinizer/" + name)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(data, []byte("\n\n"))
	return corpus.Expand(t, body)
}

// TestAFailedDeploymentRecordFitsInAQueueMessage was F1 (now closed):
// an answer Apinizer's client reads in full (under its 1 MiB cap) can list
// enough failed environments to make a dead-letter record that SQS refuses.
// The bulk function then retries the message instead of recording it (and
// SQS redrives it raw after maxReceiveCount), and the rotation function's
// step keeps failing with "dead-letter record not sent": the failure record
// itself is lost.
//
// go test -run TestAFailedDeploymentRecord -v ./pkg/deadletter
// shows the sizes.
func TestAFailedDeploymentRecordFitsInAQueueMessage(t *testing.T) {
	for _, name := range []string{"many-failed-environments.http", "many-failed-environments-with-messages.http"} {
		t.Run(name, func(t *testing.T) {
			body := corpusAnswerBody(t, name)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			c, err := apinizer.New(srv.URL, apinizer.StaticToken(sensitive.New("tok-0123456789")), apinizer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ChangePassword(context.Background(), "Orders", "orders-client", sensitive.New("Pass-0123456789"))
			var de *apinizer.DeploymentError
			if !errors.As(err, &de) {
				t.Fatalf("want a failed deployment, got %v", err)
			}

			// the record the rotation function writes for it
			rec := Record{Reason: ReasonDeploymentFailed, Source: SourceRotation, SecretID: "apinizer/orders",
				ProjectName: "Orders", Username: "orders-client", VersionID: "v1",
				Environments: de.Deployment.Environments, Error: fmt.Sprintf("setSecret: secret x: %v", err)}
			q := &sizedSQS{limit: sqsMaxMessage}
			sendErr := NewSender(q, "https://sqs.us-east-1.amazonaws.com/1/dlq").Send(context.Background(), rec)
			t.Logf("answer %d bytes, %d environments, error text %d bytes, record %d bytes",
				len(body), len(de.Deployment.Environments), len(err.Error()), q.sizes[0])
			if sendErr != nil {
				t.Errorf("the record was not sent: %v", sendErr)
			}
		})
	}
}

// TestInvalidJobRecordsOfOneBatchFitInOneSendMessageBatch is the other half
// of F1: maxJobBody caps a job body at 16 KiB before JSON encoding, which
// escapes '<', '>', '&' and control characters to six bytes each. Ten
// invalid messages of one batch, each 20,000 '<' (the corpus body
// sqs/angle-brackets.body), make ten records of about 96 KiB that Send puts
// into one SendMessageBatch call of about 960 KiB, which SQS refuses
// whole: all ten messages are retried instead of dead-lettered, and
// redriven raw after maxReceiveCount.
func TestInvalidJobRecordsOfOneBatchFitInOneSendMessageBatch(t *testing.T) {
	data, err := os.ReadFile("../../testdata/corpus/sqs/angle-brackets.body")
	if err != nil {
		t.Fatal(err)
	}
	body := string(corpus.Expand(t, data))
	recs := make([]Record, 10)
	for i := range recs {
		recs[i] = Record{Reason: ReasonInvalidJob, Source: SourceBulk, MessageID: fmt.Sprintf("m%d", i),
			JobBody: body, Error: `invalid bulk job: the body is not a JSON object like {"secretId": "..."}`}
	}
	q := &sizedSQS{limit: sqsMaxMessage}
	err = NewSender(q, "https://sqs.us-east-1.amazonaws.com/1/dlq").Send(context.Background(), recs...)
	t.Logf("job body %d bytes; SendMessageBatch of %d bytes", len(body), q.sizes[0])
	if err != nil {
		t.Errorf("records not sent: %.300v", err)
	}
}
