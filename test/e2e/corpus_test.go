package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// corpusFiles returns the hostile inputs of one kind that are kept as they
// are (the ones written with {{...}} placeholders are expanded by the unit
// tests only).
func corpusFiles(t *testing.T, kind, suffix string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("../../testdata/corpus", kind, "*"+suffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus files for %s: %v", kind, err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "{{") {
			out[filepath.Base(p)] = b
		}
	}
	return out
}

// Every malformed rotation event, through the real function: a clear error,
// never a crash. The leak scan after the run covers their logs.
func TestTheMalformedEventsFailCleanlyInTheFunction(t *testing.T) {
	for name, ev := range corpusFiles(t, "event", ".json") {
		_, err := stack.Rotate.Invoke(testContext(t), ev)
		var ie *standin.InvokeError
		if err == nil {
			continue // a few corpus events are valid in shape and name no secret we hold
		}
		if !errors.As(err, &ie) || ie.StatusCode != 200 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every malformed job body, through the queue and the real bulk function:
// each is acknowledged after its dead-letter record or retried, no batch
// fails whole, and the queue drains.
func TestTheMalformedJobsAreDeadLetteredAndNothingIsLost(t *testing.T) {
	useSimulator(t, simulator.Config{})
	drainDeadLetters(t)
	sent := 0
	for name, body := range corpusFiles(t, "sqs", ".body") {
		if err := stack.Enqueue(testContext(t), string(body)); err != nil {
			t.Logf("%s: SQS refuses it, so no function ever sees it: %v", name, err)
			continue
		}
		sent++
	}
	acknowledged := 0
	for range 10 {
		b, err := stack.DeliverBatch(testContext(t))
		if err != nil {
			t.Fatalf("a batch failed whole: %v", err)
		}
		if len(b.Event.Records) == 0 {
			break
		}
		acknowledged += len(b.Deleted)
		if len(b.Deleted)+len(b.Response.BatchItemFailures) != len(b.Event.Records) {
			t.Errorf("a record was neither acknowledged nor reported: %+v", b.Response)
		}
		if err := stack.ReleaseFailures(testContext(t), b); err != nil {
			t.Fatal(err)
		}
	}
	records := deadLetters(t)
	if acknowledged < sent || len(records) < sent-5 {
		t.Errorf("sent %d, acknowledged %d, dead-letter records %d", sent, acknowledged, len(records))
	}
}
