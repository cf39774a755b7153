package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

func TestTokenEndpointRequest(t *testing.T) {
	tests := []struct {
		name, username, password string
	}{
		{"the test credential", testUser, testPassword},
		{"form delimiters in the secret", "svc", "a&b=c+d&client_id=evil"},
		{"escapes and spaces", "user name", "%41%2B 100% +plus"},
		{"non-ASCII", "kullanıcı", "şifre-✓-密码"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var problems []string
			hs := newHarness(t, Options{BaseURL: "/gw/"},
				func(w http.ResponseWriter, r *http.Request) {
					raw, _ := io.ReadAll(r.Body)
					form, err := url.ParseQuery(string(raw))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case r.Method != http.MethodPost:
						problems = append(problems, "method "+r.Method)
					case r.URL.Path != "/gw/credential/token" || r.URL.RawQuery != "":
						problems = append(problems, "path "+r.URL.String())
					case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
						problems = append(problems, "Content-Type "+r.Header.Get("Content-Type"))
					case r.Header.Get("Accept") != "application/json":
						problems = append(problems, "Accept "+r.Header.Get("Accept"))
					case r.Header.Get("Authorization") != "":
						problems = append(problems, "an Authorization header was sent")
					case err != nil:
						problems = append(problems, "the body is no form")
					case len(form) != 3 || form.Get("grant_type") != "client_credentials" ||
						form.Get("client_id") != tt.username ||
						form.Get("client_secret") != tt.password:
						problems = append(problems, "the form fields are wrong")
					case !strings.Contains(string(raw), "client_secret="+url.QueryEscape(tt.password)):
						problems = append(problems, "client_secret is not query-escaped")
					}
					tokenOK(w, r)
				})

			err := hs.checker.Check(t.Context(), tt.username, sensitive.New(tt.password))
			if err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

func TestProbeRequest(t *testing.T) {
	tests := []struct {
		name, username, password string
	}{
		{"the test credential", testUser, testPassword},
		{"colons in the password", "svc", "a:b::c:"},
		{"an at sign and a percent", "svc@example.com", "p@ss%20w%rd"},
		{"a non-ASCII username", "jürgen-ölçer", "şifre✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := "Basic " + base64.StdEncoding.EncodeToString(
				[]byte(tt.username+":"+tt.password))
			var mu sync.Mutex
			var problems []string
			opts := Options{ProbePath: "/api/probe?verbose=1"}
			hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				user, pass, ok := r.BasicAuth()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.Method != http.MethodGet:
					problems = append(problems, "method "+r.Method)
				case r.URL.Path != "/api/probe" || r.URL.RawQuery != "verbose=1":
					problems = append(problems, "path "+r.URL.String())
				case r.Header.Get("Authorization") != want:
					problems = append(problems, "the Authorization value is not base64(user:pass)")
				case !ok || user != tt.username || pass != tt.password:
					problems = append(problems, "Basic authentication does not decode back")
				case len(raw) != 0:
					problems = append(problems, "the probe sent a body")
				}
				w.WriteHeader(http.StatusNoContent)
			})

			err := hs.checker.Check(t.Context(), tt.username, sensitive.New(tt.password))
			if err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

func TestAcceptedFromTheThirdAttempt(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		refuse   http.HandlerFunc
		accepted http.HandlerFunc
	}{
		{"token endpoint", fastOptions(), invalidClient, tokenOK},
		{"token endpoint answering 400 invalid_client", fastOptions(),
			respond(400, `{"error":"invalid_client"}`), tokenOK},
		{"probe", withProbe(fastOptions()), respond(http.StatusUnauthorized, ""),
			respond(http.StatusOK, "OK")},
		{"probe answering 403", withProbe(fastOptions()), respond(http.StatusForbidden, ""),
			respond(http.StatusOK, "OK")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.opts, sequence(tt.refuse, tt.refuse, tt.accepted))
			if err := hs.check(t, 3*time.Second); err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			if n := hs.requests.Load(); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
			logs := hs.logs.String()
			if strings.Count(logs, "not accepted yet, retrying") != 2 ||
				!strings.Contains(logs, "password accepted") {
				t.Errorf("want two retry lines and an accepted line, got:\n%s", logs)
			}
		})
	}
}

func withProbe(opts Options) Options {
	opts.ProbePath = "/gateway/probe"
	return opts
}

func TestRetriesWhatMayPassLater(t *testing.T) {
	hs := newHarness(t, fastOptions(), sequence(
		respond(http.StatusServiceUnavailable, ""),
		func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		},
		respond(http.StatusInternalServerError, `{"error":"server_error"}`),
		drop,
		respond(http.StatusRequestTimeout, ""),
		respond(http.StatusBadGateway, "<html>proxy</html>"),
		tokenOK,
	))
	if err := hs.check(t, 5*time.Second); err != nil {
		t.Fatalf("Check = %v, want nil", err)
	}
	if n := hs.requests.Load(); n != 7 {
		t.Errorf("%d requests, want 7", n)
	}
}

func TestNeverAcceptedEndsBeforeTheDeadline(t *testing.T) {
	for _, opts := range []Options{fastOptions(), withProbe(fastOptions())} {
		t.Run(opts.ProbePath, func(t *testing.T) {
			opts.InitialBackoff, opts.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
			hs := newHarness(t, opts, respond(http.StatusUnauthorized, ""))

			began := time.Now()
			err := hs.check(t, 3*time.Second)
			took := time.Since(began)

			e := asError(t, err)
			if took >= 3*time.Second || took < time.Second {
				t.Errorf("Check took %v, want it to stop between 1s and the 3s deadline", took)
			}
			if e.Attempts < 5 || int32(e.Attempts) != hs.requests.Load() ||
				e.LastStatus != http.StatusUnauthorized {
				t.Errorf("Attempts %d (%d sent), LastStatus %d; want many attempts, 401",
					e.Attempts, hs.requests.Load(), e.LastStatus)
			}
			want := "gateway did not accept the new password after " +
				strconv.Itoa(e.Attempts) + " attempts (last: HTTP 401)"
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it to start with %q", err, want)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Error("Check slept into the deadline")
			}
			if logs := hs.logs.String(); !strings.Contains(logs, "giving up") {
				t.Errorf("no giving-up line in:\n%s", logs)
			}
		})
	}
}

func TestAnswersThatEndTheCheckAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		probe   bool
		handler http.HandlerFunc
		status  int
		message string
	}{
		{"400 invalid_request", false,
			respond(400, `{"error":"invalid_request","error_description":"x"}`),
			400, "HTTP 400 invalid_request"},
		{"400 unsupported_grant_type", false,
			respond(400, `{"error":"unsupported_grant_type"}`), 400, "unsupported_grant_type"},
		{"400 from the probe", true, respond(400, `{"error":"invalid_client"}`), 400, "HTTP 400"},
		{"404", false, respond(404, "Not Found"), 404, "HTTP 404"},
		{"405", true, respond(405, ""), 405, "HTTP 405"},
		{"200 without a token", false, respond(200, `{"status":"SUCCESS"}`), 200,
			"without an access_token"},
		{"200 with an HTML page", false, respond(200, "<html>login</html>"), 200,
			"without an access_token"},
		{"200 with an empty token", false, respond(200, `{"access_token":""}`), 200,
			"without an access_token"},
		{"204 from the token endpoint", false, respond(204, ""), 204,
			"without an access_token"},
		{"a redirect", false, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, 302, "a redirect, not followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			if tt.probe {
				opts = withProbe(opts)
			}
			hs := newHarness(t, opts, tt.handler)

			e := asError(t, hs.check(t, 3*time.Second))
			if e.Attempts != 1 || hs.requests.Load() != 1 || e.LastStatus != tt.status {
				t.Errorf("Attempts %d, requests %d, LastStatus %d; want 1, 1, %d",
					e.Attempts, hs.requests.Load(), e.LastStatus, tt.status)
			}
			if !strings.Contains(e.Message, tt.message) ||
				!strings.Contains(e.Error(), "after 1 attempt (last: ") ||
				!strings.HasSuffix(e.Error(), "; not retried") {
				t.Errorf("error %q, want the message %q", e, tt.message)
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		tokenOK(w, r)
	}))
	t.Cleanup(other.Close)

	for _, tt := range []struct {
		opts   Options
		status int
	}{
		{fastOptions(), http.StatusTemporaryRedirect}, // keeps POST and its body
		{fastOptions(), http.StatusPermanentRedirect},
		{withProbe(fastOptions()), http.StatusFound},
	} {
		hs := newHarness(t, tt.opts, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.Path, tt.status)
		})
		e := asError(t, hs.check(t, 3*time.Second))
		if e.LastStatus != tt.status || e.Attempts != 1 {
			t.Errorf("status %d: LastStatus %d, Attempts %d", tt.status, e.LastStatus, e.Attempts)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host received %d requests", n)
	}
}

func TestBodyCap(t *testing.T) {
	// a token answer longer than the cap is not accepted
	opts := fastOptions()
	opts.MaxBodyBytes = 1024
	long := `{"padding":"` + strings.Repeat("x", 4096) + `","access_token":"t"}`
	hs := newHarness(t, opts, respond(http.StatusOK, long))
	e := asError(t, hs.check(t, 3*time.Second))
	if e.Attempts != 1 || !strings.Contains(e.Message, "body over 1024 bytes") {
		t.Errorf("error %v, want a body over the cap, not retried", e)
	}

	// an endless answer is cut at the cap, in either mode
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	for _, opts := range []Options{fastOptions(), withProbe(fastOptions())} {
		hs := newHarness(t, opts, endless)
		began := time.Now()
		err := hs.check(t, 10*time.Second)
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("probe %q: Check took %v on an endless body", opts.ProbePath, took)
		}
		if opts.ProbePath == "" {
			if e := asError(t, err); !strings.Contains(e.Message, "body over") {
				t.Errorf("token endpoint: %v, want a body over the cap", err)
			}
		} else if err != nil {
			t.Errorf("probe: Check = %v, want a 2xx accepted whatever its body", err)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	const echoed = "lowercasesecret"
	tests := []struct {
		name     string
		password string
		opts     Options
		handler  http.HandlerFunc
	}{
		{"refused until the deadline", testPassword, fastOptions(), invalidClient},
		{"the probe refused until the deadline", testPassword, withProbe(fastOptions()),
			respond(http.StatusUnauthorized, "")},
		{"an error code that echoes the password", echoed, fastOptions(),
			respond(http.StatusBadRequest, `{"error":"`+echoed+`"}`)},
		{"a body that echoes everything", testPassword, fastOptions(),
			func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write(raw)
			}},
		{"the probe echoing its Authorization", testPassword, withProbe(fastOptions()),
			func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, r.Header.Get("Authorization"))
			}},
		{"no answer", testPassword, fastOptions(), drop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.opts, tt.handler)
			ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
			defer cancel()
			err := hs.checker.Check(ctx, testUser, sensitive.New(tt.password))
			if err == nil {
				t.Fatal("Check accepted the password")
			}
			assertNoSecret(t, err, testUser, tt.password)
			assertNoSecretIn(t, "logs", hs.logs.String(), testUser, tt.password)
			if tt.password == echoed && !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("error %q, want the echoed code redacted", err)
			}
		})
	}
}

func TestCheckRefusesWhatItCannotSend(t *testing.T) {
	tests := []struct {
		name               string
		probe              bool
		username, password string
		message            string
	}{
		{"an empty username", false, "", "pw", "username is empty"},
		{"an empty password", false, "svc", "", "password is empty"},
		{"a colon in a Basic username", true, "a:b", "pw", `holds ":"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			if tt.probe {
				opts = withProbe(opts)
			}
			hs := newHarness(t, opts, tokenOK)
			err := hs.checker.Check(t.Context(), tt.username, sensitive.New(tt.password))
			e := asError(t, err)
			if e.Attempts != 0 || hs.requests.Load() != 0 ||
				!strings.HasPrefix(err.Error(), "gateway check not made: ") ||
				!strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q after %d requests, want %q and nothing sent",
					err, hs.requests.Load(), tt.message)
			}
		})
	}
	// a colon is fine in a client_id
	hs := newHarness(t, fastOptions(), tokenOK)
	if err := hs.checker.Check(t.Context(), "a:b", sensitive.New("pw")); err != nil {
		t.Errorf("token endpoint with a colon in the username: %v", err)
	}
}

func TestContextEndsTheCheck(t *testing.T) {
	// cancelled before the first attempt: nothing is sent
	hs := newHarness(t, fastOptions(), tokenOK)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := hs.checker.Check(ctx, testUser, sensitive.New(testPassword))
	if e := asError(t, err); e.Attempts != 0 || !errors.Is(err, context.Canceled) ||
		hs.requests.Load() != 0 {
		t.Errorf("error %v after %d requests, want cancelled, nothing sent", err,
			hs.requests.Load())
	}

	// a hanging gateway: the deadline ends the attempt, and the check
	opts := fastOptions()
	opts.AttemptTimeout = time.Minute
	hanging := newHarness(t, opts, sequence(invalidClient, hang))
	began := time.Now()
	err = hanging.check(t, 2*time.Second)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Check took %v", took)
	}
	e := asError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || e.Attempts != 2 || e.LastStatus != 401 ||
		!strings.HasSuffix(err.Error(), "(last: HTTP 401); deadline reached") {
		t.Errorf("error %q (attempts %d, status %d), want the deadline after a 401",
			err, e.Attempts, e.LastStatus)
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	opts := fastOptions()
	opts.AttemptTimeout = 100 * time.Millisecond
	hs := newHarness(t, opts, sequence(hang, tokenOK))
	if err := hs.check(t, 3*time.Second); err != nil {
		t.Fatalf("Check = %v, want nil after a timed-out attempt", err)
	}
	if !strings.Contains(hs.logs.String(), "no answer within 100ms") {
		t.Errorf("logs:\n%s", hs.logs.String())
	}
}

func TestWaitsBackOffAndRespectTheCap(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	opts := fastOptions()
	opts.InitialBackoff, opts.MaxBackoff = 60*time.Millisecond, 150*time.Millisecond
	hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		n := len(arrivals)
		mu.Unlock()
		if n == 1 {
			// a Retry-After far beyond MaxBackoff is capped
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if n < 6 {
			invalidClient(w, r)
			return
		}
		tokenOK(w, r)
	})
	if err := hs.check(t, 10*time.Second); err != nil {
		t.Fatalf("Check = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(arrivals); i++ {
		gap := arrivals[i].Sub(arrivals[i-1])
		if gap < 30*time.Millisecond || gap > time.Second {
			t.Errorf("gap %d = %v, want within [InitialBackoff/2, about MaxBackoff]", i, gap)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no base URL", Options{}, "base URL is empty"},
		{"plain http to another host", Options{BaseURL: "http://gw.example.com"}, "https"},
		{"user information", Options{BaseURL: "https://u:hunter2@gw.example.com"},
			"user information"},
		{"a query", Options{BaseURL: "https://gw.example.com/?a=b"}, "query"},
		{"a relative probe path", Options{BaseURL: "https://gw", ProbePath: "probe"}, `"/"`},
		{"a probe path to another host",
			Options{BaseURL: "https://gw", ProbePath: "//evil.example/x"}, `"/"`},
		{"a probe path with a fragment", Options{BaseURL: "https://gw", ProbePath: "/x#y"},
			"fragment"},
		{"a probe path with a space", Options{BaseURL: "https://gw", ProbePath: "/a b"},
			"spaces"},
		{"a negative option", Options{BaseURL: "https://gw", MaxBackoff: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error naming %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats the URL's password: %v", err)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{BaseURL: "https://gw.example.com"},
			"gateway https://gw.example.com/credential/token accepts the password (client_credentials)"},
		{Options{BaseURL: "https://gw.example.com/prefix/"},
			"gateway https://gw.example.com/prefix/credential/token " +
				"accepts the password (client_credentials)"},
		{Options{BaseURL: "http://127.0.0.1:8099", ProbePath: "/gateway/probe?key=abc"},
			"gateway http://127.0.0.1:8099/gateway/probe " +
				"accepts the password (GET with Basic authentication)"},
	}
	for _, tt := range tests {
		c, err := New(tt.opts)
		if err != nil {
			t.Fatalf("New(%+v): %v", tt.opts, err)
		}
		if got := c.Describe(); got != tt.want {
			t.Errorf("Describe = %q, want %q", got, tt.want)
		}
	}
}

func TestHTTPClientNeverFollowsRedirects(t *testing.T) {
	c, err := New(Options{BaseURL: "https://gw.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if c.httpClient.CheckRedirect == nil || c.httpClient.Transport == nil {
		t.Error("the default client follows redirects or has no transport")
	}
	if err := c.httpClient.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v, want http.ErrUseLastResponse", err)
	}
	if c.attemptTimeout != DefaultAttemptTimeout || c.initialBackoff != DefaultInitialBackoff ||
		c.maxBackoff != DefaultMaxBackoff || c.maxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("defaults = %v %v %v %v", c.attemptTimeout, c.initialBackoff, c.maxBackoff,
			c.maxBodyBytes)
	}

	// a caller's client is copied, not changed
	own := &http.Client{Timeout: 7 * time.Second}
	c, err = New(Options{BaseURL: "https://gw.example.com", HTTPClient: own})
	if err != nil {
		t.Fatal(err)
	}
	if own.CheckRedirect != nil || c.httpClient == own || c.httpClient.Timeout != own.Timeout ||
		c.httpClient.CheckRedirect == nil {
		t.Error("the caller's client was changed, or not copied with its settings")
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Attempts: 3, LastStatus: 401, Message: "HTTP 401"},
			"gateway did not accept the new password after 3 attempts (last: HTTP 401)"},
		{&Error{Attempts: 1, LastStatus: 400, Message: "HTTP 400", stop: "not retried"},
			"gateway did not accept the new password after 1 attempt (last: HTTP 400); not retried"},
		{&Error{Message: "password is empty"}, "gateway check not made: password is empty"},
		{&Error{Err: context.Canceled, stop: "cancelled"}, "gateway check not made: cancelled"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
