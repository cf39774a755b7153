package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
)

// fakeSQS accepts every entry except the ids in refuse, and records calls.
type fakeSQS struct {
	calls  [][]types.SendMessageBatchRequestEntry
	refuse map[string]bool
	err    error
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput,
	_ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.calls = append(f.calls, in.Entries)
	if f.err != nil {
		return nil, f.err
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if f.refuse[aws.ToString(e.Id)] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{
				Id: e.Id, Code: aws.String("InternalError"), SenderFault: false,
			})
			continue
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func records(n int) []Record {
	rs := make([]Record, n)
	for i := range rs {
		rs[i] = Record{Reason: ReasonDeploymentFailed, Source: SourceBulk, SecretID: "s"}
	}
	return rs
}

func TestSendSplitsIntoBatchesOfTen(t *testing.T) {
	f := &fakeSQS{}
	if err := NewSender(f, "https://q/dlq").Send(context.Background(), records(23)...); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 3 || len(f.calls[0]) != 10 || len(f.calls[2]) != 3 {
		t.Fatalf("batches: got %d calls", len(f.calls))
	}
}

func TestSendReportsEveryEntryTheQueueRefused(t *testing.T) {
	f := &fakeSQS{refuse: map[string]bool{"3": true, "11": true}}
	err := NewSender(f, "https://q/dlq").Send(context.Background(), records(12)...)
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("want *SendError, got %v", err)
	}
	if len(se.Failed) != 2 || se.Failed[3] == nil || se.Failed[11] == nil {
		t.Errorf("failed entries: %v", se.Failed)
	}
}

func TestSendReportsAllRecordsWhenTheCallFails(t *testing.T) {
	f := &fakeSQS{err: errors.New("throttled")}
	err := NewSender(f, "https://q/dlq").Send(context.Background(), records(2)...)
	var se *SendError
	if !errors.As(err, &se) || len(se.Failed) != 2 {
		t.Fatalf("want both records failed, got %v", err)
	}
}

func TestFIFOQueueGetsGroupAndDeduplicationIDs(t *testing.T) {
	f := &fakeSQS{}
	if err := NewSender(f, "https://q/dlq.fifo").Send(context.Background(), records(1)...); err != nil {
		t.Fatal(err)
	}
	e := f.calls[0][0]
	if e.MessageGroupId == nil || e.MessageDeduplicationId == nil {
		t.Error("FIFO entry lacks group or deduplication id")
	}
}

func TestRecordJSONHasTheDocumentedKeys(t *testing.T) {
	r := Record{
		Reason: ReasonDeploymentFailed, Source: SourceRotation, SecretID: "arn:x",
		ProjectName: "p", Username: "u", VersionID: "v", Error: "e",
		Environments: []apinizer.EnvironmentResult{{Name: "prod", Pod: "pod-1", Message: "Connection refused"}},
		JobBody:      strings.Repeat("x", maxJobBody+10),
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reason", "source", "secretId", "projectName", "username",
		"versionId", "environments", "error", "timestamp"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing in %s", k, b)
		}
	}
	env := m["environments"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "success", "message", "pod"} {
		if _, ok := env[k]; !ok {
			t.Errorf("environment key %q missing", k)
		}
	}
	if len(m["jobBody"].(string)) > maxJobBody+20 {
		t.Error("job body was not cut")
	}
	empty, _ := json.Marshal(Record{Reason: ReasonInvalidJob})
	if !strings.Contains(string(empty), `"environments":[]`) {
		t.Errorf("environments must be a list, got %s", empty)
	}
}
