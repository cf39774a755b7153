package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// The credential of most tests: the password holds every character with a
// meaning in forms, URLs, Basic authentication and JSON, and non-ASCII
// letters; the username is not ASCII either.
const (
	testUser     = "jürgen.ölçer@example.com"
	testPassword = `Pa:ss@w%rd&x=y+z é✓"q\/`
)

// fastOptions keep the waits short.
func fastOptions() Options {
	return Options{
		AttemptTimeout: 3 * time.Second, // roomy: a loaded CI machine is slow
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     40 * time.Millisecond,
	}
}

// harness is a Checker wired to an httptest server, its logs captured.
type harness struct {
	checker  *Checker
	srv      *httptest.Server
	requests atomic.Int32
	logs     *lockedBuffer
}

// newHarness serves h and makes a Checker for it, with opts.BaseURL set to
// the server (plus opts.BaseURL, if any, as a path prefix). When the test
// ends, the logs are checked for secrets.
func newHarness(t *testing.T, opts Options, h http.HandlerFunc) *harness {
	t.Helper()
	hs := &harness{logs: &lockedBuffer{}}
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.requests.Add(1)
		h(w, r)
	}))
	t.Cleanup(hs.srv.Close)

	opts.BaseURL = hs.srv.URL + opts.BaseURL
	opts.Logger = slog.New(slog.NewTextHandler(hs.logs,
		&slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs.checker = c
	t.Cleanup(func() { assertNoSecretIn(t, "logs", hs.logs.String(), testUser, testPassword) })
	return hs
}

// check runs Check with the test credential and a deadline.
func (hs *harness) check(t *testing.T, timeout time.Duration) error {
	t.Helper()
	ctx := t.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err := hs.checker.Check(ctx, testUser, sensitive.New(testPassword))
	assertNoSecret(t, err, testUser, testPassword)
	return err
}

// respond answers with status and body.
func respond(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if body != "" {
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// tokenOK is a token endpoint's success.
var tokenOK = respond(http.StatusOK,
	`{"access_token":"gw-token","token_type":"Bearer","expires_in":3600}`)

// invalidClient is a token endpoint's refusal.
var invalidClient = respond(http.StatusUnauthorized,
	`{"error":"invalid_client","error_description":"Bad client credentials"}`)

// drop closes the connection without an answer.
func drop(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// hang reads the request and then answers nothing until the client goes
// away (the body must be read for net/http to notice), or for at most 10s.
func hang(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// sequence answers the n-th request with the n-th handler, and the last
// handler from then on.
func sequence(handlers ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(handlers)-1)
		handlers[i](w, r)
	}
}

// asError returns err as an *Error, failing the test if it is not one.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

// secretForms are the ways a credential could leak into text.
func secretForms(username, password string) []string {
	pair := username + ":" + password
	return []string{password, url.QueryEscape(password), pair,
		base64.StdEncoding.EncodeToString([]byte(pair)), "Basic ", "client_secret="}
}

// assertNoSecret fails if err, printed in any way, shows the password.
func assertNoSecret(t *testing.T, err error, username, password string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, format := range []string{"%v", "%+v", "%s", "%q", "%#v"} {
		assertNoSecretIn(t, "error "+format, fmt.Sprintf(format, err), username, password)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		assertNoSecretIn(t, "error chain", e.Error(), username, password)
	}
}

func assertNoSecretIn(t *testing.T, what, text, username, password string) {
	t.Helper()
	for _, secret := range secretForms(username, password) {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows a secret (%q): %s", what, secret, text)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
