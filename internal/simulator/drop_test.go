package simulator

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// wantDropped fails the test unless err is the connection ending with no
// answer: EOF or a reset.
func wantDropped(t *testing.T, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatal("the request got an answer, want the connection dropped")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), strings.Contains(err.Error(), "EOF"):
	default:
		t.Errorf("error %v, want EOF or a connection reset", err)
	}
}

func TestDropAfterApply(t *testing.T) {
	for _, env := range []Envelope{EnvelopeSeed, EnvelopeCurrent} {
		t.Run(string(env), func(t *testing.T) {
			run := start(t, Config{Envelope: env, LatencyMS: 20})
			run.AddFaults(Fault{Drop: true, Apply: true, Status: 200})

			_, err := trySend(run.URL, patchCall("app", "svc", "applied-then-dropped"))
			wantDropped(t, err)
			if pw, _ := run.Password("app", "svc"); pw != "applied-then-dropped" {
				t.Errorf("password = %q, want it stored before the drop", pw)
			}
			if n := run.PasswordChanges("app", "svc"); n != 1 {
				t.Errorf("PasswordChanges = %d, want 1", n)
			}
			wantAccepted(t, run, "svc", []string{"old-password", "applied-then-dropped"},
				"applied-then-dropped")

			reqs := run.Requests()
			if len(reqs) == 0 || reqs[0].Status != statusDropped ||
				reqs[0].PasswordLength != len("applied-then-dropped") {
				t.Errorf("recorded %+v, want status 444 with the password's length", reqs)
			}

			// the fault is used up; the simulator still answers
			if a := patch(t, run.URL, "app", "svc", "next"); a.status != http.StatusOK {
				t.Errorf("next change: %d", a.status)
			}
		})
	}
}

func TestDropWithoutApplyStoresNothing(t *testing.T) {
	run := start(t, Config{})
	run.AddFaults(Fault{Drop: true})

	_, err := trySend(run.URL, patchCall("app", "svc", "never-arrived"))
	wantDropped(t, err)
	if pw, _ := run.Password("app", "svc"); pw != "old-password" {
		t.Errorf("password = %q, want it unchanged", pw)
	}
	wantAccepted(t, run, "svc", []string{"old-password", "never-arrived"}, "old-password")
}

func TestDropThroughAWrapperThatHidesTheConnection(t *testing.T) {
	s := New(Config{Tokens: []string{testToken}})
	s.SetCredential("app", "svc", "old-password")
	// a middleware whose ResponseWriter neither hijacks nor unwraps
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
	}))
	t.Cleanup(hs.Close)
	s.AddFaults(Fault{Drop: true, Apply: true})

	_, err := trySend(hs.URL, patchCall("app", "svc", "applied"))
	wantDropped(t, err)
	if pw, _ := s.Password("app", "svc"); pw != "applied" {
		t.Errorf("password = %q, want applied", pw)
	}
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0].Status != statusDropped {
		t.Errorf("recorded %+v, want one request with status 444", reqs)
	}
}

func TestControlAcceptsDropFaults(t *testing.T) {
	run := start(t, Config{})
	a := send(t, run.URL, call{method: http.MethodPost, path: "/_sim/faults",
		body: `[{"drop":true,"apply":true}]`})
	if a.status != http.StatusNoContent {
		t.Fatalf("POST /_sim/faults: %d %s", a.status, a.body)
	}
	pending := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/faults"})
	if !strings.Contains(pending.body, `"drop":true`) {
		t.Errorf("pending faults = %s", pending.body)
	}
	_, err := trySend(run.URL, patchCall("app", "svc", "x"))
	wantDropped(t, err)
}

func TestClearFaults(t *testing.T) {
	run := start(t, Config{})
	run.AddFaults(Fault{Drop: true, Count: 10}, Fault{Status: 503})
	run.ClearFaults()
	if got := run.pendingFaults(); len(got) != 0 {
		t.Fatalf("pending faults = %+v, want none", got)
	}
	if a := patch(t, run.URL, "app", "svc", "after"); a.status != http.StatusOK {
		t.Errorf("status %d, want 200 once the faults are cleared", a.status)
	}
	if pw, ok := run.Password("app", "svc"); !ok || pw != "after" {
		t.Errorf("password = %q, %v", pw, ok)
	}
}
