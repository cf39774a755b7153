package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
)

func rotateNow(f *fixture, tok string) (Result, error) {
	return f.eng.RotateNow(context.Background(), "apinizer/orders", FixedToken(tok))
}

func TestRotateNowMakesFiveCallsAndTwoWrites(t *testing.T) {
	f := newFixture(seed)
	res, err := rotateNow(f, token)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range f.sm.calls {
		total += n
	}
	writes := f.sm.calls["PutSecretValue"] + f.sm.calls["UpdateSecretVersionStage"]
	if total != 5 || writes != 2 {
		t.Errorf("calls %v: total %d writes %d, want 5 and 2", f.sm.calls, total, writes)
	}
	if res.VersionID != token || f.sm.holder(stageCurrent) != token || res.Username != "orders-client" {
		t.Errorf("result %+v", res)
	}
	f.assertInvariant(t)
}

func TestRotateNowRedeliveredAfterItFinishedIsAcknowledged(t *testing.T) {
	f := newFixture(seed)
	if _, err := rotateNow(f, token); err != nil {
		t.Fatal(err)
	}
	res, err := rotateNow(f, token)
	if err != nil || !res.AlreadyDone {
		t.Fatalf("got %+v, %v", res, err)
	}
	if len(f.api.sent) != 1 || f.sm.calls["GetRandomPassword"] != 1 {
		t.Error("the job rotated twice")
	}
}

func TestRotateNowResumesItsOwnRotationAfterACrash(t *testing.T) {
	f := newFixture(seed)
	f.sm.fail["UpdateSecretVersionStage"] = errors.New("crash before finish")
	if _, err := rotateNow(f, token); err == nil {
		t.Fatal("want the injected failure")
	}
	f.assertInvariant(t)
	delete(f.sm.fail, "UpdateSecretVersionStage")

	res, err := rotateNow(f, token)
	if err != nil || res.Resumed || res.VersionID != token {
		t.Fatalf("got %+v, %v", res, err)
	}
	if f.sm.calls["GetRandomPassword"] != 1 || f.api.sent[0] != f.api.sent[1] {
		t.Error("a second password was made")
	}
	f.assertInvariant(t)
}

func TestRotateNowFinishesAnotherUnfinishedRotation(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation("scheduled-token-000000000000000001")
	if err := f.step(t, StepCreate, "scheduled-token-000000000000000001"); err != nil {
		t.Fatal(err)
	}
	res, err := rotateNow(f, token)
	if err != nil || !res.Resumed || res.VersionID != "scheduled-token-000000000000000001" {
		t.Fatalf("got %+v, %v", res, err)
	}
	if f.sm.calls["GetRandomPassword"] != 1 {
		t.Error("a new password was made instead of finishing the pending one")
	}
	f.assertInvariant(t)
}

func TestRotateNowWaitsForARotationThatHasNoValueYet(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation("scheduled-token-000000000000000001")
	_, err := rotateNow(f, token)
	if !errors.Is(err, ErrRotationStarting) {
		t.Fatalf("got %v", err)
	}
	if len(f.sm.puts) != 0 || len(f.api.sent) != 0 {
		t.Error("the placeholder was overwritten or something sent")
	}
	if Classify(err).Reason != "" {
		t.Error("a starting rotation must be retried, not dead-lettered")
	}
}

func TestRotateNowOnAMissingOrEmptySecretIsInvalid(t *testing.T) {
	f := newFixture("")
	if _, err := rotateNow(f, token); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("no current version: got %v", err)
	}
	f = newFixture(seed)
	f.sm.fail["DescribeSecret"] = notFound("no such secret")
	if _, err := rotateNow(f, token); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("missing secret: got %v", err)
	}
}

func TestRotateNowRejectedPasswordKeepsThePendingValue(t *testing.T) {
	f := newFixture(seed)
	f.api.err = &apinizer.Error{Op: "x", StatusCode: 400, Class: apinizer.ClassRejected}
	_, err := rotateNow(f, token)
	if Classify(err).Reason != "rejected" {
		t.Fatalf("got %v", err)
	}
	if f.sm.holder(stageCurrent) == token || aws.ToString(f.sm.values[token]) == "" {
		t.Error("pending value lost or promoted")
	}
}

func TestRotateNowForAJobSupersededByLaterRotationsIsAcknowledged(t *testing.T) {
	f := newFixture(seed)
	if _, err := rotateNow(f, token); err != nil {
		t.Fatal(err)
	}
	f.rotate(t, "scheduled-token-000000000000000002") // the job's version is AWSPREVIOUS now
	res, err := rotateNow(f, token)
	if err != nil || !res.AlreadyDone {
		t.Fatalf("AWSPREVIOUS: got %+v, %v", res, err)
	}

	// a later rotation took its last label: Secrets Manager refuses the
	// version id with another value
	// (with no label it cannot tell whether its password reached Apinizer
	// after the later rotations' did: it sends AWSCURRENT's again)
	f.rotate(t, "scheduled-token-000000000000000003")
	delete(f.sm.stages, token)
	sent, versionsBefore := len(f.api.sent), len(f.sm.values)
	res, err = rotateNow(f, token)
	if err != nil || !res.AlreadyDone || !res.Superseded {
		t.Fatalf("no label: got %+v, %v", res, err)
	}
	if len(f.api.sent) != sent+1 || f.api.stored != passwordOf(t, f.sm.valueOf(stageCurrent)) {
		t.Errorf("a superseded job did not leave Apinizer with AWSCURRENT's password")
	}
	if len(f.sm.values) != versionsBefore {
		t.Error("a superseded job wrote a version")
	}
	f.assertInvariant(t)
}

func TestNamesApinizerCannotTakeAreRefusedBeforeAnyWrite(t *testing.T) {
	for _, name := range []string{".", "..", "a\nb"} {
		v, _ := json.Marshal(map[string]string{"projectName": "p", "username": name, "password": "x"})
		f := newFixture(string(v))
		if _, err := rotateNow(f, token); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("%q: got %v", name, err)
		}
		if len(f.sm.puts) != 0 {
			t.Errorf("%q: a pending value was written", name)
		}
	}
}

// A copy of the job that finds its version written by the other copy
// finishes that version (its password is what Apinizer may hold), rather
// than being acknowledged with the version left AWSPENDING.
func TestADuplicateDeliveryFinishesTheVersionTheOtherCopyWrote(t *testing.T) {
	f := newFixture(seed)
	other := `{"projectName":"Orders","username":"orders-client","password":"Other-Copy-7","note":"kept"}`
	// the other delivery of the same job writes the version (another
	// password, AWSPENDING) a moment before this copy's write
	h := &hookedSM{fakeSM: f.sm}
	var once sync.Once
	h.putHook = func(ctx context.Context, in *secretsmanager.PutSecretValueInput, put func() error) error {
		once.Do(func() {
			_, _ = f.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: in.SecretId,
				ClientRequestToken: in.ClientRequestToken, SecretString: aws.String(other),
				VersionStages: []string{stagePending}})
		})
		return put()
	}
	f.eng.Secrets = h
	res, err := rotateNow(f, token)
	if err != nil {
		t.Fatal(err)
	}
	if res.VersionID != token || res.Superseded || f.sm.holder(stageCurrent) != token {
		t.Errorf("result %+v, AWSCURRENT on %q: want the job's version promoted", res, f.sm.holder(stageCurrent))
	}
	if f.api.stored != "Other-Copy-7" {
		t.Errorf("Apinizer holds %q, want the stored version's password", f.api.stored)
	}
	f.assertInvariant(t)
}
