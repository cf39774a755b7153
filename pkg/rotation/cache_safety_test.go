package rotation

// Tests that try to make the version cache lie: writes that landed but
// failed, writes that landed late, labels that moved between DescribeSecret
// and a read, one version id in two secrets, eviction in the middle of a
// rotation.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

const reviewARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/orders"

// hookedSM is the fake with hooks around some of its calls.
type hookedSM struct {
	*fakeSM
	// arn, when not nil, replaces the ARN DescribeSecret answers ("" for none).
	arn *string
	// beforeGet runs before each GetSecretValue.
	beforeGet func(in *secretsmanager.GetSecretValueInput)
	// putHook wraps each PutSecretValue; put performs it on the fake.
	putHook func(ctx context.Context, in *secretsmanager.PutSecretValueInput, put func() error) error
}

func (h *hookedSM) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := h.fakeSM.DescribeSecret(ctx, in, opts...)
	if err == nil && h.arn != nil {
		out.ARN = nil
		if *h.arn != "" {
			out.ARN = h.arn
		}
	}
	return out, err
}

func (h *hookedSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if h.beforeGet != nil {
		h.beforeGet(in)
	}
	return h.fakeSM.GetSecretValue(ctx, in, opts...)
}

func (h *hookedSM) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	if h.putHook == nil {
		return h.fakeSM.PutSecretValue(ctx, in, opts...)
	}
	var out *secretsmanager.PutSecretValueOutput
	err := h.putHook(ctx, in, func() error {
		var err error
		out, err = h.fakeSM.PutSecretValue(ctx, in, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func passwordOf(t *testing.T, value string) string {
	t.Helper()
	c, err := ParseCredential(value)
	if err != nil {
		t.Fatal(err)
	}
	return c.Password.Reveal()
}

// A write that reached Secrets Manager but whose answer was lost is never
// cached; the retry reads it back and keeps it, on a warm instance too.
func TestAWriteThatLandedButFailedIsReadBackNotReplaced(t *testing.T) {
	landedButFailed := func(f *fixture) {
		h := &hookedSM{fakeSM: f.sm}
		n := 0
		h.putHook = func(_ context.Context, _ *secretsmanager.PutSecretValueInput, put func() error) error {
			n++
			if err := put(); err != nil {
				return err
			}
			if n == 1 {
				return errors.New("connection reset after the write")
			}
			return nil
		}
		f.eng.Secrets = h
	}

	t.Run("rotation function", func(t *testing.T) {
		f := cachedFixture()
		landedButFailed(f)
		f.sm.startRotation(token)
		if err := f.step(t, StepCreate, token); err == nil {
			t.Fatal("want the injected failure")
		}
		stored := passwordOf(t, aws.ToString(f.sm.values[token]))
		for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
			if err := f.step(t, s, token); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if f.sm.calls["GetRandomPassword"] != 1 || len(f.sm.puts) != 1 {
			t.Errorf("a second password was made: %v", f.sm.calls)
		}
		if f.api.stored != stored {
			t.Error("Apinizer got another password than the one stored")
		}
		f.assertInvariant(t)
	})

	t.Run("bulk job", func(t *testing.T) {
		f := cachedFixture()
		landedButFailed(f)
		if _, err := rotateNow(f, token); err == nil {
			t.Fatal("want the injected failure")
		}
		stored := passwordOf(t, aws.ToString(f.sm.values[token]))
		res, err := rotateNow(f, token)
		if err != nil || res.VersionID != token {
			t.Fatalf("got %+v, %v", res, err)
		}
		if f.sm.calls["GetRandomPassword"] != 1 || len(f.api.sent) != 1 || f.api.stored != stored {
			t.Errorf("calls %v, sent %d: a second password was made or sent", f.sm.calls, len(f.api.sent))
		}
		f.assertInvariant(t)
	})
}

// A first write that hung lands just before the retry's write, which
// Secrets Manager then refuses: the refused value is not cached, and the
// rotation goes on with the value that was stored.
func TestALateFirstWriteWinsAndTheRefusedOneIsNotCached(t *testing.T) {
	f := cachedFixture()
	h := &hookedSM{fakeSM: f.sm}
	var late *secretsmanager.PutSecretValueInput
	n := 0
	h.putHook = func(ctx context.Context, in *secretsmanager.PutSecretValueInput, put func() error) error {
		n++
		switch n {
		case 1: // hangs past the call timeout; reaches the server later
			late = in
			return context.DeadlineExceeded
		case 2: // ... just before this one
			if _, err := f.sm.PutSecretValue(ctx, late); err != nil {
				t.Errorf("late write: %v", err)
			}
		}
		return put()
	}
	f.eng.Secrets = h
	f.sm.startRotation(token)

	if err := f.step(t, StepCreate, token); err == nil {
		t.Fatal("first create: want the timeout")
	}
	if err := f.step(t, StepCreate, token); err == nil {
		t.Fatal("second create: want ResourceExists")
	}
	stored := passwordOf(t, aws.ToString(late.SecretString))
	if c, ok := f.eng.Cache.get(reviewARN, token); ok && c.Password.Reveal() != stored {
		t.Fatal("the cache holds the refused value")
	}
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := f.step(t, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if len(f.api.sent) != 1 || f.api.stored != stored {
		t.Errorf("Apinizer got %d passwords, the stored one: %v", len(f.api.sent), f.api.stored == stored)
	}
	f.assertInvariant(t)
}

// AWSCURRENT moves between DescribeSecret and the read: the value read is
// cached under the version GetSecretValue named, never under the one
// DescribeSecret showed.
func TestCurrentIsCachedUnderTheVersionItWasReadFrom(t *testing.T) {
	f := cachedFixture()
	h := &hookedSM{fakeSM: f.sm}
	moved := false
	h.beforeGet = func(in *secretsmanager.GetSecretValueInput) {
		if moved || in.VersionId != nil || aws.ToString(in.VersionStage) != stageCurrent {
			return
		}
		moved = true
		f.sm.mu.Lock()
		defer f.sm.mu.Unlock()
		f.sm.removeLabel(stageCurrent)
		f.sm.values["v-newer"] = aws.String(`{"projectName":"Orders","username":"orders-client","password":"Newer-Pass-2"}`)
		f.sm.stages["v-newer"] = []string{stageCurrent}
	}
	f.eng.Secrets = h
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.eng.Cache.get(reviewARN, "v-current"); ok {
		t.Fatal("the newer value was cached under the version DescribeSecret showed")
	}
	if c, ok := f.eng.Cache.get(reviewARN, "v-newer"); !ok || c.Password.Reveal() != "Newer-Pass-2" {
		t.Fatal("the value read is not cached under its own version")
	}
	for _, s := range []string{StepSet, StepTest, StepFinish} {
		if err := f.step(t, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	f.assertInvariant(t)
}

// Two secrets with the same version ids share one cache: each step gets its
// own secret's values. Without an ARN nothing is cached.
func TestTheCacheIsKeyedBySecret(t *testing.T) {
	cache := NewVersionCache(8, time.Minute)
	a := newFixture(seed)
	a.eng.Cache = cache
	b := newFixture(`{"projectName":"Billing","username":"billing-client","password":"Old-Pass-B"}`)
	b.eng.Cache = cache
	b.api.stored = "Old-Pass-B"

	a.rotate(t, token) // caches v-current and the token under a's ARN
	b.sm.startRotation(token)
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		err := b.eng.Run(context.Background(), Event{Step: s, SecretID: "apinizer/billing",
			ClientRequestToken: token})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if len(b.api.sent) != 1 || !strings.HasPrefix(b.api.sent[0], "Billing/billing-client:") {
		t.Fatalf("secret b's rotation sent %q", b.api.sent)
	}
	b.assertInvariant(t)

	f := cachedFixture()
	f.eng.Secrets = &hookedSM{fakeSM: f.sm, arn: aws.String("")}
	f.rotate(t, token)
	if f.eng.Cache.Len() != 0 || f.sm.calls["GetSecretValue"] != 6 {
		t.Errorf("without an ARN: %d values cached, %d reads", f.eng.Cache.Len(), f.sm.calls["GetSecretValue"])
	}
	f.assertInvariant(t)
}

// A cache too small for one rotation only costs reads.
func TestEvictionMidRotationOnlyCostsReads(t *testing.T) {
	f := newFixture(seed)
	f.eng.Cache = NewVersionCache(1, time.Minute)
	f.rotate(t, token)
	f.assertInvariant(t)
	if n := f.sm.calls["GetSecretValue"]; n < 2 || n > 6 {
		t.Errorf("GetSecretValue called %d times", n)
	}
}
