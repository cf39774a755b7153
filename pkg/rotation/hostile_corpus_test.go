package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/apinizer-rotation/rotator/internal/corpus"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// The corpus of hostile inputs is described in testdata/corpus/README.md.
// This file runs its rotation events and credential secret values through
// ValidateEvent, ParseCredential, and the rotation function's Handler with
// the Engine behind it.

const (
	corpusDir = "../../testdata/corpus"
	// corpusPlanted is the password planted in corpus files: it must never
	// show up in an error, a log line or a dead-letter record.
	corpusPlanted = "PLANTED-pw-9f8e7d6c"
	// corpusSecretID and corpusToken are the secret and the pending version
	// the fake Secrets Manager knows; corpus events name them.
	corpusSecretID = "apinizer/orders"
	corpusToken    = "a1b2c3d4-0000-4000-8000-00000000c0de"
	corpusCurrent  = `{"projectName":"Orders","username":"orders-client","password":"Current-Pass-77"}`
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

// corpusDecode decodes an event the way the Lambda runtime does: one JSON
// value read with a json.Decoder, anything after it ignored.
func corpusDecode(data []byte, v any) error {
	return json.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// corpusSM is the package's fakeSM for the one secret corpusSecretID: any
// other secret id does not exist.
type corpusSM struct{ *fakeSM }

func (s corpusSM) known(id *string) error {
	if aws.ToString(id) != corpusSecretID {
		return notFound("Secrets Manager can't find the specified secret.")
	}
	return nil
}

func (s corpusSM) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	if err := s.known(in.SecretId); err != nil {
		return nil, err
	}
	return s.fakeSM.DescribeSecret(ctx, in, opts...)
}

func (s corpusSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if err := s.known(in.SecretId); err != nil {
		return nil, err
	}
	return s.fakeSM.GetSecretValue(ctx, in, opts...)
}

func (s corpusSM) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	if err := s.known(in.SecretId); err != nil {
		return nil, err
	}
	return s.fakeSM.PutSecretValue(ctx, in, opts...)
}

func (s corpusSM) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	if err := s.known(in.SecretId); err != nil {
		return nil, err
	}
	return s.fakeSM.UpdateSecretVersionStage(ctx, in, opts...)
}

// corpusDLQ keeps the records it is sent.
type corpusDLQ struct {
	mu      sync.Mutex
	records []deadletter.Record
}

func (d *corpusDLQ) Send(_ context.Context, rs ...deadletter.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records = append(d.records, rs...)
	return nil
}

// corpusRun is the rotation function over the fake Secrets Manager and
// fake Apinizer, with its log lines captured.
type corpusRun struct {
	sm      *fakeSM
	api     *fakeApinizer
	dlq     *corpusDLQ
	logs    *bytes.Buffer
	handler *Handler
}

// newCorpusRun starts a rotation of corpusSecretID under corpusToken, with
// current as the AWSCURRENT value ("" for none).
func newCorpusRun(current string) *corpusRun {
	r := &corpusRun{sm: newFakeSM(current), api: &fakeApinizer{}, dlq: &corpusDLQ{}, logs: &bytes.Buffer{}}
	r.sm.startRotation(corpusToken)
	eng := &Engine{Secrets: corpusSM{r.sm}, Apinizer: r.api,
		Policy: PasswordPolicy{Length: 32, ExcludeCharacters: `"\`},
		Logger: slog.New(slog.NewJSONHandler(r.logs, nil))}
	r.handler = &Handler{Engine: eng, DeadLetters: r.dlq}
	return r
}

// disposition runs one event and says what became of it: ok, invalid_event,
// a dead-letter reason, or failed (an error Secrets Manager retries).
func (r *corpusRun) disposition(t *testing.T, ev Event) (string, error) {
	t.Helper()
	err := r.handler.Handle(context.Background(), ev)
	switch {
	case err == nil:
		if len(r.dlq.records) > 0 {
			t.Errorf("a step that succeeded wrote records: %+v", r.dlq.records)
		}
		return "ok", nil
	case errors.Is(err, ErrInvalidEvent):
		if n := len(r.sm.calls); n > 0 || len(r.dlq.records) > 0 {
			t.Errorf("an invalid event made %d Secrets Manager calls and %d records", n, len(r.dlq.records))
		}
		return "invalid_event", err
	case len(r.dlq.records) == 1:
		rec := r.dlq.records[0]
		if rec.Error != err.Error() || rec.Source != deadletter.SourceRotation || rec.SecretID != ev.SecretID {
			t.Errorf("record does not describe the failure: %+v", rec)
		}
		return rec.Reason, err
	case len(r.dlq.records) > 1:
		t.Fatalf("one step wrote %d records", len(r.dlq.records))
	}
	return "failed", err
}

// assertNoLeak checks err, the logs and the records for the planted
// password and every password the run handled.
func (r *corpusRun) assertNoLeak(t *testing.T, err error) {
	t.Helper()
	texts := map[string]string{"logs": r.logs.String()}
	if err != nil {
		texts["error"] = err.Error()
	}
	for i, rec := range r.dlq.records {
		b, _ := json.Marshal(rec)
		texts[fmt.Sprintf("record %d", i)] = string(b)
	}
	secrets := []string{corpusPlanted, "Current-Pass-77"}
	for _, v := range r.sm.values {
		if v == nil {
			continue
		}
		if c, perr := ParseCredential(*v); perr == nil && len(c.Password.Reveal()) >= 6 {
			secrets = append(secrets, c.Password.Reveal())
		}
	}
	for _, leak := range corpusLeaks(secrets, texts) {
		t.Errorf("secret shown: %s", leak)
	}
}

func TestCorpusEventsGetTheirDisposition(t *testing.T) {
	for _, c := range corpusLoad(t, "event", 0) {
		t.Run(c.Name, func(t *testing.T) {
			var ev Event
			err := corpusDecode(c.Data, &ev)
			if c.Expect == "undecodable" {
				// the Lambda runtime answers this error; the handler never runs
				if err == nil || !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("want a decoding error with %q, got %v", c.Error, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the runtime could not decode it: %v", err)
			}
			if verr := ValidateEvent(ev); (verr != nil) != (c.Expect == "invalid_event") {
				t.Fatalf("ValidateEvent: %v, want %s", verr, c.Expect)
			}

			run := newCorpusRun(corpusCurrent)
			got, err := run.disposition(t, ev)
			if got != c.Expect {
				t.Fatalf("disposition %s (%v), want %s", got, err, c.Expect)
			}
			if err != nil && !strings.Contains(err.Error(), c.Error) {
				t.Errorf("error %q does not say %q", err, c.Error)
			}
			if err != nil && len(err.Error()) > 8<<10 {
				t.Errorf("error of %d bytes: an input is echoed", len(err.Error()))
			}
			if strings.ContainsFunc(run.logs.String(), func(r rune) bool { return r < ' ' && r != '\n' }) {
				t.Error("a log line holds a raw control character")
			}
			run.assertNoLeak(t, err)
		})
	}
}

func TestCorpusSecretValuesParseOrNameTheKey(t *testing.T) {
	for _, c := range corpusLoad(t, "secret", 0) {
		t.Run(c.Name, func(t *testing.T) {
			value := string(c.Data)
			cred, err := ParseCredential(value)
			switch c.Expect {
			case "valid":
				if err != nil {
					t.Fatalf("ParseCredential: %v", err)
				}
				corpusAssertRoundTrip(t, value, cred, "New-Pass-0123456789")
			case "invalid_secret":
				if !errors.Is(err, ErrInvalidSecret) || !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("want an invalid secret saying %q, got %v", c.Error, err)
				}
				if c.Key != "" && !strings.Contains(err.Error(), strconv.Quote(c.Key)) {
					t.Errorf("error %q does not name key %q", err, c.Key)
				}
				if leaks := corpusLeaks([]string{corpusPlanted}, map[string]string{"error": err.Error()}); len(leaks) > 0 {
					t.Errorf("ParseCredential error shows the password: %v", leaks)
				}
			default:
				t.Fatalf("unknown expectation %q", c.Expect)
			}
		})
	}
}

// TestCorpusSecretValuesThroughTheRotationFunction stores each value as
// AWSCURRENT and runs the four steps: a valid one rotates, an invalid one
// stops at createSecret with an invalid_secret record, and nothing is sent.
func TestCorpusSecretValuesThroughTheRotationFunction(t *testing.T) {
	for _, c := range corpusLoad(t, "secret", 0) {
		t.Run(c.Name, func(t *testing.T) {
			run := newCorpusRun(string(c.Data))
			var err error
			for _, step := range []string{StepCreate, StepSet, StepTest, StepFinish} {
				ev := Event{Step: step, SecretID: corpusSecretID, ClientRequestToken: corpusToken}
				var got string
				got, err = run.disposition(t, ev)
				want := map[string]string{"valid": "ok", "invalid_secret": "invalid_secret"}[c.Expect]
				if got != want {
					t.Fatalf("%s: disposition %s (%v), want %s", step, got, err, want)
				}
				if err != nil {
					break
				}
			}
			switch {
			case c.Expect == "valid":
				after, perr := ParseCredential(run.sm.valueOf(stageCurrent))
				if perr != nil || after.Password.Reveal() != run.api.stored || run.api.stored == "" {
					t.Fatalf("AWSCURRENT is not what Apinizer got: %v", perr)
				}
			case len(run.api.sent) > 0:
				t.Errorf("an invalid secret sent %d passwords", len(run.api.sent))
			case c.Key != "" && !strings.Contains(run.dlq.records[0].Error, strconv.Quote(c.Key)):
				t.Errorf("record error %q does not name key %q", run.dlq.records[0].Error, c.Key)
			}
			run.assertNoLeak(t, err)
		})
	}
}

// corpusAssertRoundTrip checks WithPassword on a parsed value: the password
// reads back as set, names are unchanged, and every other key keeps its
// value.
func corpusAssertRoundTrip(t *testing.T, value string, cred Credential, password string) {
	t.Helper()
	out, err := cred.WithPassword(newSecret(password))
	if err != nil {
		t.Fatalf("WithPassword: %v", err)
	}
	back, err := ParseCredential(out)
	if err != nil {
		t.Fatalf("the value WithPassword wrote does not parse: %v", err)
	}
	if back.Password.Reveal() != password {
		t.Fatal("the password read back is not the one set")
	}
	if back.ProjectName != cred.ProjectName || back.Username != cred.Username {
		t.Errorf("names changed: %q/%q -> %q/%q", cred.ProjectName, cred.Username, back.ProjectName, back.Username)
	}
	var before, after map[string]any
	if corpusDecode([]byte(value), &before) != nil || json.Unmarshal([]byte(out), &after) != nil {
		t.Fatal("cannot compare the keys")
	}
	delete(before, keyPassword)
	delete(after, keyPassword)
	if !reflect.DeepEqual(before, after) {
		keys := func(m map[string]any) []string {
			var ks []string
			for k := range m {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			return ks
		}
		t.Errorf("other keys changed: %v -> %v", keys(before), keys(after))
	}
}
