package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// Fuzz targets for the bulk function's input: one SQS message body. Plain
// `go test` runs their seeds, the corpus files under testdata/corpus;
// `go test -fuzz=FuzzX` explores from there.

var fuzzTokenShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// corpusBodySeeds adds every message body of the corpus that is at most
// 64 KiB once expanded.
func corpusBodySeeds(f *testing.F) {
	for _, c := range corpusLoad(f, "sqs", 64<<10) {
		if strings.HasSuffix(c.Name, ".body") {
			f.Add(string(c.Data))
		}
	}
}

// FuzzParseJob parses a body: an accepted job has the fields the handler
// relies on and a token shaped like a version id; a refusal is
// ErrInvalidJob with a short message that never quotes the body.
func FuzzParseJob(f *testing.F) {
	corpusBodySeeds(f)
	f.Fuzz(func(t *testing.T, body string) {
		job, err := ParseJob(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidJob) {
				t.Fatalf("error %v is not ErrInvalidJob", err)
			}
			if len(err.Error()) > 120 || strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("error quotes the body: %q", err)
			}
			return
		}
		printable := func(s string) bool {
			return !strings.ContainsFunc(s, func(r rune) bool {
				return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' '
			})
		}
		if job.SecretID == "" || len(job.SecretID) > maxSecretID || !printable(job.SecretID) ||
			len(job.JobID) > maxJobID || !printable(job.JobID) {
			t.Fatalf("accepted %+v", job)
		}
		if tok := Token(job, "message-id"); !fuzzTokenShape.MatchString(tok) {
			t.Fatalf("token %q is not shaped like a version id", tok)
		}
	})
}

// FuzzRedactJobBody checks the copy of a body kept in a dead-letter
// record: a body that is no JSON object is replaced whole; of a JSON object
// every key is kept, secretId and jobId keep their value when it is a
// string, and every other value is replaced.
func FuzzRedactJobBody(f *testing.F) {
	corpusBodySeeds(f)
	f.Fuzz(func(t *testing.T, body string) {
		got := redactJobBody(body)
		var in map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &in) != nil || in == nil {
			if !strings.HasPrefix(got, "[REDACTED: not a JSON object") {
				t.Fatalf("a body that is no JSON object was kept: %q", got)
			}
			return
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal([]byte(got), &out); err != nil {
			t.Fatalf("the redacted copy of a JSON object is not JSON: %v", err)
		}
		if len(out) != len(in) {
			t.Fatalf("keys lost: %d -> %d", len(in), len(out))
		}
		for k, v := range out {
			var s string
			kept := (k == "secretId" || k == "jobId") && json.Unmarshal(in[k], &s) == nil
			switch {
			case kept:
				if string(v) != string(in[k]) && !jsonEqual(v, in[k]) {
					t.Fatalf("%s changed: %s -> %s", k, in[k], v)
				}
			case string(v) != `"[REDACTED]"`:
				t.Fatalf("key %q kept its value %s", k, v)
			}
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// FuzzHandleNeverLosesAJob runs one fuzzed body through the handler, beside
// a valid job: each record is acknowledged as done, acknowledged after its
// dead-letter record was taken, or reported in batchItemFailures. A body
// ParseJob refuses is dead-lettered as invalid_job, whatever else it is.
func FuzzHandleNeverLosesAJob(f *testing.F) {
	corpusBodySeeds(f)
	f.Fuzz(func(t *testing.T, body string) {
		ev := events.SQSEvent{Records: []events.SQSMessage{
			corpusMessage("m-fuzz", body), corpusMessage("m-control", `{"secretId":"apinizer/other"}`),
		}}
		dlq := &fakeDLQ{}
		rot := newCorpusRotator()
		h := &Handler{Rotator: rot, DeadLetters: dlq, TokenSecretID: corpusTokenSecret}
		resp, err := h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("the batch failed: %v", err)
		}
		var retried, recorded []string
		for _, f := range resp.BatchItemFailures {
			retried = append(retried, f.ItemIdentifier)
		}
		for _, r := range dlq.records {
			recorded = append(recorded, r.MessageID)
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("record does not marshal: %v", err)
			}
		}
		if len(retried)+len(recorded) > 2 {
			t.Fatalf("more verdicts than records: retried %v, recorded %v", retried, recorded)
		}
		for _, id := range append(retried, recorded...) {
			if id == "m-control" {
				t.Fatal("the valid job beside it did not succeed")
			}
		}
		if _, perr := ParseJob(body); perr != nil {
			if len(dlq.records) != 1 || dlq.records[0].Reason != deadletter.ReasonInvalidJob {
				t.Fatalf("an invalid body got %v, records %+v", retried, dlq.records)
			}
		}
	})
}
