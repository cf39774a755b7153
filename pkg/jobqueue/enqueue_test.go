package jobqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
)

const (
	standardURL = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
	fifoURL     = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo"
)

var entryIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func secretIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("apinizer/orders/client-%02d", i)
	}
	return ids
}

func TestEnqueueSendsTwentyThreeJobsInThreeCalls(t *testing.T) {
	fake := &fakeSQS{}
	var waits []time.Duration
	r, err := enqueue(t.Context(), testSender(fake, standardURL, &waits), secretIDs(23),
		EnqueueOptions{QueueURL: standardURL, JobID: "leak-1"})
	if err != nil {
		t.Fatal(err)
	}

	var sizes []int
	for _, in := range fake.sends {
		sizes = append(sizes, len(in.Entries))
		if aws.ToString(in.QueueUrl) != standardURL {
			t.Errorf("QueueUrl = %q", aws.ToString(in.QueueUrl))
		}
		ids := map[string]bool{}
		for _, e := range in.Entries {
			id := aws.ToString(e.Id)
			if !entryIDPattern.MatchString(id) || ids[id] {
				t.Errorf("entry id %q is not a unique [A-Za-z0-9_-]{1,80}", id)
			}
			ids[id] = true
			if e.MessageGroupId != nil || e.MessageDeduplicationId != nil {
				t.Errorf("a standard queue got FIFO fields")
			}
		}
	}
	if fmt.Sprint(sizes) != "[10 10 3]" {
		t.Errorf("batch sizes = %v, want [10 10 3]", sizes)
	}
	for i, body := range fake.bodies() {
		job, err := bulk.ParseJob(body)
		if err != nil || job.SecretID != secretIDs(23)[i] || job.JobID != "leak-1" {
			t.Errorf("body %d = %s (%v)", i, body, err)
		}
	}
	if r.Found != 23 || r.Enqueued != 23 || len(r.Failed) != 0 || !r.OK() || len(waits) != 0 {
		t.Errorf("report = %+v, waits %v", r, waits)
	}
}

func TestEnqueueRetriesTheEntriesSQSFailed(t *testing.T) {
	fail := func(id string, senderFault bool) types.BatchResultErrorEntry {
		return types.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String("InternalError"),
			Message: aws.String("try later"), SenderFault: senderFault}
	}
	tests := []struct {
		name   string
		answer func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
		// entries of each call, by entry id
		calls    string
		enqueued int
		failed   map[string]string // secret id: part of the reason
	}{
		{
			name: "entries failed by SQS are sent again, alone",
			answer: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				if n > 1 {
					return acceptAll(in), nil
				}
				out := acceptAll(&sqs.SendMessageBatchInput{Entries: in.Entries[:3]})
				out.Failed = []types.BatchResultErrorEntry{fail("3", false), fail("4", false)}
				return out, nil
			},
			calls:    "[0 1 2 3 4] [3 4]",
			enqueued: 5,
		},
		{
			name: "an entry at fault is reported, not sent again",
			answer: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				out := acceptAll(&sqs.SendMessageBatchInput{Entries: in.Entries[1:]})
				out.Failed = []types.BatchResultErrorEntry{fail("0", true)}
				return out, nil
			},
			calls:    "[0 1 2 3 4]",
			enqueued: 4,
			failed:   map[string]string{"s0": "SQS refused the message: InternalError: try later"},
		},
		{
			name: "an entry neither accepted nor failed is sent again",
			answer: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				if n > 1 {
					return acceptAll(in), nil
				}
				return acceptAll(&sqs.SendMessageBatchInput{Entries: in.Entries[:4]}), nil
			},
			calls:    "[0 1 2 3 4] [4]",
			enqueued: 5,
		},
		{
			name: "retries end after four calls",
			answer: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				last := len(in.Entries) - 1
				out := acceptAll(&sqs.SendMessageBatchInput{Entries: in.Entries[:last]})
				out.Failed = []types.BatchResultErrorEntry{fail(aws.ToString(in.Entries[last].Id), false)}
				return out, nil
			},
			calls:    "[0 1 2 3 4] [4] [4] [4]",
			enqueued: 4,
			failed:   map[string]string{"s4": "SQS failed: InternalError"},
		},
		{
			name: "a failed call stops the run",
			answer: func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
				return nil, errors.New("AWS.SimpleQueueService.NonExistentQueue")
			},
			calls:    "[0 1 2 3 4]",
			enqueued: 0,
			failed: map[string]string{"s0": "NonExistentQueue", "s1": "NonExistentQueue",
				"s2": "NonExistentQueue", "s3": "NonExistentQueue", "s4": "NonExistentQueue"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeSQS{answer: tt.answer}
			var waits []time.Duration
			r, err := enqueue(t.Context(), testSender(fake, standardURL, &waits),
				[]string{"s0", "s1", "s2", "s3", "s4"}, EnqueueOptions{QueueURL: standardURL, JobID: "j"})
			if err != nil {
				t.Fatal(err)
			}
			var calls []string
			for _, in := range fake.sends {
				var ids []string
				for _, e := range in.Entries {
					ids = append(ids, aws.ToString(e.Id))
				}
				calls = append(calls, fmt.Sprint(ids))
			}
			if got := strings.Join(calls, " "); got != tt.calls {
				t.Errorf("calls = %s, want %s", got, tt.calls)
			}
			if len(waits) != len(fake.sends)-1 {
				t.Errorf("%d waits for %d calls", len(waits), len(fake.sends))
			}
			for i := 1; i < len(waits); i++ {
				if waits[i] <= waits[i-1]/2 || waits[i] > 2*DefaultSendBackoff<<i {
					t.Errorf("waits %v do not back off", waits)
				}
			}
			if r.Enqueued != tt.enqueued || len(r.Failed) != len(tt.failed) {
				t.Errorf("enqueued %d, failed %v; want %d, %v", r.Enqueued, r.Failed,
					tt.enqueued, tt.failed)
			}
			for _, f := range r.Failed {
				if !strings.Contains(f.Reason, tt.failed[f.ID]) || tt.failed[f.ID] == "" {
					t.Errorf("failure %s: %q, want it to say %q", f.ID, f.Reason, tt.failed[f.ID])
				}
			}
			if r.OK() != (len(tt.failed) == 0) {
				t.Errorf("OK = %v", r.OK())
			}
		})
	}
}

func TestEnqueueStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	fake := &fakeSQS{}
	fake.answer = func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		cancel()
		return acceptAll(in), nil
	}
	s := newBatchSender(fake, standardURL)
	r, err := enqueue(ctx, s, secretIDs(25), EnqueueOptions{QueueURL: standardURL, JobID: "j"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Enqueued != 10 || len(r.Failed) != 15 || len(fake.sends) != 1 {
		t.Fatalf("enqueued %d, failed %d, in %d calls; want 10, 15, 1", r.Enqueued,
			len(r.Failed), len(fake.sends))
	}
	if !strings.Contains(r.Failed[0].Reason, "context canceled") {
		t.Errorf("reason = %q", r.Failed[0].Reason)
	}
}

func TestEnqueueOnFIFOQueues(t *testing.T) {
	long := "arn:aws:secretsmanager:us-east-1:123456789012:secret:" +
		strings.Repeat("x", 130) + "-AbCdEf"
	fake := &fakeSQS{}
	var waits []time.Duration
	ids := []string{"apinizer/orders/a", long}
	if _, err := enqueue(t.Context(), testSender(fake, fifoURL, &waits), ids,
		EnqueueOptions{QueueURL: fifoURL, JobID: "leak-7"}); err != nil {
		t.Fatal(err)
	}
	if _, err := enqueue(t.Context(), testSender(fake, fifoURL, &waits), ids,
		EnqueueOptions{QueueURL: fifoURL, JobID: "leak-7"}); err != nil {
		t.Fatal(err)
	}
	first, second := fake.sends[0].Entries, fake.sends[1].Entries
	if g := aws.ToString(first[0].MessageGroupId); g != "apinizer/orders/a" {
		t.Errorf("group of a short id = %q, want the id", g)
	}
	if g := aws.ToString(first[1].MessageGroupId); len(g) > 128 || !strings.HasPrefix(g, "sha256-") {
		t.Errorf("group of a %d-character id = %q, want its hash", len(long), g)
	}
	// one group per secret however it is named, so that SQS never hands
	// two of its jobs out at once
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/orders/a-AbCdEf"
	if g := groupID(arn); g != aws.ToString(first[0].MessageGroupId) {
		t.Errorf("group of %s = %q, want the same as its name's", arn, g)
	}
	for i := range first {
		d := aws.ToString(first[i].MessageDeduplicationId)
		if d != dedupID("leak-7", bulk.SecretName(ids[i])) || len(d) != 64 {
			t.Errorf("dedup id %d = %q", i, d)
		}
		if d != aws.ToString(second[i].MessageDeduplicationId) {
			t.Errorf("the same job enqueued twice got two deduplication ids")
		}
	}
	// and one deduplication id per job and secret, however it is named
	r, err := Enqueue(t.Context(), &fakeSQS{}, []string{arn}, EnqueueOptions{QueueURL: fifoURL,
		JobID: "leak-7", DryRun: true})
	if err != nil || r.Jobs[0].DedupID != aws.ToString(first[0].MessageDeduplicationId) {
		t.Errorf("the job by ARN got deduplication id %+v, by name %q (%v)", r.Jobs,
			aws.ToString(first[0].MessageDeduplicationId), err)
	}
	if dedupID("leak-7", ids[0]) == dedupID("leak-8", ids[0]) {
		t.Error("another job id must give another deduplication id")
	}
}

func TestGroupID(t *testing.T) {
	tests := []struct {
		name, id string
		hashed   bool
	}{
		{"a name is its own group", "apinizer/orders/client", false},
		{"an ARN of 128 characters is kept", strings.Repeat("a", 128), false},
		{"129 characters are hashed", strings.Repeat("a", 129), true},
		{"a space is hashed", "a b", true},
		{"non-ASCII is hashed", "çağrı", true},
		{"empty is hashed", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := groupID(tt.id)
			if hashed := g != tt.id; hashed != tt.hashed {
				t.Errorf("groupID(%q) = %q", tt.id, g)
			}
			if !regexp.MustCompile(`^[\x21-\x7e]{1,128}$`).MatchString(g) {
				t.Errorf("groupID(%q) = %q is no valid MessageGroupId", tt.id, g)
			}
		})
	}
}

func TestEnqueueDropsDuplicatesAndInvalidIDs(t *testing.T) {
	fake := &fakeSQS{}
	var waits []time.Duration
	ids := []string{"a", "b", "a", "has space", "c", "b", "a", strings.Repeat("x", 2049)}
	r, err := enqueue(t.Context(), testSender(fake, standardURL, &waits), ids,
		EnqueueOptions{QueueURL: standardURL, JobID: "j"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Found != 8 || r.Duplicates != 3 || r.Enqueued != 3 || len(r.Failed) != 2 || r.OK() {
		t.Errorf("report = found %d, duplicates %d, enqueued %d, failed %v",
			r.Found, r.Duplicates, r.Enqueued, r.Failed)
	}
	want := `{"secretId":"a","jobId":"j"} {"secretId":"b","jobId":"j"} {"secretId":"c","jobId":"j"}`
	if got := strings.Join(fake.bodies(), " "); got != want {
		t.Errorf("sent %s, want %s", got, want)
	}
	if r.Failed[0].ID != "has space" || !strings.Contains(r.Failed[0].Reason, "without spaces") {
		t.Errorf("failure = %+v", r.Failed[0])
	}

	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"summary: found 8, enqueued 3, failed 2, skipped duplicates 3, excluded 0",
		`failed has space: invalid bulk job: "secretId" must be printable ASCII without spaces`,
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}
}

func TestEnqueueSkipsExcludedSecretsByNameOrARN(t *testing.T) {
	fake := &fakeSQS{}
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/token-AbCdEf"
	ids := []string{"apinizer/orders/a", arn, "apinizer/token", "apinizer/orders/b", "apinizer/token2"}
	var waits []time.Duration
	r, err := enqueue(t.Context(), testSender(fake, standardURL, &waits), ids,
		EnqueueOptions{QueueURL: standardURL, JobID: "j", Exclude: []string{"apinizer/token"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"secretId":"apinizer/orders/a","jobId":"j"} {"secretId":"apinizer/orders/b","jobId":"j"} ` +
		`{"secretId":"apinizer/token2","jobId":"j"}`
	if got := strings.Join(fake.bodies(), " "); got != want {
		t.Errorf("sent %s, want %s", got, want)
	}
	// the token secret, by ARN and by name, is one secret listed twice
	if r.Found != 5 || r.Duplicates != 1 || r.Excluded != 1 || r.Enqueued != 3 || !r.OK() {
		t.Errorf("report = found %d, duplicates %d, excluded %d, enqueued %d, failed %v", r.Found,
			r.Duplicates, r.Excluded, r.Enqueued, r.Failed)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	if line := "summary: found 5, enqueued 3, failed 0, skipped duplicates 1, excluded 1\n"; !strings.Contains(out.String(), line) {
		t.Errorf("report lacks %q:\n%s", line, out.String())
	}
}

func TestEnqueueDryRunSendsNothing(t *testing.T) {
	fake := &fakeSQS{}
	r, err := Enqueue(t.Context(), fake, []string{"a", "b", "a"},
		EnqueueOptions{QueueURL: fifoURL, JobID: "j", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.sends) != 0 {
		t.Fatalf("a dry run made %d calls", len(fake.sends))
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`queue: %s (FIFO)
job id: j
would send {"secretId":"a","jobId":"j"} group=a dedup=%s
would send {"secretId":"b","jobId":"j"} group=b dedup=%s
summary (dry run, nothing sent): found 3, would enqueue 2, failed 0, skipped duplicates 1, excluded 0
`, fifoURL, dedupID("j", "a"), dedupID("j", "b"))
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestEnqueueRefusesBadOptions(t *testing.T) {
	for name, opts := range map[string]EnqueueOptions{
		"no queue":              {JobID: "j"},
		"no job id":             {QueueURL: standardURL},
		"a job id with a space": {QueueURL: standardURL, JobID: "a b"},
		"a job id too long":     {QueueURL: standardURL, JobID: strings.Repeat("j", 129)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Enqueue(t.Context(), &fakeSQS{}, []string{"a"}, opts); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestEnqueueShowsProgress(t *testing.T) {
	fake := &fakeSQS{}
	var waits []time.Duration
	s := testSender(fake, standardURL, &waits)
	var out bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// every call to send moves the clock 600 ms: a line every other batch
	fake.answer = func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		now = now.Add(600 * time.Millisecond)
		return acceptAll(in), nil
	}
	p := &progress{w: &out, interval: time.Second, now: func() time.Time { return now }, last: now}
	// drive the sender the way enqueue does, with the test clock
	msgs := make([]message, 45)
	for i := range msgs {
		msgs[i] = message{body: jobBody(fmt.Sprint(i), "j")}
	}
	sent := 0
	s.sent = func(accepted, _ int) {
		sent += accepted
		p.update(func() string { return fmt.Sprintf("enqueue: %d/%d sent", sent, len(msgs)) })
	}
	if _, err := s.send(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	p.done("done")
	want := "enqueue: 20/45 sent\nenqueue: 40/45 sent\ndone\n"
	if out.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", out.String(), want)
	}

	// and enqueue itself writes a last line
	out.Reset()
	opts := EnqueueOptions{QueueURL: standardURL, JobID: "j", Progress: &out}
	if _, err := Enqueue(t.Context(), &fakeSQS{}, []string{"a", "b"}, opts); err != nil {
		t.Fatal(err)
	}
	if out.String() != "enqueue: 2/2 sent, 0 failed\n" {
		t.Errorf("progress = %q", out.String())
	}
}
