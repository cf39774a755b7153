package jobqueue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

const dlqURL = "https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters"

// record returns a dead-letter record as the functions write it.
func record(t *testing.T, r deadletter.Record) string {
	t.Helper()
	r.Timestamp = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadDeadLetter(t *testing.T) {
	tests := []struct {
		name, body string
		// what is sent back, or why not
		reason, secretID, jobID, sent, skipped, key string
	}{
		{
			name: "a bulk record sends its job body",
			body: record(t, deadletter.Record{Reason: "deployment_failed", Source: "bulk",
				SecretID: "apinizer/o/a", MessageID: "orig-1", JobID: "leak-1",
				JobBody: `{"secretId":"apinizer/o/a","jobId":"leak-1"}`}),
			reason: "deployment_failed", secretID: "apinizer/o/a", jobID: "leak-1",
			sent: `{"secretId":"apinizer/o/a","jobId":"leak-1"}`, key: "message:orig-1",
		},
		{
			name: "a rotation record becomes a new job for its secret",
			body: record(t, deadletter.Record{Reason: "rejected", Source: "rotation",
				SecretID: "apinizer/o/b", VersionID: "v-1"}),
			reason: "rejected", secretID: "apinizer/o/b", jobID: "redrive-dlq-1",
			sent: `{"secretId":"apinizer/o/b","jobId":"redrive-dlq-1"}`,
			key:  "version:apinizer/o/b\x00v-1",
		},
		{
			name: "a record whose job body was cut falls back to its secret",
			body: record(t, deadletter.Record{Reason: "unexpected", Source: "bulk",
				SecretID: "apinizer/o/c", MessageID: "orig-3",
				JobBody: `{"secretId":"apinizer/o/c","note":"` + strings.Repeat("x", 17<<10) + `"}`}),
			reason: "unexpected", secretID: "apinizer/o/c", jobID: "redrive-dlq-1",
			sent: `{"secretId":"apinizer/o/c","jobId":"redrive-dlq-1"}`, key: "message:orig-3",
		},
		{
			name: "an invalid job with no secret is skipped",
			body: record(t, deadletter.Record{Reason: "invalid_job", Source: "bulk",
				MessageID: "orig-4", JobBody: "not json"}),
			reason: "invalid_job", skipped: "an invalid job cannot succeed as it is",
			key: "message:orig-4",
		},
		{
			// the faulty field is redacted in the record: moved back, it
			// would become a job under the literal id "[REDACTED]"
			name: "an invalid job naming a secret is skipped too",
			body: record(t, deadletter.Record{Reason: "invalid_job", Source: "bulk",
				SecretID: "apinizer/o/f", MessageID: "orig-5",
				JobBody: `{"jobId":"[REDACTED]","secretId":"apinizer/o/f"}`}),
			reason: "invalid_job", secretID: "apinizer/o/f", skipped: "fix it and enqueue it again",
			key: "message:orig-5",
		},
		{
			name:   "a raw job body is sent as it is",
			body:   `{"secretId":"apinizer/o/d","jobId":"leak-2","extra":1}`,
			reason: "raw", secretID: "apinizer/o/d", jobID: "leak-2",
			sent: `{"secretId":"apinizer/o/d","jobId":"leak-2","extra":1}`, key: "message:dlq-1",
		},
		{
			name:   "a raw body that is no job is skipped",
			body:   `{"secret":"apinizer/o/e"}`,
			reason: "raw", skipped: `"secretId" is missing`, key: "message:dlq-1",
		},
		{
			name:   "text is skipped",
			body:   "hello",
			reason: "raw", skipped: "neither a dead-letter record nor a job", key: "message:dlq-1",
		},
		{
			name:   "an unreadable record is skipped",
			body:   `{"reason": 5}`,
			reason: "?", skipped: "cannot be read",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := readDeadLetter("dlq-1", tt.body)
			if m.Reason != tt.reason || m.SecretID != tt.secretID || m.JobID != tt.jobID ||
				m.body != tt.sent || m.key != tt.key {
				t.Errorf("got reason %q secret %q job %q body %s key %q", m.Reason, m.SecretID,
					m.JobID, m.body, m.key)
			}
			if tt.skipped != "" && (m.State != StateSkipped || !strings.Contains(m.Detail, tt.skipped)) {
				t.Errorf("state %q %q, want skipped: %q", m.State, m.Detail, tt.skipped)
			}
			if tt.skipped == "" && m.State != "" {
				t.Errorf("state %q %q", m.State, m.Detail)
			}
		})
	}
}

// dlqFixture fills a fake dead-letter queue with one message of each kind.
func dlqFixture(t *testing.T) *fakeSQS {
	f := &fakeSQS{}
	f.put("d1", record(t, deadletter.Record{Reason: "deployment_failed", Source: "bulk",
		SecretID: "apinizer/o/a", MessageID: "orig-a", JobID: "leak-1",
		JobBody: `{"secretId":"apinizer/o/a","jobId":"leak-1"}`}))
	f.put("d2", record(t, deadletter.Record{Reason: "deployment_failed", Source: "rotation",
		SecretID: "apinizer/o/b", VersionID: "v-b"}))
	f.put("d3", `{"secretId":"apinizer/o/c"}`)
	f.put("d4", record(t, deadletter.Record{Reason: "invalid_job", Source: "bulk",
		MessageID: "orig-x", JobBody: "garbage"}))
	// the same failure as d1, recorded twice after a crash
	f.put("d5", record(t, deadletter.Record{Reason: "deployment_failed", Source: "bulk",
		SecretID: "apinizer/o/a", MessageID: "orig-a", JobID: "leak-1",
		JobBody: `{"secretId":"apinizer/o/a","jobId":"leak-1"}`}))
	f.put("d6", record(t, deadletter.Record{Reason: "rejected", Source: "bulk",
		SecretID: "apinizer/o/d", MessageID: "orig-d",
		JobBody: `{"secretId":"apinizer/o/d"}`}))
	return f
}

// The jobs the fixture's messages send back.
const (
	jobA = `{"secretId":"apinizer/o/a","jobId":"leak-1"}`
	jobB = `{"secretId":"apinizer/o/b","jobId":"redrive-d2"}`
	jobC = `{"secretId":"apinizer/o/c"}`
	jobD = `{"secretId":"apinizer/o/d"}`
)

func states(r *RedriveReport) string {
	var out []string
	for _, m := range r.Messages {
		out = append(out, m.MessageID+":"+string(m.State))
	}
	return strings.Join(out, " ")
}

func keys(m map[string]bool) string {
	var out []string
	for k, visible := range m {
		out = append(out, fmt.Sprintf("%s:%v", k, visible))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestRedrive(t *testing.T) {
	tests := []struct {
		name   string
		opts   RedriveOptions
		change func(f *fakeSQS)
		states string
		sent   string
		left   string // in the DLQ afterwards, with visibility
		ok     bool
	}{
		{
			name:   "everything that makes a job goes back; a duplicate record is removed",
			states: "d1:redriven d2:redriven d3:redriven d4:skipped d5:duplicate d6:redriven",
			sent:   jobA + " " + jobB + " " + jobC + " " + jobD,
			left:   "d4:true",
			ok:     true,
		},
		{
			name:   "a reason selects records of that reason",
			opts:   RedriveOptions{Reason: "deployment_failed"},
			states: "d1:redriven d2:redriven d3:not matching d4:not matching d5:duplicate d6:not matching",
			sent:   jobA + " " + jobB,
			left:   "d3:true d4:true d6:true",
			ok:     true,
		},
		{
			name: "raw selects the raw job bodies",
			opts: RedriveOptions{Reason: ReasonRaw},
			states: "d1:not matching d2:not matching d3:redriven d4:not matching " +
				"d5:not matching d6:not matching",
			sent: jobC,
			left: "d1:true d2:true d4:true d5:true d6:true",
			ok:   true,
		},
		{
			name: "a secret selects its messages, by name or ARN",
			opts: RedriveOptions{
				SecretID: "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/o/b-AbCdEf"},
			states: "d1:not matching d2:redriven d3:not matching d4:not matching d5:not matching " +
				"d6:not matching",
			sent: jobB,
			left: "d1:true d3:true d4:true d5:true d6:true",
			ok:   true,
		},
		{
			name:   "max stops after that many sends",
			opts:   RedriveOptions{Max: 2},
			states: "d1:redriven d2:redriven d3:over max d4:skipped d5:duplicate d6:over max",
			sent:   jobA + " " + jobB,
			left:   "d3:true d4:true d6:true",
			ok:     true,
		},
		{
			name: "a message whose send failed stays, and so does its duplicate",
			change: func(f *fakeSQS) {
				f.answer = func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
					out := acceptAll(&sqs.SendMessageBatchInput{Entries: in.Entries[1:]})
					out.Failed = []types.BatchResultErrorEntry{{Id: in.Entries[0].Id,
						Code: aws.String("InvalidParameterValue"), SenderFault: true}}
					return out, nil
				}
			},
			states: "d1:failed d2:redriven d3:redriven d4:skipped d5:failed d6:redriven",
			sent:   jobA + " " + jobB + " " + jobC + " " + jobD,
			left:   "d1:true d4:true d5:true",
		},
		{
			name:   "a message sent but not deleted is reported",
			change: func(f *fakeSQS) { f.deleteFail = map[string]bool{"d3": true} },
			states: "d1:redriven d2:redriven d3:not deleted d4:skipped d5:duplicate d6:redriven",
			sent:   jobA + " " + jobB + " " + jobC + " " + jobD,
			left:   "d3:true d4:true",
		},
		{
			name: "a dry run sends and deletes nothing, and shows everything again",
			opts: RedriveOptions{DryRun: true},
			states: "d1:would redrive d2:would redrive d3:would redrive d4:skipped " +
				"d5:would remove d6:would redrive",
			left: "d1:true d2:true d3:true d4:true d5:true d6:true",
			ok:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := dlqFixture(t)
			if tt.change != nil {
				tt.change(f)
			}
			opts := tt.opts
			opts.DLQURL, opts.QueueURL = dlqURL, standardURL
			var waits []time.Duration
			r, err := redrive(t.Context(), f, testSender(f, standardURL, &waits), opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := states(r); got != tt.states {
				t.Errorf("states:\n got %s\nwant %s", got, tt.states)
			}
			if got := strings.Join(f.bodies(), " "); got != tt.sent {
				t.Errorf("sent:\n got %s\nwant %s", got, tt.sent)
			}
			if got := keys(f.left()); got != tt.left {
				t.Errorf("left in the DLQ: %s, want %s", got, tt.left)
			}
			if r.OK() != tt.ok || r.NotReleased != 0 {
				t.Errorf("OK = %v, not released %d", r.OK(), r.NotReleased)
			}
		})
	}
}

func TestRedriveOnAFIFOJobQueue(t *testing.T) {
	f := dlqFixture(t)
	var waits []time.Duration
	_, err := redrive(t.Context(), f, testSender(f, fifoURL, &waits),
		RedriveOptions{DLQURL: dlqURL, QueueURL: fifoURL})
	if err != nil {
		t.Fatal(err)
	}
	e := f.sends[0].Entries[1] // d2
	if aws.ToString(e.MessageGroupId) != "apinizer/o/b" ||
		aws.ToString(e.MessageDeduplicationId) != dedupID("redrive", "d2") {
		t.Errorf("group %q, dedup %q", aws.ToString(e.MessageGroupId),
			aws.ToString(e.MessageDeduplicationId))
	}
}

func TestRedriveReadsInBatchesOfTen(t *testing.T) {
	f := &fakeSQS{}
	for i := range 23 {
		f.put(fmt.Sprintf("d%02d", i), fmt.Sprintf(`{"secretId":"s%02d"}`, i))
	}
	var waits []time.Duration
	r, err := redrive(t.Context(), f, testSender(f, standardURL, &waits),
		RedriveOptions{DLQURL: dlqURL, QueueURL: standardURL})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, in := range f.sends {
		sizes = append(sizes, len(in.Entries))
	}
	// three receives with messages, and the empty one that ends the run
	if fmt.Sprint(sizes) != "[10 10 3]" || f.receives != 4 || r.Count(StateRedriven) != 23 ||
		len(f.left()) != 0 {
		t.Errorf("sends %v, receives %d, redriven %d, left %v", sizes, f.receives,
			r.Count(StateRedriven), f.left())
	}
}

func TestRedriveEndsWhenOnlyMessagesSeenBeforeComeBack(t *testing.T) {
	f := dlqFixture(t)
	f.expire = true
	var waits []time.Duration
	r, err := redrive(t.Context(), f, testSender(f, standardURL, &waits),
		RedriveOptions{DLQURL: dlqURL, QueueURL: standardURL, Reason: ReasonRaw})
	if err != nil {
		t.Fatal(err)
	}
	// one receive with news, then three that bring only what was seen
	if f.receives != 1+staleReceives || len(f.sends) != 1 || r.Count(StateRedriven) != 1 {
		t.Errorf("%d receives, %d sends, redriven %d", f.receives, len(f.sends),
			r.Count(StateRedriven))
	}
	// the last receipt handles release the messages
	if got := keys(f.left()); got != "d1:true d2:true d4:true d5:true d6:true" {
		t.Errorf("left: %s", got)
	}
}

func TestRedriveReport(t *testing.T) {
	f := dlqFixture(t)
	var waits []time.Duration
	r, err := redrive(t.Context(), f, testSender(f, standardURL, &waits),
		RedriveOptions{DLQURL: dlqURL, QueueURL: standardURL, Reason: "deployment_failed"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	want := `dead-letter queue: ` + dlqURL + `
job queue: ` + standardURL + ` (standard)
redriven      d1 reason=deployment_failed secretId=apinizer/o/a jobId=leak-1
redriven      d2 reason=deployment_failed secretId=apinizer/o/b jobId=redrive-d2
duplicate     d5 reason=deployment_failed secretId=apinizer/o/a jobId=leak-1: of d1
summary: received 6, selected 3, redriven 2, duplicates removed 1, skipped 0, failed 0, sent but not deleted 0, not matching 3, over max 0
`
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRedriveRefusesBadOptions(t *testing.T) {
	for name, opts := range map[string]RedriveOptions{
		"no DLQ":             {QueueURL: standardURL},
		"no job queue":       {DLQURL: dlqURL},
		"one queue for both": {DLQURL: dlqURL, QueueURL: dlqURL},
		"an unknown reason":  {DLQURL: dlqURL, QueueURL: standardURL, Reason: "deployment-failed"},
		"a negative max":     {DLQURL: dlqURL, QueueURL: standardURL, Max: -1},
		"a too short timeout": {DLQURL: dlqURL, QueueURL: standardURL,
			VisibilityTimeout: time.Millisecond},
		"a too long timeout": {DLQURL: dlqURL, QueueURL: standardURL,
			VisibilityTimeout: 13 * time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeSQS{}
			if _, err := Redrive(t.Context(), f, opts); err == nil || f.receives != 0 {
				t.Errorf("err = %v after %d receives", err, f.receives)
			}
		})
	}
}
