package apinizer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

const downBody = `{"status":"FAILURE","resultMessage":"down"}`

func TestRetriesA503UntilItSucceeds(t *testing.T) {
	hs := newHarness(t, fastOptions(), sequence(
		respond(http.StatusServiceUnavailable, ""),
		respond(http.StatusServiceUnavailable, `{"status":"FAILURE","resultMessage":"busy"}`),
		respond(http.StatusOK, deployedBody),
	))
	dep, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	if err != nil || !dep.Deployed() {
		t.Fatalf("got %v, %v; want a deployed result", dep, err)
	}
	if n := hs.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	waits := hs.recordedWaits()
	if len(waits) != 2 {
		t.Fatalf("waits %v, want 2", waits)
	}
	for _, w := range waits {
		if w <= 0 || w > fastOptions().MaxBackoff {
			t.Errorf("wait %v outside (0, MaxBackoff]", w)
		}
	}
	if logs := hs.logs.String(); strings.Count(logs, "apinizer: retrying") != 2 {
		t.Errorf("want two retry log lines, got:\n%s", logs)
	}
}

func TestBackoffGrowsWithJitterAndStaysUnderTheCap(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 8
	opts.InitialBackoff = 100 * time.Millisecond
	opts.MaxBackoff = 400 * time.Millisecond
	hs := newHarness(t, opts, respond(http.StatusBadGateway, ""))
	_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	if ClassOf(err) != ClassTransient {
		t.Fatalf("error %v, want transient", err)
	}
	waits := hs.recordedWaits()
	if len(waits) != 7 {
		t.Fatalf("%d waits, want 7", len(waits))
	}
	if waits[0] < 50*time.Millisecond || waits[0] > 150*time.Millisecond {
		t.Errorf("first wait %v, want 100ms ±50%%", waits[0])
	}
	for _, w := range waits {
		if w > opts.MaxBackoff {
			t.Errorf("wait %v over MaxBackoff %v", w, opts.MaxBackoff)
		}
	}
	if last := waits[len(waits)-1]; last < 200*time.Millisecond {
		t.Errorf("last wait %v, want it grown toward MaxBackoff", last)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	hs := newHarness(t, fastOptions(), respond(http.StatusServiceUnavailable, downBody))
	_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	e := asError(t, err)
	if e.Class != ClassTransient || e.Attempts != 4 || e.StatusCode != 503 {
		t.Errorf("got class %v attempts %d status %d, want transient 4 503", e.Class, e.Attempts, e.StatusCode)
	}
	if !strings.Contains(err.Error(), "(after 4 attempts)") {
		t.Errorf("error %q does not count the attempts", err)
	}
	if n := hs.requests.Load(); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
	if !strings.Contains(hs.logs.String(), "apinizer: giving up") {
		t.Errorf("no log line says it gave up")
	}
}

func TestDoesNotRetryARejection(t *testing.T) {
	hs := newHarness(t, fastOptions(), respond(http.StatusBadRequest,
		`{"error":"bad_request","error_description":"Credential password can not be empty!"}`))
	_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	if ClassOf(err) != ClassRejected {
		t.Fatalf("error %v, want rejected", err)
	}
	if n := hs.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if w := hs.recordedWaits(); len(w) != 0 {
		t.Errorf("waited %v before a final answer", w)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	opts := fastOptions()
	opts.MaxBackoff = time.Second // Retry-After is capped at 4s
	tests := []struct {
		name   string
		status int
		value  func() string
		min    time.Duration
		max    time.Duration
	}{
		{name: "seconds on a 503 replace the backoff", status: 503,
			value: func() string { return "1" }, min: time.Second, max: time.Second},
		{name: "seconds on a 429 replace the backoff", status: 429,
			value: func() string { return "2" }, min: 2 * time.Second, max: 2 * time.Second},
		{name: "an HTTP date on a 503 is waited for", status: 503,
			value: func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) },
			min:   time.Second, max: 3 * time.Second},
		{name: "a date in the past means no wait", status: 503,
			value: func() string { return time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat) },
			min:   0, max: 0},
		{name: "an hour is capped at four times MaxBackoff", status: 503,
			value: func() string { return "3600" }, min: 4 * time.Second, max: 4 * time.Second},
		{name: "a value that is no number or date is ignored", status: 503,
			value: func() string { return "soon" }, min: 1, max: time.Second},
		{name: "Retry-After on a 500 is ignored", status: 500,
			value: func() string { return "3" }, min: 1, max: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, opts, sequence(
				func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Retry-After", tt.value())
					respond(tt.status, "")(w, r)
				},
				respond(http.StatusOK, deployedBody),
			))
			if _, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword)); err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
			waits := hs.recordedWaits()
			if len(waits) != 1 || waits[0] < tt.min || waits[0] > tt.max {
				t.Errorf("waits %v, want one in [%v, %v]", waits, tt.min, tt.max)
			}
		})
	}
}

func TestRetryAfterIsReallyWaited(t *testing.T) {
	hs := newHarness(t, fastOptions(), sequence(
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			respond(http.StatusTooManyRequests, "")(w, r)
		},
		respond(http.StatusOK, deployedBody),
	))
	hs.client.maxBackoff = time.Second
	hs.realWaits()
	start := time.Now()
	if _, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword)); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 950*time.Millisecond {
		t.Errorf("retried after %v, want about 1s", elapsed)
	}
}

func TestStopsBeforeTheDeadlineInsteadOfSleepingIntoIt(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 100
	opts.InitialBackoff = 100 * time.Millisecond
	opts.MaxBackoff = 300 * time.Millisecond
	hs := newHarness(t, opts, respond(http.StatusServiceUnavailable, downBody))
	hs.realWaits()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := hs.client.ChangePassword(ctx, "p", "u", sensitive.New(testPassword))

	if left := time.Until(deadline); left <= 0 {
		t.Errorf("returned %v after the deadline", -left)
	}
	e := asError(t, err)
	if e.Class != ClassTransient || e.StatusCode != 503 || e.Message != "down" {
		t.Errorf("got %v, want the last 503 as a transient error", err)
	}
	if e.Attempts < 2 || e.Attempts != int(hs.requests.Load()) {
		t.Errorf("Attempts %d, requests %d", e.Attempts, hs.requests.Load())
	}
	if !strings.Contains(err.Error(), "no time left before the deadline") {
		t.Errorf("error %q does not say why it stopped", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q claims the deadline passed", err)
	}
	if !strings.Contains(hs.logs.String(), "no time left before the deadline") {
		t.Errorf("no log line says why it stopped")
	}
}

func TestTheCallersDeadlineEndsAHangingAttempt(t *testing.T) {
	hs := newHarness(t, fastOptions(), hang)
	hs.client.attemptTimeout = time.Minute

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := hs.client.ChangePassword(ctx, "p", "u", sensitive.New(testPassword))
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v", elapsed)
	}
	e := asError(t, err)
	if e.Class != ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v (class %v), want transient wrapping the deadline", err, e.Class)
	}
	if !strings.Contains(err.Error(), "deadline reached") {
		t.Errorf("error %q does not say the deadline was reached", err)
	}
	assertNoSecret(t, err)
}

func TestTheCallersDeadlineEndsAWait(t *testing.T) {
	opts := fastOptions()
	opts.InitialBackoff = time.Hour
	opts.MaxBackoff = time.Hour
	hs := newHarness(t, opts, respond(http.StatusServiceUnavailable, ""))
	hs.realWaits()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)

	_, err := hs.client.ChangePassword(ctx, "p", "u", sensitive.New(testPassword))
	e := asError(t, err)
	if !errors.Is(err, context.Canceled) || e.Class != ClassTransient || e.StatusCode != 503 {
		t.Errorf("got %v, want a transient error wrapping the cancellation", err)
	}
	if !strings.Contains(err.Error(), "cancelled") || e.Attempts != 1 {
		t.Errorf("error %q (attempts %d), want it cancelled after 1 attempt", err, e.Attempts)
	}
}

func TestACancelledContextSendsNothing(t *testing.T) {
	hs := newHarness(t, fastOptions(), respond(http.StatusOK, deployedBody))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := hs.client.ChangePassword(ctx, "p", "u", sensitive.New(testPassword))
	if !errors.Is(err, context.Canceled) || ClassOf(err) != ClassTransient {
		t.Errorf("got %v, want a transient error wrapping the cancellation", err)
	}
	if n := hs.requests.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestASlowAttemptTimesOutAndIsRetried(t *testing.T) {
	var n atomic.Int32
	hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			hang(w, r)
			return
		}
		respond(http.StatusOK, deployedBody)(w, r)
	})
	hs.client.attemptTimeout = 100 * time.Millisecond
	if _, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword)); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if got := hs.requests.Load(); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

func TestTransportFailuresAreTransient(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{
			name: "a connection closed before an answer is retried",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				conn, _, _ := w.(http.Hijacker).Hijack()
				_ = conn.Close()
			},
		},
		{
			name: "a body cut short is retried",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, `{"status":`)
				conn, _, _ := w.(http.Hijacker).Hijack()
				_ = conn.Close()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, fastOptions(), tt.handler)
			_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			e := asError(t, err)
			if e.Class != ClassTransient || e.StatusCode != 0 || e.Err == nil {
				t.Errorf("got %v (class %v, status %d), want a transient transport error", err, e.Class, e.StatusCode)
			}
			if n := hs.requests.Load(); n != 4 {
				t.Errorf("%d requests, want 4", n)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestARefusedConnectionIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	c, err := New("http://"+addr, StaticToken(sensitive.New(testToken)), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	var waits int
	c.wait = func(context.Context, time.Duration) error { waits++; return nil }
	err = c.CheckToken(t.Context())
	e := asError(t, err)
	if e.Class != ClassTransient || e.Attempts != 4 || waits != 3 {
		t.Errorf("got %v (class %v, attempts %d, waits %d), want transient after 4",
			err, e.Class, e.Attempts, waits)
	}
	if !strings.Contains(err.Error(), "no answer") {
		t.Errorf("error %q", err)
	}
}

func TestA401RefreshesTheTokenOnceAndRetries(t *testing.T) {
	tokens := &fakeTokens{token: sensitive.New("old-token"), refreshed: sensitive.New(testToken)}
	var seen []string
	opts := fastOptions()
	opts.MaxAttempts = 1 // the retry after a 401 is not a transient retry
	hs := newHarnessWithTokens(t, tokens, opts, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			respond(http.StatusUnauthorized, `{"status":"FAILURE","resultMessage":"Token is not valid!"}`)(w, r)
			return
		}
		respond(http.StatusOK, deployedBody)(w, r)
	})

	dep, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	if err != nil || !dep.Deployed() {
		t.Fatalf("got %v, %v; want deployed", dep, err)
	}
	if _, refreshes := tokens.counts(); refreshes != 1 {
		t.Errorf("%d refreshes, want 1", refreshes)
	}
	if len(tokens.stale) != 1 || tokens.stale[0] != "old-token" {
		t.Errorf("Refresh got stale %q, want the rejected token", tokens.stale)
	}
	if len(seen) != 2 || seen[0] != "Bearer old-token" || seen[1] != "Bearer "+testToken {
		t.Errorf("server saw %q", seen)
	}
	if w := hs.recordedWaits(); len(w) != 0 {
		t.Errorf("waited %v before resending with the new token", w)
	}
}

func TestASecond401IsATokenError(t *testing.T) {
	tokens := &fakeTokens{token: sensitive.New(testToken), refreshed: sensitive.New(testToken)}
	hs := newHarnessWithTokens(t, tokens, fastOptions(),
		respond(http.StatusUnauthorized, `{"error":"unauthorized_client","error_description":"Invalid token"}`))

	_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	e := asError(t, err)
	if e.Class != ClassToken || e.StatusCode != 401 || e.Attempts != 2 {
		t.Errorf("got %v (class %v, attempts %d), want a token error after 2 attempts", err, e.Class, e.Attempts)
	}
	if tokenCalls, refreshes := tokens.counts(); refreshes != 1 || tokenCalls != 1 {
		t.Errorf("%d Token and %d Refresh calls, want 1 and 1", tokenCalls, refreshes)
	}
	if n := hs.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	assertNoSecret(t, err)
}

func TestTokenSourceErrorsAreReturnedAsTheyAre(t *testing.T) {
	tokenErr := &Error{Op: "read token secret s", Class: ClassToken, Message: "the secret string is empty"}
	plainErr := errors.New("vault sealed")
	tests := []struct {
		name    string
		tokens  *fakeTokens
		handler http.HandlerFunc
		want    error
		wantReq int32
	}{
		{name: "a failing Token sends nothing", tokens: &fakeTokens{tokenErr: tokenErr},
			handler: respond(http.StatusOK, deployedBody), want: tokenErr, wantReq: 0},
		{name: "a failing Refresh ends the call", tokens: &fakeTokens{token: sensitive.New(testToken),
			refreshErr: tokenErr}, handler: respond(http.StatusUnauthorized, ""), want: tokenErr, wantReq: 1},
		{name: "a plain error becomes a token error that wraps it", tokens: &fakeTokens{tokenErr: plainErr},
			handler: respond(http.StatusOK, deployedBody), want: plainErr, wantReq: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarnessWithTokens(t, tt.tokens, fastOptions(), tt.handler)
			_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			if !errors.Is(err, tt.want) || ClassOf(err) != ClassToken {
				t.Errorf("got %v (class %v), want %v as a token error", err, ClassOf(err), tt.want)
			}
			if n := hs.requests.Load(); n != tt.wantReq {
				t.Errorf("%d requests, want %d", n, tt.wantReq)
			}
		})
	}
}

func TestAnUnusableTokenIsNotSent(t *testing.T) {
	tests := map[string]TokenSource{
		"an empty static token":         StaticToken{},
		"a token with a newline":        &fakeTokens{token: sensitive.New("abc\nX-Injected: 1")},
		"a token source giving nothing": &fakeTokens{},
	}
	for name, tokens := range tests {
		t.Run(name+" is a token error", func(t *testing.T) {
			hs := newHarnessWithTokens(t, tokens, fastOptions(), respond(http.StatusOK, deployedBody))
			_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			if ClassOf(err) != ClassToken {
				t.Errorf("got %v, want a token error", err)
			}
			if n := hs.requests.Load(); n != 0 {
				t.Errorf("%d requests sent", n)
			}
			if strings.Contains(err.Error(), "X-Injected") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		respond(http.StatusOK, deployedBody)(w, r)
	}))
	t.Cleanup(other.Close)

	tests := []struct {
		name   string
		status int
		client *http.Client
	}{
		{name: "a 302 with the default client is not followed", status: http.StatusFound},
		{name: "a 307 with the default client is not followed", status: http.StatusTemporaryRedirect},
		{name: "a 308 with a caller's client that follows redirects is not followed",
			status: http.StatusPermanentRedirect, client: &http.Client{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			opts.HTTPClient = tt.client
			hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", other.URL+"/steal?token=x#frag")
				w.WriteHeader(tt.status)
			})
			_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			e := asError(t, err)
			if e.Class != ClassRejected || e.StatusCode != tt.status {
				t.Errorf("got %v, want a rejected %d", err, tt.status)
			}
			if want := "redirect to " + other.URL + "/steal not followed"; e.Message != want {
				t.Errorf("message %q, want %q", e.Message, want)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Errorf("the other host got %d requests", n)
			}
			if tt.client != nil && tt.client.CheckRedirect != nil {
				t.Errorf("the caller's client was changed")
			}
		})
	}
}

// hang answers nothing until the client goes away. The body is read first:
// the server notices a closed connection only once it has.
// hang answers nothing until the client goes away; the bound keeps a lost
// cancellation from holding the server's Close for ever.
func hang(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"Fri, 02 Jan 2026 03:04:15 GMT", 10 * time.Second, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.value, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
		}
	}
}
