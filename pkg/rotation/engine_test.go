package rotation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

const (
	seed  = `{"projectName":"Orders","username":"orders-client","password":"Old-Pass-1","note":"kept"}`
	token = "5f0b8a52-8c52-4d1e-9a7e-1c1a2b3c4d5e"
)

type fixture struct {
	sm   *fakeSM
	api  *fakeApinizer
	eng  *Engine
	logs *bytes.Buffer
}

func newFixture(current string) *fixture {
	f := &fixture{sm: newFakeSM(current), api: &fakeApinizer{stored: "Old-Pass-1"}, logs: &bytes.Buffer{}}
	f.eng = &Engine{Secrets: f.sm, Apinizer: f.api,
		Policy: PasswordPolicy{Length: 32, ExcludeCharacters: `"\`},
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil))}
	return f
}

func (f *fixture) step(t *testing.T, step, tok string) error {
	t.Helper()
	return f.eng.Run(context.Background(), Event{Step: step, SecretID: "apinizer/orders",
		ClientRequestToken: tok, RotationToken: "rot-token-abc"})
}

func (f *fixture) rotate(t *testing.T, tok string) {
	t.Helper()
	f.sm.startRotation(tok)
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := f.step(t, s, tok); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// assertInvariant checks that Apinizer's password is the value of
// AWSCURRENT or of AWSPENDING.
func (f *fixture) assertInvariant(t *testing.T) {
	t.Helper()
	for _, label := range []string{stageCurrent, stagePending} {
		if v := f.sm.valueOf(label); v != "" {
			c, err := ParseCredential(v)
			if err == nil && c.Password.Reveal() == f.api.stored {
				return
			}
		}
	}
	t.Fatalf("apinizer's password is in neither AWSCURRENT nor AWSPENDING")
}

func TestAFullRotationPromotesTheNewPasswordApinizerHolds(t *testing.T) {
	f := newFixture(seed)
	f.rotate(t, token)

	cur, err := ParseCredential(f.sm.valueOf(stageCurrent))
	if err != nil {
		t.Fatal(err)
	}
	if cur.Password.Reveal() == "Old-Pass-1" || cur.Password.Reveal() != f.api.stored {
		t.Fatal("AWSCURRENT does not hold the password Apinizer got")
	}
	if !strings.Contains(f.sm.valueOf(stageCurrent), `"note":"kept"`) {
		t.Error("other keys of the secret were not kept")
	}
	if got := f.sm.holder("AWSPREVIOUS"); got != "v-current" {
		t.Errorf("AWSPREVIOUS on %q", got)
	}
	if p := f.sm.holder(stagePending); p != "" && p != f.sm.holder(stageCurrent) {
		t.Error("AWSPENDING left on a version that is not current")
	}
	if aws.ToString(f.sm.puts[0].RotationToken) != "rot-token-abc" {
		t.Error("RotationToken not passed to PutSecretValue")
	}
	if strings.Contains(f.logs.String(), "rot-token-abc") || strings.Contains(f.logs.String(), f.api.stored) {
		t.Error("logs show the rotation token or the password")
	}
}

func TestR1TheNextRotationAfterASuccessfulOneSucceeds(t *testing.T) {
	f := newFixture(seed)
	f.rotate(t, token)
	f.rotate(t, "second-rotation-token-000000000001")
	if f.sm.holder(stageCurrent) != "second-rotation-token-000000000001" {
		t.Fatal("second rotation not promoted")
	}
	f.assertInvariant(t)
}

func TestR2FinishWithNoCurrentVersionPromotesWithoutRemoval(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation(token)
	for _, s := range []string{StepCreate, StepSet} {
		if err := f.step(t, s, token); err != nil {
			t.Fatal(err)
		}
	}
	f.sm.removeLabel(stageCurrent)
	if err := f.step(t, StepFinish, token); err != nil {
		t.Fatal(err)
	}
	u := f.sm.updates[len(f.sm.updates)-1]
	if u.RemoveFromVersionId != nil {
		t.Errorf("RemoveFromVersionId sent: %q", aws.ToString(u.RemoveFromVersionId))
	}
	if f.sm.holder(stageCurrent) != token {
		t.Error("token not promoted")
	}
}

func TestR3ASecretWithNoValueFailsAtOnceAndSendsNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value *string // AWSCURRENT's value; nil: no version holds AWSCURRENT
	}{
		{"no current version", nil},
		{"an empty string", aws.String("")},
		{"only blanks", aws.String(" \n\t")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture("")
			if tc.value != nil {
				f.sm.values["v-current"] = tc.value
				f.sm.stages["v-current"] = []string{stageCurrent}
			}
			f.sm.startRotation(token)
			err := f.step(t, StepCreate, token)
			if err == nil || !strings.Contains(err.Error(), "seed the secret first") {
				t.Fatalf("expect a seed-the-secret-first error, got %v", err)
			}
			if !errors.Is(err, ErrInvalidSecret) {
				t.Errorf("expect ErrInvalidSecret, got %v", err)
			}
			if len(f.api.sent) != 0 || len(f.sm.puts) != 0 {
				t.Errorf("sent %d to Apinizer, wrote %d versions; expect neither", len(f.api.sent), len(f.sm.puts))
			}
		})
	}
}

func TestR4APasswordWithDelimitersReachesApinizerExactly(t *testing.T) {
	nasty := `a:b@c/d"e\f%g#h i&j+k=l?m` + "é"
	f := newFixture(seed)
	f.sm.startRotation(token)
	current, _ := ParseCredential(seed)
	value, err := current.WithPassword(newSecret(nasty))
	if err != nil {
		t.Fatal(err)
	}
	// the value is stored as createSecret would have stored it
	f.sm.values[token] = aws.String(value)
	if err := f.step(t, StepSet, token); err != nil {
		t.Fatal(err)
	}
	if f.api.stored != nasty {
		t.Errorf("apinizer got %q", f.api.stored)
	}
}

func TestR5ARetriedCreateKeepsThePendingPassword(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	first := f.sm.valueOf(stagePending)
	f.api.err = &apinizer.Error{Op: "x", Class: apinizer.ClassTransient, Message: "connection reset"}
	if err := f.step(t, StepSet, token); err == nil {
		t.Fatal("set should fail")
	}
	f.api.err = nil

	// Secrets Manager retries the whole rotation with the same token
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := f.step(t, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if f.sm.calls["GetRandomPassword"] != 1 {
		t.Errorf("passwords generated: %d, want 1", f.sm.calls["GetRandomPassword"])
	}
	if f.sm.valueOf(stageCurrent) != first {
		t.Error("the promoted value is not the first pending value")
	}
	f.assertInvariant(t)
}

func TestR6TestSecretAloneDoesNoHarm(t *testing.T) {
	cases := []struct {
		name    string
		pending *string
		verdict string // the step's log line for it
	}{
		{"pending is a copy of current", aws.String(seed),
			`"msg":"pending value is a copy of the current one; nothing was rotated"`},
		{"pending has no value", nil, `"msg":"pending version has no value; nothing to test"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(seed)
			f.sm.startRotation(token)
			f.sm.values[token] = tc.pending
			if err := f.step(t, StepTest, token); err != nil {
				t.Fatalf("testSecret: %v", err)
			}
			if len(f.api.sent) != 0 || f.sm.calls["PutSecretValue"]+f.sm.calls["UpdateSecretVersionStage"] != 0 {
				t.Error("testSecret sent or wrote something")
			}
			if logs := f.logs.String(); !strings.Contains(logs, tc.verdict) ||
				!strings.Contains(logs, `"step":"testSecret"`) {
				t.Errorf("expect the verdict %s in the testSecret step's log, got\n%s", tc.verdict, logs)
			}
		})
	}
}

func TestR7PendingReadsNameTheVersionAndTheStage(t *testing.T) {
	f := newFixture(seed)
	f.rotate(t, token)
	pendingReads := 0
	for _, in := range f.sm.gets {
		if in.VersionId != nil && aws.ToString(in.VersionStage) != stagePending {
			t.Errorf("read of version %s without AWSPENDING", aws.ToString(in.VersionId))
		}
		if in.VersionStage == nil {
			t.Error("a read names no stage")
		}
		// by stage alone, a version someone else staged would be read
		if aws.ToString(in.VersionStage) == stagePending {
			pendingReads++
			if got := aws.ToString(in.VersionId); got != token {
				t.Errorf("a read of AWSPENDING names version %q, expect the token %q", got, token)
			}
		}
	}
	if pendingReads == 0 {
		t.Error("no read of the pending value was made; the test shows nothing")
	}
}

func TestR8AMalformedSecretIsRefusedBeforeAnyCall(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"no username", `{"projectName":"p","password":"x"}`, `"username" is missing`},
		{"no projectName", `{"username":"u","password":"x"}`, `"projectName" is missing`},
		{"misspelt username", `{"projectName":"p","userName":"u"}`, "case-sensitive"},
		{"not JSON", `projectName=p`, "not a JSON object"},
		{"a JSON array", `["p","u"]`, "not a JSON object"},
		{"username a number", `{"projectName":"p","username":7}`, "must be a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(tc.value)
			f.sm.startRotation(token)
			err := f.step(t, StepCreate, token)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			if len(f.api.sent) != 0 || len(f.sm.puts) != 0 {
				t.Error("something was sent or written")
			}
			if strings.Contains(err.Error(), `"x"`) {
				t.Error("error quotes the value")
			}
		})
	}
}

func TestR9ACrashAfterApinizerTookThePasswordConverges(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	// apinizer stores the password, the answer never arrives
	f.api.err = &apinizer.Error{Op: "x", Class: apinizer.ClassTransient, Message: "EOF"}
	_ = f.step(t, StepSet, token)
	f.api.stored = f.api.sent[0][strings.Index(f.api.sent[0], ":")+1:]
	f.assertInvariant(t)

	f.api.err = nil
	for _, s := range []string{StepSet, StepTest, StepFinish} {
		if err := f.step(t, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if f.api.sent[0] != f.api.sent[1] {
		t.Error("the rerun sent another password")
	}
	f.assertInvariant(t)
}

func TestInvalidEventsAreRefusedBeforeAnyCall(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
	}{
		{"python step name", Event{Step: "create_secret", SecretID: "s", ClientRequestToken: "t"}},
		{"empty step", Event{SecretID: "s", ClientRequestToken: "t"}},
		{"no secret id", Event{Step: StepCreate, ClientRequestToken: "t"}},
		{"no token", Event{Step: StepCreate, SecretID: "s"}},
		{"non-ASCII token", Event{Step: StepCreate, SecretID: "s", ClientRequestToken: "tök"}},
		{"control character in secret id", Event{Step: StepCreate, SecretID: "s\n", ClientRequestToken: "t"}},
		{"huge secret id", Event{Step: StepCreate, SecretID: strings.Repeat("s", 5000), ClientRequestToken: "t"}},
		{"non-ASCII rotation token", Event{Step: StepCreate, SecretID: "s", ClientRequestToken: "t", RotationToken: "ü"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(seed)
			err := f.eng.Run(context.Background(), tc.ev)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("want ErrInvalidEvent, got %v", err)
			}
			if len(f.sm.calls) != 0 {
				t.Errorf("calls made: %v", f.sm.calls)
			}
		})
	}
}

func TestPreChecks(t *testing.T) {
	t.Run("rotation not enabled", func(t *testing.T) {
		f := newFixture(seed)
		f.sm.enabled = false
		f.sm.startRotation(token)
		if err := f.step(t, StepCreate, token); !errors.Is(err, ErrInvalidSecret) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("token is not a version", func(t *testing.T) {
		f := newFixture(seed)
		if err := f.step(t, StepCreate, token); err == nil || !strings.Contains(err.Error(), "no stage for rotation") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("token version is not pending", func(t *testing.T) {
		f := newFixture(seed)
		f.sm.values[token] = aws.String(seed)
		f.sm.stages[token] = []string{"OTHER"}
		if err := f.step(t, StepSet, token); err == nil || !strings.Contains(err.Error(), "not AWSPENDING") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("token already current succeeds and changes nothing", func(t *testing.T) {
		f := newFixture(seed)
		f.rotate(t, token)
		writes := len(f.sm.puts) + len(f.sm.updates)
		for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
			if err := f.step(t, s, token); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if len(f.sm.puts)+len(f.sm.updates) != writes || len(f.api.sent) != 1 {
			t.Error("a retried step wrote or sent again")
		}
	})
}

func TestAFailedDeploymentIsAFailureThatNamesTheCredential(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	no := false
	f.api.err = &apinizer.DeploymentError{Op: "change", Deployment: apinizer.Deployment{Reported: true, Success: &no,
		Environments: []apinizer.EnvironmentResult{{Name: "staging", Message: "Connection refused"}}}}
	err := f.step(t, StepSet, token)
	var fail *Failure
	if !errors.As(err, &fail) || fail.Username != "orders-client" || fail.ProjectName != "Orders" {
		t.Fatalf("want a Failure naming the credential, got %v", err)
	}
	d := Classify(err)
	if d.Reason != deadletter.ReasonDeploymentFailed || len(d.Environments) != 1 {
		t.Errorf("disposition %+v", d)
	}
	f.assertInvariant(t)
	if f.sm.holder(stageCurrent) == token {
		t.Error("promoted although the deployment failed")
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		want  string
		token bool
	}{
		{"rejected", &apinizer.Error{Class: apinizer.ClassRejected}, deadletter.ReasonRejected, false},
		{"token", &apinizer.Error{Class: apinizer.ClassToken}, "", true},
		{"transient", &apinizer.Error{Class: apinizer.ClassTransient}, "", false},
		{"invalid secret", ErrInvalidSecret, deadletter.ReasonInvalidSecret, false},
		{"unknown", errors.New("boom"), "", false},
	}
	for _, tc := range cases {
		d := Classify(&Failure{Err: tc.err})
		if d.Reason != tc.want || d.TokenProblem != tc.token {
			t.Errorf("%s: got %+v", tc.name, d)
		}
	}
}

func TestPunctuationIsLeftOutOnlyWhenAllOfItIsExcluded(t *testing.T) {
	if excludesAllPunctuation(`"#%&'()+,/:;<=>?@[\]^` + "`{|}~") {
		t.Error("the default set leaves ! $ * - . _ and must keep punctuation")
	}
	if !excludesAllPunctuation("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") {
		t.Error("every punctuation character excluded must exclude punctuation")
	}
}

func TestAMalformedPreviousVersionDoesNotMatter(t *testing.T) {
	f := newFixture(seed)
	f.sm.values["v-previous"] = aws.String("not json at all")
	f.sm.stages["v-previous"] = []string{"AWSPREVIOUS"}
	f.rotate(t, token)
	f.assertInvariant(t)
	if f.sm.holder(stageCurrent) != token {
		t.Error("not promoted")
	}
}

func TestWithoutAGatewayTestSecretSaysWhatItCouldNotCheck(t *testing.T) {
	f := newFixture(seed)
	f.rotate(t, token)
	if !strings.Contains(f.logs.String(), `"notChecked":"that the gateway accepts the password`) {
		t.Errorf("the log does not say what was not checked: %s", f.logs.String())
	}
}

func TestTheRotationHandlerWritesMetrics(t *testing.T) {
	f := newFixture(seed)
	var out bytes.Buffer
	h := &Handler{Engine: f.eng, DeadLetters: nopDeadLetters{}, Metrics: &out, FunctionName: "rotate-fn"}
	f.sm.startRotation(token)
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := h.Handle(context.Background(), Event{Step: s, SecretID: "apinizer/orders",
			ClientRequestToken: token}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{`"RotationsSucceeded":1`, `"ApinizerLatency"`, `"Function":"rotate-fn"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, out.String())
		}
	}
}

func TestATokenProblemInARotationIsCountedAndRecordsNothing(t *testing.T) {
	f := newFixture(seed)
	f.api.err = &apinizer.Error{StatusCode: 401, Class: apinizer.ClassToken}
	var out bytes.Buffer
	dlq := &countingDeadLetters{}
	h := &Handler{Engine: f.eng, DeadLetters: dlq, Metrics: &out, FunctionName: "rotate-fn"}
	f.sm.startRotation(token)
	for _, s := range []string{StepCreate, StepSet} {
		err := h.Handle(context.Background(), Event{Step: s, SecretID: "apinizer/orders",
			ClientRequestToken: token})
		if (err != nil) != (s == StepSet) {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if !strings.Contains(out.String(), `"TokenProblems":1`) {
		t.Errorf("metrics lack TokenProblems 1:\n%s", out.String())
	}
	if !strings.Contains(f.logs.String(), `"outcome":"token_problem"`) {
		t.Errorf("no token_problem line:\n%s", f.logs.String())
	}
	if dlq.n != 0 {
		t.Errorf("a token problem sent %d dead-letter records", dlq.n)
	}
}

type countingDeadLetters struct{ n int }

func (c *countingDeadLetters) Send(_ context.Context, rs ...deadletter.Record) error {
	c.n += len(rs)
	return nil
}

type nopDeadLetters struct{}

func (nopDeadLetters) Send(context.Context, ...deadletter.Record) error { return nil }
