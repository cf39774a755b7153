package simulator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLatencyDelaysPasswordChanges(t *testing.T) {
	run := start(t, Config{LatencyMS: 150, JitterMS: 50, Shape: ShapePods,
		Environments: []string{"prod"}, PodsPerEnv: 1})

	began := time.Now()
	a := patch(t, run.URL, "app", "svc", "new")
	took := time.Since(began)
	got := wantJSON(t, a, http.StatusOK)
	if took < 150*time.Millisecond {
		t.Errorf("answered after %v, want at least 150ms", took)
	}

	// the deploy reports the time it took
	ms, _ := got["deploymentResult"].(map[string]any)["responseTime"].(float64)
	if ms < 150 || ms > 200 {
		t.Errorf("responseTime = %v, want 150..200", ms)
	}
}

func TestLatencyDoesNotDelayOtherEndpoints(t *testing.T) {
	run := start(t, Config{LatencyMS: 2000})

	began := time.Now()
	send(t, run.URL, call{method: http.MethodGet, path: "/apiops/test/healthcheck"})
	if took := time.Since(began); took > time.Second {
		t.Errorf("healthcheck took %v", took)
	}
}

func TestAClientThatGivesUpLeavesThePasswordSaved(t *testing.T) {
	run := start(t, Config{LatencyMS: 5000})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch,
		run.URL+"/apiops/projects/app/credentials/svc/", strings.NewReader(`{"password":"new"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")

	began := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	if pw, _ := run.Password("app", "svc"); pw != "new" {
		t.Errorf("password = %q, want it saved before the slow deploy", pw)
	}

	// the server stops waiting once the client is gone, and logs 499
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if reqs := run.Requests(); len(reqs) == 1 {
			if reqs[0].Status != statusClientGone {
				t.Errorf("logged status %d, want %d", reqs[0].Status, statusClientGone)
			}
			if time.Since(began) > 3*time.Second {
				t.Errorf("the server waited out its latency")
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the abandoned request was never logged")
}

func TestCloseEndsWaitingRequests(t *testing.T) {
	run, err := Start(Config{LatencyMS: 10000, Tokens: []string{testToken}})
	if err != nil {
		t.Fatal(err)
	}
	run.SetCredential("app", "svc", "old")
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch,
			run.URL+"/apiops/projects/app/credentials/svc/", strings.NewReader(`{"password":"x"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if pw, _ := run.Password("app", "svc"); pw == "x" {
			break // stored: the request is waiting out its latency
		}
		if time.Now().After(deadline) {
			t.Fatal("the request never arrived")
		}
	}

	began := time.Now()
	run.Close()
	run.Close() // twice is harmless
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the waiting request outlived Close")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Close took %v", took)
	}
}
