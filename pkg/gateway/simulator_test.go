package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// The checker against the project's simulator, which plays the gateway on
// the same listener as the management API.

// startSimulator serves a simulator holding testUser with "Old-Passw0rd".
func startSimulator(t *testing.T, cfg simulator.Config) *simulator.Running {
	t.Helper()
	cfg.Tokens = []string{"sim-token"}
	sim, err := simulator.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.SetCredential("Orders", testUser, "Old-Passw0rd")
	return sim
}

// changePassword sends the PATCH the rotation sends, as JSON.
func changePassword(t *testing.T, sim *simulator.Running, password string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, sim.URL+"/apiops/projects/Orders/credentials/"+
		"j%C3%BCrgen.%C3%B6l%C3%A7er%40example.com/",
		strings.NewReader(`{"password":"`+password+`"}`))
	req.Header.Set("Authorization", "Bearer sim-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: %d", resp.StatusCode)
	}
}

func TestAgainstTheSimulator(t *testing.T) {
	const newPassword = "New-Passw0rd:@%&=+"
	for _, env := range []simulator.Envelope{simulator.EnvelopeSeed, simulator.EnvelopeCurrent} {
		for _, probePath := range []string{"", "/gateway/orders/probe"} {
			name := string(env) + " envelope, token endpoint"
			if probePath != "" {
				name = string(env) + " envelope, probe"
			}
			t.Run(name, func(t *testing.T) {
				sim := startSimulator(t, simulator.Config{Envelope: env,
					Shape: simulator.ShapePods, GatewayLagMS: 400})
				opts := fastOptions()
				opts.BaseURL, opts.ProbePath = sim.URL, probePath
				opts.InitialBackoff, opts.MaxBackoff = 50*time.Millisecond, 100*time.Millisecond
				c, err := New(opts)
				if err != nil {
					t.Fatal(err)
				}

				// the old password works until the new one has propagated
				changePassword(t, sim, newPassword)
				if sim.GatewayAccepts(testUser, newPassword) {
					t.Fatal("the lag did not hold the new password back")
				}
				began := time.Now()
				if err := c.Check(t.Context(), testUser, sensitive.New(newPassword)); err != nil {
					t.Fatalf("Check = %v, want nil once the lag has passed", err)
				}
				if took := time.Since(began); took < 300*time.Millisecond {
					t.Errorf("accepted after %v, before the lag", took)
				}

				var refused, accepted int
				for _, r := range sim.Requests() {
					switch {
					case r.Method == http.MethodPatch:
					case r.Status == http.StatusUnauthorized:
						refused++
					case r.Status == http.StatusOK:
						accepted++
					}
				}
				if refused == 0 || accepted != 1 {
					t.Errorf("%d refused and %d accepted checks, want some and 1", refused, accepted)
				}
			})
		}
	}
}

func TestAgainstTheSimulatorWithAFailedPod(t *testing.T) {
	sim := startSimulator(t, simulator.Config{DeployFailures: []simulator.DeployFailure{{
		Environment: "staging", Pod: simulator.PodName("staging", 1)}}})
	opts := fastOptions()
	opts.BaseURL = sim.URL
	opts.AttemptTimeout = 300 * time.Millisecond
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	changePassword(t, sim, "New-Passw0rd")

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	err = c.Check(ctx, testUser, sensitive.New("New-Passw0rd"))
	e := asError(t, err)
	if e.LastStatus != http.StatusUnauthorized || e.Attempts < 2 {
		t.Errorf("error %v, want repeated 401s: one pod keeps the old password", err)
	}
}
