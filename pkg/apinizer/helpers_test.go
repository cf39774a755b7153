package apinizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// The secrets of the tests. The password holds every character that has a
// meaning in JSON, URLs, Basic auth or HTML, plus non-ASCII letters.
const (
	testToken    = "tok-3xY9.Secret_Value~42"
	testPassword = `Pa"ss\w:o@r/d%#x &é✓<>+=?;`
)

// fastOptions keep retries short; waits are recorded, not slept, unless a
// test asks for real ones.
func fastOptions() Options {
	return Options{
		MaxAttempts:    4,
		AttemptTimeout: 2 * time.Second,
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     40 * time.Millisecond,
	}
}

// harness is a Client wired to an httptest server.
type harness struct {
	client   *Client
	srv      *httptest.Server
	requests atomic.Int32
	logs     *lockedBuffer

	mu    sync.Mutex
	waits []time.Duration
}

// newHarness starts a server running h and a Client for it with the static
// test token. The Client's waits are recorded and return at once. When the
// test ends, the log lines are checked for secrets.
func newHarness(t *testing.T, opts Options, h http.HandlerFunc) *harness {
	t.Helper()
	return newHarnessWithTokens(t, StaticToken(sensitive.New(testToken)), opts, h)
}

func newHarnessWithTokens(t *testing.T, tokens TokenSource, opts Options, h http.HandlerFunc) *harness {
	t.Helper()
	hs := &harness{logs: &lockedBuffer{}}
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.requests.Add(1)
		h(w, r)
	}))
	t.Cleanup(hs.srv.Close)

	opts.Logger = slog.New(slog.NewTextHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(hs.srv.URL, tokens, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.wait = func(ctx context.Context, d time.Duration) error {
		hs.mu.Lock()
		hs.waits = append(hs.waits, d)
		hs.mu.Unlock()
		return ctx.Err()
	}
	hs.client = c
	t.Cleanup(func() { assertNoSecretIn(t, "logs", hs.logs.String()) })
	return hs
}

// realWaits makes the Client sleep for real.
func (hs *harness) realWaits() { hs.client.wait = sleep }

func (hs *harness) recordedWaits() []time.Duration {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return append([]time.Duration(nil), hs.waits...)
}

// respond answers with status and body, as Apinizer does.
func respond(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
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

// assertNoSecret fails if err, printed in any way, shows the password or
// the token.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, format := range []string{"%v", "%+v", "%s", "%q"} {
		assertNoSecretIn(t, "error "+format, fmt.Sprintf(format, err))
	}
	assertNoSecretIn(t, "error chain", chainText(err))
}

func assertNoSecretIn(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range []string{testPassword, testToken, "Bearer "} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows a secret (%q): %s", what, secret, text)
		}
	}
}

// chainText joins the text of every error in err's chain.
func chainText(err error) string {
	var parts []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, " | ")
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

// lockedBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
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

// fakeTokens is a TokenSource that counts its calls.
type fakeTokens struct {
	mu           sync.Mutex
	token        sensitive.String
	refreshed    sensitive.String // what Refresh returns
	tokenErr     error
	refreshErr   error
	tokenCalls   int
	refreshCalls int
	stale        []string
}

func (f *fakeTokens) Token(context.Context) (sensitive.String, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	return f.token, f.tokenErr
}

func (f *fakeTokens) Refresh(_ context.Context, stale sensitive.String) (sensitive.String, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshCalls++
	f.stale = append(f.stale, stale.Reveal())
	if f.refreshErr != nil {
		return sensitive.String{}, f.refreshErr
	}
	f.token = f.refreshed
	return f.token, nil
}

func (f *fakeTokens) counts() (tokens, refreshes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls, f.refreshCalls
}
