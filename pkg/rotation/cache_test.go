package rotation

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func cachedFixture() *fixture {
	f := newFixture(seed)
	f.eng.Cache = NewVersionCache(8, time.Minute)
	return f
}

func TestAWarmRotationReadsEachValueOnce(t *testing.T) {
	f := cachedFixture()
	f.rotate(t, token)
	f.assertInvariant(t)

	if got := f.sm.valueOf(stageCurrent); !strings.Contains(got, f.api.stored) {
		t.Fatalf("AWSCURRENT does not hold the password Apinizer took")
	}
	// createSecret reads AWSCURRENT and asks for the pending value (none
	// yet); setSecret and testSecret find both in the cache
	if n := f.sm.calls["GetSecretValue"]; n != 2 {
		t.Errorf("GetSecretValue called %d times, want 2", n)
	}
	if n := f.sm.calls["DescribeSecret"]; n != 5 {
		t.Errorf("DescribeSecret called %d times, want one per step and one after the send", n)
	}
	if n := len(f.api.sent); n != 1 {
		t.Errorf("Apinizer called %d times, want 1", n)
	}
}

func TestWithoutACacheEveryStepReads(t *testing.T) {
	f := newFixture(seed)
	f.rotate(t, token)
	// create: current and pending; set and test: both again
	if n := f.sm.calls["GetSecretValue"]; n != 6 {
		t.Errorf("GetSecretValue called %d times, want 6", n)
	}
}

func TestAColdInstanceReadsWhatAnotherCached(t *testing.T) {
	f := cachedFixture()
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	f.eng.Cache = NewVersionCache(8, time.Minute) // another instance
	before := f.sm.calls["GetSecretValue"]
	if err := f.step(t, StepSet, token); err != nil {
		t.Fatal(err)
	}
	if n := f.sm.calls["GetSecretValue"] - before; n != 2 {
		t.Errorf("setSecret on a cold instance read %d values, want 2", n)
	}
	f.assertInvariant(t)
}

// The cache holds values, never labels: a step still refuses a version
// that lost AWSPENDING, though its value is cached.
func TestACachedValueDoesNotStandInForALabel(t *testing.T) {
	f := cachedFixture()
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	f.sm.mu.Lock()
	f.sm.removeLabel(stagePending)
	f.sm.mu.Unlock()
	err := f.step(t, StepSet, token)
	if err == nil {
		t.Fatal("setSecret went on with a version that lost AWSPENDING")
	}
	if len(f.api.sent) != 0 {
		t.Errorf("a password was sent for a version that is no longer pending")
	}
}

// When AWSCURRENT moves to a version the cache has not seen, that version
// is read, and its credential is checked against the pending one.
func TestANewCurrentVersionIsReadNotTakenFromTheCache(t *testing.T) {
	f := cachedFixture()
	f.sm.startRotation(token)
	if err := f.step(t, StepCreate, token); err != nil {
		t.Fatal(err)
	}
	f.sm.mu.Lock()
	f.sm.removeLabel(stageCurrent)
	f.sm.values["v-other"] = aws.String(`{"projectName":"Orders","username":"someone-else","password":"x"}`)
	f.sm.stages["v-other"] = []string{stageCurrent}
	f.sm.mu.Unlock()
	before := f.sm.calls["GetSecretValue"]
	err := f.step(t, StepSet, token)
	if err == nil {
		t.Fatal("setSecret sent a password for one credential while AWSCURRENT names another")
	}
	if n := f.sm.calls["GetSecretValue"] - before; n != 1 {
		t.Errorf("setSecret read %d values, want 1 (the new current version)", n)
	}
	if len(f.api.sent) != 0 {
		t.Errorf("Apinizer was called")
	}
}

func TestANilCacheCachesNothing(t *testing.T) {
	var c *VersionCache
	c.put("arn", "v1", Credential{Username: "u"})
	if _, ok := c.get("arn", "v1"); ok || c.Len() != 0 {
		t.Fatal("a nil cache returned a value")
	}
	c = NewVersionCache(1, time.Minute)
	c.put("", "v1", Credential{Username: "u"})
	c.put("arn", "", Credential{Username: "u"})
	if c.Len() != 0 {
		t.Fatal("a value was cached without a full key")
	}
	c.put("arn", "v1", Credential{Username: "u"})
	c.put("arn", "v2", Credential{Username: "w"})
	if _, ok := c.get("arn", "v1"); ok || c.Len() != 1 {
		t.Fatal("the cache grew past its size")
	}
}

func TestAZeroOrTinyCacheIsSafe(t *testing.T) {
	if NewVersionCache(0, time.Minute) != nil || NewVersionCache(8, 0) != nil {
		t.Error("a cache of no size or no time to live was made")
	}
	c := NewVersionCache(8, time.Nanosecond) // the library panics on a ttl this small
	c.put("arn", "v1", Credential{Username: "u"})
	time.Sleep(5 * time.Millisecond)
	if _, ok := c.get("arn", "v1"); ok {
		t.Error("a value outlived its time to live")
	}
}
