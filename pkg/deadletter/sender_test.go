package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// sized returns a record whose JSON body is exactly n bytes (n must be
// larger than the body of a record with an empty project name). Its
// timestamp is set so that Send leaves the body as it is.
func sized(t *testing.T, n int) Record {
	t.Helper()
	r := Record{Reason: ReasonDeploymentFailed, Source: SourceBulk, SecretID: "s",
		Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.ProjectName = "x"
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	r.ProjectName = strings.Repeat("x", 1+n-len(b))
	if b, _ = json.Marshal(r); len(b) != n {
		t.Fatalf("record of %d bytes, want %d", len(b), n)
	}
	return r
}

// checkCalls fails unless the calls sent every record of n exactly once, in
// order, with at most ten entries and maxBatchBytes of bodies per call.
func checkCalls(t *testing.T, calls [][]string, bodies [][]int, n int) {
	t.Helper()
	var ids []string
	for c, call := range calls {
		total := 0
		for _, b := range bodies[c] {
			total += b
		}
		if len(call) > maxBatch || total > maxBatchBytes {
			t.Errorf("call %d: %d entries, %d bytes; the bounds are %d and %d",
				c, len(call), total, maxBatch, maxBatchBytes)
		}
		ids = append(ids, call...)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("entries sent %v, want each of 0..%d once, in order", ids, n-1)
	}
}

func idsAndSizes(f *fakeSQS) (calls [][]string, bodies [][]int) {
	for _, entries := range f.calls {
		var ids []string
		var sizes []int
		for _, e := range entries {
			ids = append(ids, aws.ToString(e.Id))
			sizes = append(sizes, len(aws.ToString(e.MessageBody)))
		}
		calls, bodies = append(calls, ids), append(bodies, sizes)
	}
	return calls, bodies
}

// (g) Records too large to go ten to a call are split by size, and a call
// of large records followed by small ones still holds at most ten.
func TestSendSplitsByTheBatchSizeLimit(t *testing.T) {
	big := sized(t, 40<<10) // four to a call of 192 KiB
	small := sized(t, 1<<10)
	for _, tc := range []struct {
		name      string
		records   []Record
		wantCalls []int // entries per call
	}{
		{"twelve of 40 KiB go four to a call", slices.Repeat([]Record{big}, 12), []int{4, 4, 4}},
		{"large ones then small ones", append(slices.Repeat([]Record{big}, 5),
			slices.Repeat([]Record{small}, 15)...), []int{4, 10, 6}},
		{"small ones then large ones", append(slices.Repeat([]Record{small}, 3),
			slices.Repeat([]Record{big}, 6)...), []int{7, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSQS{}
			if err := NewSender(f, "https://q/dlq").Send(context.Background(), tc.records...); err != nil {
				t.Fatal(err)
			}
			calls, bodies := idsAndSizes(f)
			checkCalls(t, calls, bodies, len(tc.records))
			if len(calls) < 2 {
				t.Errorf("%d call(s): the records add up to more than one call may hold", len(calls))
			}
			var per []int
			for _, c := range calls {
				per = append(per, len(c))
			}
			if !slices.Equal(per, tc.wantCalls) {
				t.Errorf("entries per call %v, want %v", per, tc.wantCalls)
			}
		})
	}
}

// Records that add up to exactly maxBatchBytes go in one call: the limit is
// inclusive.
func TestSendFillsACallUpToTheByteLimit(t *testing.T) {
	half := sized(t, maxBatchBytes/2)
	f := &fakeSQS{}
	if err := NewSender(f, "https://q/dlq").Send(context.Background(), half, half, sized(t, 1<<10)); err != nil {
		t.Fatal(err)
	}
	calls, bodies := idsAndSizes(f)
	checkCalls(t, calls, bodies, 3)
	if len(calls) != 2 || len(calls[0]) != 2 {
		t.Errorf("calls %v, want [[0 1] [2]]", calls)
	}
}

// editedSQS is a fakeSQS whose answer edit changes before it is returned:
// a malformed answer.
type editedSQS struct {
	fakeSQS
	edit func(in *sqs.SendMessageBatchInput, out *sqs.SendMessageBatchOutput)
}

func (s *editedSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput,
	opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out, err := s.fakeSQS.SendMessageBatch(ctx, in, opts...)
	if err == nil {
		s.edit(in, out)
	}
	return out, err
}

// silent is an edit that lists the given ids neither as successful nor as
// failed.
func silent(ids ...string) func(*sqs.SendMessageBatchInput, *sqs.SendMessageBatchOutput) {
	return func(_ *sqs.SendMessageBatchInput, out *sqs.SendMessageBatchOutput) {
		out.Successful = slices.DeleteFunc(out.Successful, func(e types.SendMessageBatchResultEntry) bool {
			return slices.Contains(ids, aws.ToString(e.Id))
		})
		out.Failed = slices.DeleteFunc(out.Failed, func(e types.BatchResultErrorEntry) bool {
			return slices.Contains(ids, aws.ToString(e.Id))
		})
	}
}

// strayFailures is an edit that also lists as failed those of the given
// ids that were not in the call.
func strayFailures(ids ...string) func(*sqs.SendMessageBatchInput, *sqs.SendMessageBatchOutput) {
	return func(in *sqs.SendMessageBatchInput, out *sqs.SendMessageBatchOutput) {
		for _, id := range ids {
			if !slices.ContainsFunc(in.Entries, func(e types.SendMessageBatchRequestEntry) bool {
				return aws.ToString(e.Id) == id
			}) {
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String("X")})
			}
		}
	}
}

// (g) An entry the answer does not mention was not confirmed: it is a
// failure, named by its index, in the first call and in a later one.
func TestSendCountsAnEntryTheAnswerDoesNotMentionAsFailed(t *testing.T) {
	f := &editedSQS{fakeSQS: fakeSQS{refuse: map[string]bool{"4": true}}, edit: silent("1", "12")}
	err := NewSender(f, "https://q/dlq").Send(context.Background(), records(13)...)
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("want a *SendError, got %v", err)
	}
	var got []int
	for i := range se.Failed {
		got = append(got, i)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 4, 12}) {
		t.Errorf("failed %v, want [1 4 12]: %v", got, se)
	}
	if e := se.Failed[1]; e == nil || !strings.Contains(e.Error(), "did not confirm") {
		t.Errorf("record 1: %v", e)
	}
	if len(f.calls) != 2 {
		t.Errorf("%d calls, want 2", len(f.calls))
	}
}

// An answer naming ids that were not in its call (the first call's "3",
// one past the last record, or no number) fails no record: each record is
// judged by its own entry only, and no index outside the batch is returned.
func TestSendIgnoresFailedIDsThatWereNotInTheCall(t *testing.T) {
	f := &editedSQS{edit: strayFailures("3", "12", "-1", "x")}
	err := NewSender(f, "https://q/dlq").Send(context.Background(), records(12)...)
	if err != nil {
		t.Errorf("every record was accepted, got %v", err)
	}
	if len(f.calls) != 2 {
		t.Errorf("%d calls, want 2", len(f.calls))
	}
}
