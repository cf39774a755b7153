package rotation

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// fakeGateway accepts exactly the password Apinizer was last sent.
type fakeGateway struct {
	mu      sync.Mutex
	api     *fakeApinizer
	checked []string
	refuse  bool
}

func (g *fakeGateway) Check(_ context.Context, user string, p sensitive.String) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checked = append(g.checked, user)
	if g.refuse || p.Reveal() != g.api.stored {
		return errors.New("gateway did not accept the new password after 3 attempts (last: HTTP 401)")
	}
	return nil
}

func (g *fakeGateway) Describe() string { return "fake gateway" }

func TestTestSecretAsksTheGateway(t *testing.T) {
	f := newFixture(seed)
	gw := &fakeGateway{api: f.api}
	f.eng.Gateway = gw
	f.rotate(t, token)
	if len(gw.checked) != 1 || gw.checked[0] != "orders-client" {
		t.Errorf("gateway checks %v", gw.checked)
	}
	if !strings.Contains(f.logs.String(), "fake gateway") {
		t.Error("the log does not say what was checked")
	}
}

func TestTestSecretFailsWhenTheGatewayRefuses(t *testing.T) {
	f := newFixture(seed)
	f.eng.Gateway = &fakeGateway{api: f.api, refuse: true}
	f.sm.startRotation(token)
	for _, s := range []string{StepCreate, StepSet} {
		if err := f.step(t, s, token); err != nil {
			t.Fatal(err)
		}
	}
	err := f.step(t, StepTest, token)
	if err == nil || !strings.Contains(err.Error(), "gateway") {
		t.Fatalf("got %v", err)
	}
	f.assertInvariant(t)
}

func TestTestSecretAloneNeverProbesWithACopyOfTheCurrentValue(t *testing.T) {
	f := newFixture(seed)
	gw := &fakeGateway{api: f.api}
	f.eng.Gateway = gw
	f.sm.startRotation(token)
	f.sm.values[token] = aws.String(seed)
	if err := f.step(t, StepTest, token); err != nil {
		t.Fatal(err)
	}
	if len(gw.checked) != 0 || len(f.api.sent) != 0 {
		t.Error("a copy of the current value was sent somewhere")
	}
}

func TestRotateNowDoesNotPromoteWhatTheGatewayRefuses(t *testing.T) {
	f := newFixture(seed)
	f.eng.Gateway = &fakeGateway{api: f.api, refuse: true}
	if _, err := rotateNow(f, token); err == nil {
		t.Fatal("want the gateway's refusal")
	}
	if f.sm.holder(stageCurrent) == token {
		t.Error("promoted a password the gateway refused")
	}
	f.assertInvariant(t)
}

func TestAPromotionRacedByTheSameVersionSucceeds(t *testing.T) {
	f := newFixture(seed)
	f.sm.startRotation(token)
	for _, s := range []string{StepCreate, StepSet} {
		if err := f.step(t, s, token); err != nil {
			t.Fatal(err)
		}
	}
	// another job promotes the same version first
	if err := f.eng.promote(context.Background(), "apinizer/orders", token, "v-current"); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.promote(context.Background(), "apinizer/orders", token, "v-current"); err != nil {
		t.Errorf("the second promotion of the same version failed: %v", err)
	}
	f.sm.values["other"] = aws.String(seed)
	if err := f.eng.promote(context.Background(), "apinizer/orders", "other", "v-current"); err == nil {
		t.Error("a stale promotion of another version must fail")
	}
}
