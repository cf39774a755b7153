package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/apinizer-rotation/rotator/internal/corpus"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/apinizer-rotation/rotator/pkg/deadletter"
	"github.com/apinizer-rotation/rotator/pkg/rotation"
)

// The corpus of hostile inputs is described in testdata/corpus/README.md.
// This file runs its SQS message bodies and SQS event payloads through
// ParseJob and Handler.Handle.

const (
	corpusDir = "../../testdata/corpus"
	// corpusPlanted is the password planted in corpus files: it must never
	// show up in an error, a log line or a dead-letter record.
	corpusPlanted = "PLANTED-pw-9f8e7d6c"
	// corpusTokenSecret is the Apinizer token secret the handler protects.
	corpusTokenSecret = "apinizer-token"
)

// corpusEntry is one corpus file, expanded, and what the manifest expects.
type corpusEntry = corpus.Entry

func corpusLoad(tb testing.TB, kind string, maxSize int) []corpusEntry {
	return corpus.Load(tb, corpusDir, kind, maxSize)
}

func corpusExpand(tb testing.TB, data []byte) []byte { return corpus.Expand(tb, data) }

func corpusLeaks(secrets []string, texts map[string]string) []string {
	return corpus.Leaks(secrets, texts)
}

// corpusMissingSM is a Secrets Manager that knows no secret.
type corpusMissingSM struct{ rotation.SecretsAPI }

func (corpusMissingSM) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput,
	...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

// corpusRotator rotates the secrets the package's fakeRotator knows
// (apinizer/flaky fails transiently, "panics" panics); any other secret goes
// to a real Engine whose Secrets Manager knows none, so a job naming it gets
// the engine's own answer.
type corpusRotator struct {
	fake    *fakeRotator
	missing *rotation.Engine
}

func newCorpusRotator() *corpusRotator {
	return &corpusRotator{
		fake:    &fakeRotator{answers: map[string]error{"apinizer/flaky": transient()}},
		missing: &rotation.Engine{Secrets: corpusMissingSM{}},
	}
}

func (r *corpusRotator) RotateNow(ctx context.Context, secretID string, token rotation.TokenFor) (rotation.Result, error) {
	switch secretID {
	case "apinizer/orders", "apinizer/other", "apinizer/flaky", "panics":
		return r.fake.RotateNow(ctx, secretID, token)
	}
	return r.missing.RotateNow(ctx, secretID, token)
}

// corpusBatch is one run of the bulk function.
type corpusBatch struct {
	resp events.SQSEventResponse
	err  error
	dlq  *fakeDLQ
	logs *bytes.Buffer
}

func runCorpusBatch(ev events.SQSEvent) *corpusBatch {
	b := &corpusBatch{dlq: &fakeDLQ{}, logs: &bytes.Buffer{}}
	h := &Handler{Rotator: newCorpusRotator(), DeadLetters: b.dlq, TokenSecretID: corpusTokenSecret,
		Logger: slog.New(slog.NewJSONHandler(b.logs, nil))}
	b.resp, b.err = h.Handle(context.Background(), ev)
	return b
}

// dispositions says what became of every record, by index: retry (in
// batchItemFailures), a dead-letter reason (acknowledged after its record
// was sent), or done. A record that is both reported and dead-lettered, or
// dead-lettered twice, fails the test.
func (b *corpusBatch) dispositions(t *testing.T, ev events.SQSEvent) []string {
	t.Helper()
	retry := map[string]bool{}
	for _, f := range b.resp.BatchItemFailures {
		if retry[f.ItemIdentifier] {
			t.Errorf("%s reported twice", f.ItemIdentifier)
		}
		retry[f.ItemIdentifier] = true
	}
	byID := map[string][]deadletter.Record{}
	for _, r := range b.dlq.records {
		byID[r.MessageID] = append(byID[r.MessageID], r)
	}
	out := make([]string, len(ev.Records))
	for i, m := range ev.Records {
		recs := byID[m.MessageId]
		switch {
		case retry[m.MessageId]:
			out[i] = "retry"
		case len(recs) > 0:
			out[i] = recs[0].Reason
		default:
			out[i] = "done"
		}
		if len(recs) > 1 && !corpusSharedID(ev, m.MessageId) {
			t.Errorf("%q has %d dead-letter records", m.MessageId, len(recs))
		}
		if retry[m.MessageId] && len(recs) > 0 && !corpusSharedID(ev, m.MessageId) {
			t.Errorf("%q is both retried and dead-lettered", m.MessageId)
		}
	}
	return out
}

// corpusSharedID reports whether two records of ev carry id.
func corpusSharedID(ev events.SQSEvent, id string) bool {
	n := 0
	for _, m := range ev.Records {
		if m.MessageId == id {
			n++
		}
	}
	return n > 1
}

// assertNoLeak checks the response, the logs and the records for the
// planted password. Entries with a known issue have it logged instead.
func (b *corpusBatch) assertNoLeak(t *testing.T, c corpusEntry) {
	t.Helper()
	texts := map[string]string{"logs": b.logs.String()}
	if b.err != nil {
		texts["error"] = b.err.Error()
	}
	for i, r := range b.dlq.records {
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("record %d does not marshal: %v", i, err)
		}
		var back struct{ JobBody string }
		_ = json.Unmarshal(raw, &back)
		if len(back.JobBody) > 16<<10+len("...(truncated)") {
			t.Errorf("record %d keeps a job body of %d bytes", i, len(back.JobBody))
		}
		texts[fmt.Sprintf("record %d", i)] = string(raw)
	}
	leaks := corpusLeaks([]string{corpusPlanted}, texts)
	if len(leaks) > 0 && c.KnownIssue != "" {
		t.Logf("known issue %s (see testdata/corpus/README.md): %v", c.KnownIssue, leaks)
		return
	}
	for _, leak := range leaks {
		t.Errorf("planted password shown: %s", leak)
	}
}

func corpusMessage(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:jobs",
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

// TestCorpusBodiesGetTheirDisposition sends each message body in a batch
// beside a valid job: the body gets its disposition, the valid job is done
// whatever the body is, and no job is lost.
func TestCorpusBodiesGetTheirDisposition(t *testing.T) {
	for _, c := range corpusLoad(t, "sqs", 0) {
		if !strings.HasSuffix(c.Name, ".body") {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			body := string(c.Data)
			job, perr := ParseJob(body)
			ev := events.SQSEvent{Records: []events.SQSMessage{
				corpusMessage("m-corpus", body), corpusMessage("m-control", `{"secretId":"apinizer/other"}`),
			}}
			b := runCorpusBatch(ev)
			if b.err != nil {
				t.Fatalf("the batch failed: %v", b.err)
			}
			got := b.dispositions(t, ev)
			if got[1] != "done" {
				t.Errorf("the valid job beside it: %s", got[1])
			}
			if got[0] != c.Expect {
				t.Fatalf("disposition %s, want %s (ParseJob: %v)", got[0], c.Expect, perr)
			}

			// the reason and the error of the record
			var rec *deadletter.Record
			for i := range b.dlq.records {
				if b.dlq.records[i].MessageID == "m-corpus" {
					rec = &b.dlq.records[i]
				}
			}
			switch {
			case rec != nil && !strings.Contains(rec.Error, c.Error):
				t.Errorf("record error %q does not say %q", rec.Error, c.Error)
			case rec != nil && rec.Source != deadletter.SourceBulk:
				t.Errorf("record source %q", rec.Source)
			case perr != nil && (rec == nil || rec.Error != perr.Error() || rec.Reason != deadletter.ReasonInvalidJob):
				t.Errorf("ParseJob refused it (%v) but the record is %+v", perr, rec)
			case perr == nil && rec != nil && (rec.SecretID != job.SecretID || rec.JobID != job.JobID):
				t.Errorf("record names %q/%q, the job %q/%q", rec.SecretID, rec.JobID, job.SecretID, job.JobID)
			}
			if perr != nil && len(perr.Error()) > 200 {
				t.Errorf("ParseJob error of %d bytes: the body is echoed", len(perr.Error()))
			}
			b.assertNoLeak(t, c)
		})
	}
}

// TestCorpusEventsGetTheirDisposition decodes each SQS event payload the way
// the Lambda runtime does and runs the batch.
func TestCorpusEventsGetTheirDisposition(t *testing.T) {
	for _, c := range corpusLoad(t, "sqs", 0) {
		if !strings.HasSuffix(c.Name, ".event.json") {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			var ev events.SQSEvent
			err := json.NewDecoder(bytes.NewReader(c.Data)).Decode(&ev)
			if c.Expect == "undecodable" {
				// the runtime fails the invocation: SQS delivers every
				// message again, and redrives them after maxReceiveCount
				if err == nil || !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("want a decoding error with %q, got %v", c.Error, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the runtime could not decode it: %v", err)
			}
			b := runCorpusBatch(ev)
			switch c.Expect {
			case "batch_error":
				// the whole batch comes back: nothing is lost
				if b.err == nil || !strings.Contains(b.err.Error(), c.Error) {
					t.Fatalf("want the batch to fail with %q, got %v", c.Error, b.err)
				}
			case "handled":
				if b.err != nil {
					t.Fatalf("the batch failed: %v", b.err)
				}
				got := b.dispositions(t, ev)
				if len(got) != len(c.Records) && !corpusHasDuplicates(ev) {
					t.Fatalf("%d records, the manifest names %d", len(got), len(c.Records))
				}
				for i, m := range ev.Records {
					if want, ok := c.Records[m.MessageId]; !ok || got[i] != want {
						t.Errorf("record %d (%q): %s, want %s", i, m.MessageId, got[i], want)
					}
				}
			default:
				t.Fatalf("unknown expectation %q", c.Expect)
			}
			b.assertNoLeak(t, c)
		})
	}
}

func corpusHasDuplicates(ev events.SQSEvent) bool {
	for _, m := range ev.Records {
		if corpusSharedID(ev, m.MessageId) {
			return true
		}
	}
	return false
}

// TestJobBodyRedactionHidesPlantedPasswords was gap F2 (now closed):
// a password a sender put in a job body reaches the dead-letter record when
// the body is not a JSON object, or sits inside secretId or jobId.
func TestJobBodyRedactionHidesPlantedPasswords(t *testing.T) {
	for _, c := range corpusLoad(t, "sqs", 0) {
		if c.KnownIssue != "F2" {
			continue
		}
		if got := redactJobBody(string(c.Data)); strings.Contains(got, corpusPlanted) {
			t.Errorf("%s: jobBody %s", c.Name, got)
		}
	}
}
