package apinizer

import (
	"context"
	"encoding/json"
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

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// The client credentials of the tests. The secret holds every character
// with a meaning in a form body, JSON or a URL.
// Apinizer's answers to a PATCH with a bad token.
const (
	tokenInvalidBody = `{"status":"FAILURE","resultMessage":"Token is not valid!"}`
	tokenExpiredBody = `{"status":"FAILURE","resultMessage":"Token was expired!"}`
)

const (
	testClientID     = "svc-rotator"
	testClientSecret = `cl!ent&se=cret+%41 "q"/é`
	// accessPrefix starts every access token fakeApinizer issues.
	accessPrefix = "acc3ss-"
)

// credentials is a token secret's string holding client credentials.
func credentials(id, secret string) *string {
	b, err := json.Marshal(map[string]string{"clientId": id, "clientSecret": secret})
	if err != nil {
		panic(err)
	}
	return aws.String(string(b))
}

// fakeApinizer plays Apinizer's token endpoint and the password change. It
// issues access tokens "acc3ss-1", "acc3ss-2"... for the one pair of client
// credentials it knows, and the PATCH accepts the tokens it issued and has
// not expired.
type fakeApinizer struct {
	mu        sync.Mutex
	secret    string          // the client secret it accepts; testClientSecret if ""
	expiresIn string          // raw JSON of expires_in; "" leaves it out
	tokenDown int             // answer this many token requests with 503 first
	expired   map[string]bool // tokens the PATCH calls expired
	issued    int
	exchanges int           // token requests
	forms     []string      // each token request's raw body
	headers   []http.Header // each token request's headers
	bearers   []string      // each PATCH's Authorization
	// gate, when set, holds every token request until it is closed.
	gate chan struct{}
}

func (f *fakeApinizer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/apiops/auth/token" {
		f.token(w, r)
		return
	}
	f.mu.Lock()
	bearer := r.Header.Get("Authorization")
	f.bearers = append(f.bearers, bearer)
	token, ok := strings.CutPrefix(bearer, "Bearer "+accessPrefix)
	valid := ok && !f.expired[accessPrefix+token]
	f.mu.Unlock()
	switch {
	case r.Method != http.MethodPatch:
		respond(http.StatusMethodNotAllowed, "")(w, r)
	case !ok:
		respond(http.StatusUnauthorized, tokenInvalidBody)(w, r)
	case !valid:
		respond(http.StatusUnauthorized, tokenExpiredBody)(w, r)
	default:
		respond(http.StatusOK, deployedBody)(w, r)
	}
}

func (f *fakeApinizer) token(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.exchanges++
	f.forms = append(f.forms, string(body))
	f.headers = append(f.headers, r.Header.Clone())
	gate, down := f.gate, f.tokenDown > 0
	if down {
		f.tokenDown--
	}
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if down {
		respond(http.StatusServiceUnavailable, "<html><body>Service Unavailable</body></html>")(w, r)
		return
	}

	form, err := url.ParseQuery(string(body))
	f.mu.Lock()
	defer f.mu.Unlock()
	want := f.secret
	if want == "" {
		want = testClientSecret
	}
	if err != nil || r.Method != http.MethodPost || form.Get("grant_type") != "client_credentials" ||
		form.Get("client_id") != testClientID || form.Get("client_secret") != want {
		respond(http.StatusUnauthorized,
			`{"error":"invalid_client","error_description":"Bad client credentials"}`)(w, r)
		return
	}
	f.issued++
	answer := fmt.Sprintf(`{"access_token":"%s%d","token_type":"Bearer"`, accessPrefix, f.issued)
	if f.expiresIn != "" {
		answer += `,"expires_in":` + f.expiresIn
	}
	respond(http.StatusOK, answer+"}")(w, r)
}

// expireAll makes the PATCH refuse every token issued so far.
func (f *fakeApinizer) expireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.expired == nil {
		f.expired = map[string]bool{}
	}
	for i := 1; i <= f.issued; i++ {
		f.expired[fmt.Sprintf("%s%d", accessPrefix, i)] = true
	}
}

func (f *fakeApinizer) counts() (exchanges int, bearers []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exchanges, append([]string(nil), f.bearers...)
}

// newExchangeHarness is a Client for fa whose token secret holds secrets
// (read in turn, the last repeating), checked when the test ends for any
// trace of the client secret or an access token in its logs.
func newExchangeHarness(t *testing.T, fa *fakeApinizer, secrets ...*string) (*harness, *fakeSecrets) {
	t.Helper()
	sm := &fakeSecrets{values: secrets}
	hs := newHarnessWithTokens(t, NewSecretToken(sm, "apinizer/token"), fastOptions(), fa.ServeHTTP)
	t.Cleanup(func() { assertNoCredentialsIn(t, "logs", hs.logs.String()) })
	return hs, sm
}

// change sends a password change, with a deadline that turns a deadlock
// into a failure.
func (hs *harness) change(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := hs.client.ChangePassword(ctx, "p", "u", sensitive.New(testPassword))
	assertNoSecret(t, err)
	if err != nil {
		assertNoCredentialsIn(t, "error", fmt.Sprintf("%v | %+v | %s", err, err, chainText(err)))
	}
	return err
}

// assertNoCredentialsIn fails if text shows the client secret, in any form
// a form body or JSON would hold it, or an access token.
func assertNoCredentialsIn(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range []string{testClientSecret, url.QueryEscape(testClientSecret),
		`cl!ent\u0026se=cret`, accessPrefix} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows a secret (%q): %s", what, secret, text)
		}
	}
}

func TestClientCredentialsAreExchangedForTheBearer(t *testing.T) {
	fa := &fakeApinizer{expiresIn: "3600"}
	hs, sm := newExchangeHarness(t, fa, credentials(testClientID, testClientSecret))

	if err := hs.change(t); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	exchanges, bearers := fa.counts()
	if exchanges != 1 || len(bearers) != 1 || bearers[0] != "Bearer acc3ss-1" {
		t.Fatalf("%d exchanges, PATCH bearers %q; want 1 and the issued token", exchanges, bearers)
	}
	h := fa.headers[0]
	if h.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		h.Get("Authorization") != "" || h.Get("Accept") != "application/json" {
		t.Errorf("token request headers %v, want a form, no Authorization, JSON accepted", h)
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d secret reads, want 1", n)
	}
}

func TestTheTokenRequestGoesToTheBaseURLWithItsPrefix(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	fa := &fakeApinizer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/gate way")
		fa.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	sm := &fakeSecrets{values: []*string{credentials(testClientID, testClientSecret)}}
	c, err := New(srv.URL+"/gate%20way/", NewSecretToken(sm, "s"), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword)); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if len(paths) != 2 || paths[0] != "POST /gate%20way/apiops/auth/token" {
		t.Errorf("requests %q, want the token endpoint under the prefix, no trailing slash", paths)
	}
}

func TestTheFormCarriesTheCredentialsExactly(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		secret string
		want   string
	}{
		{name: "plain credentials are sent as they are", id: "svc", secret: "s3cret",
			want: "grant_type=client_credentials&client_id=svc&client_secret=s3cret"},
		{name: "ampersand, equals, plus and percent are escaped",
			id: "a+b@c", secret: "x&y=z+1%2",
			want: "grant_type=client_credentials&client_id=a%2Bb%40c&client_secret=x%26y%3Dz%2B1%252"},
		{name: "a space becomes a plus, leading and trailing ones are kept",
			id: "svc", secret: " a b ",
			want: "grant_type=client_credentials&client_id=svc&client_secret=+a+b+"},
		{name: "non-ASCII letters are sent as UTF-8", id: "svc", secret: "şifre✓",
			want: "grant_type=client_credentials&client_id=svc&client_secret=%C5%9Fifre%E2%9C%93"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body string
			var form url.Values
			hs := newHarnessWithTokens(t, NewSecretToken(&fakeSecrets{
				values: []*string{credentials(tt.id, tt.secret)}}, "s"), fastOptions(),
				func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/apiops/auth/token" {
						respond(http.StatusOK, deployedBody)(w, r)
						return
					}
					b, _ := io.ReadAll(r.Body)
					body = string(b)
					form, _ = url.ParseQuery(body)
					respond(http.StatusOK, `{"access_token":"t","expires_in":60}`)(w, r)
				})
			_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New("pw"))
			if err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
			if body != tt.want {
				t.Errorf("form %q, want %q", body, tt.want)
			}
			if form.Get("client_id") != tt.id || form.Get("client_secret") != tt.secret {
				t.Errorf("server decoded %q %q, want %q %q", form.Get("client_id"),
					form.Get("client_secret"), tt.id, tt.secret)
			}
		})
	}
}

func TestTheAccessTokenIsCachedAcrossCalls(t *testing.T) {
	fa := &fakeApinizer{expiresIn: "3600"}
	hs, sm := newExchangeHarness(t, fa, credentials(testClientID, testClientSecret))
	for range 3 {
		if err := hs.change(t); err != nil {
			t.Fatal(err)
		}
	}
	if exchanges, bearers := fa.counts(); exchanges != 1 || len(bearers) != 3 {
		t.Errorf("%d exchanges for %d calls, want 1 for 3", exchanges, len(bearers))
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d secret reads, want 1", n)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestTheAccessTokenIsRenewedShortlyBeforeItExpires(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn string
		kept      time.Duration // still used this long after it was obtained
		renewed   time.Duration // and renewed from then on
	}{
		{name: "an hour's token is renewed a minute early", expiresIn: "3600",
			kept: 59*time.Minute - time.Nanosecond, renewed: 59 * time.Minute},
		{name: "a short-lived token is renewed when a tenth of it is left", expiresIn: "100",
			kept: 90*time.Second - time.Nanosecond, renewed: 90 * time.Second},
		{name: "fractions of a second count", expiresIn: "2.5",
			kept: 2250*time.Millisecond - time.Nanosecond, renewed: 2250 * time.Millisecond},
		{name: "a token without expires_in is kept until a 401", expiresIn: "",
			kept: 1000 * time.Hour, renewed: -1},
		{name: "a token with expires_in 0 is kept until a 401", expiresIn: "0",
			kept: 1000 * time.Hour, renewed: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fakeApinizer{expiresIn: tt.expiresIn}
			hs, sm := newExchangeHarness(t, fa, credentials(testClientID, testClientSecret))
			clock := &fakeClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
			hs.client.tokens.(*exchanger).now = clock.Now

			if err := hs.change(t); err != nil {
				t.Fatal(err)
			}
			clock.advance(tt.kept)
			if err := hs.change(t); err != nil {
				t.Fatal(err)
			}
			if n, _ := fa.counts(); n != 1 {
				t.Fatalf("%d exchanges after %s, want the first token kept", n, tt.kept)
			}
			if tt.renewed < 0 {
				return
			}
			clock.advance(tt.renewed - tt.kept)
			if err := hs.change(t); err != nil {
				t.Fatal(err)
			}
			exchanges, bearers := fa.counts()
			if exchanges != 2 || bearers[2] != "Bearer acc3ss-2" {
				t.Errorf("%d exchanges, bearers %q after %s; want a new token",
					exchanges, bearers, tt.renewed)
			}
			if n := sm.count(); n != 1 {
				t.Errorf("%d secret reads, want 1: renewal needs no new read", n)
			}
		})
	}
}

func TestAnExpiredAccessTokenIsReplacedAndTheCallRetried(t *testing.T) {
	fa := &fakeApinizer{expiresIn: "3600"}
	hs, sm := newExchangeHarness(t, fa, credentials(testClientID, testClientSecret))
	if err := hs.change(t); err != nil {
		t.Fatal(err)
	}

	fa.expireAll() // Apinizer now says "Token was expired!" to acc3ss-1
	if err := hs.change(t); err != nil {
		t.Fatalf("ChangePassword after the token expired: %v", err)
	}
	exchanges, bearers := fa.counts()
	want := []string{"Bearer acc3ss-1", "Bearer acc3ss-1", "Bearer acc3ss-2"}
	if exchanges != 2 || fmt.Sprint(bearers) != fmt.Sprint(want) {
		t.Errorf("%d exchanges, bearers %q; want 2 and %q", exchanges, bearers, want)
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d secret reads, want 1: a 401 on a call is no reason to read the secret", n)
	}

	t.Run("a second 401 with the new token is final", func(t *testing.T) {
		fa.mu.Lock()
		fa.expired["acc3ss-2"], fa.expired["acc3ss-3"] = true, true
		fa.mu.Unlock()
		e := asError(t, hs.change(t))
		if e.Class != ClassToken || e.StatusCode != http.StatusUnauthorized || e.Attempts != 2 {
			t.Errorf("got %v, want the second 401 as a token error", e)
		}
		if n, _ := fa.counts(); n != 3 {
			t.Errorf("%d exchanges, want one more", n)
		}
	})
}

func TestConcurrentCallsShareOneExchange(t *testing.T) {
	fa := &fakeApinizer{expiresIn: "3600", gate: make(chan struct{})}
	hs, sm := newExchangeHarness(t, fa, credentials(testClientID, testClientSecret))

	const callers = 20
	run := func() {
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if _, err := hs.client.ChangePassword(t.Context(), "p", "u",
					sensitive.New(testPassword)); err != nil {
					t.Error(err)
				}
			})
		}
		time.Sleep(20 * time.Millisecond) // let them all wait for the first exchange
		fa.mu.Lock()
		if fa.gate != nil {
			close(fa.gate)
			fa.gate = nil
		}
		fa.mu.Unlock()
		wg.Wait()
	}

	run()
	if exchanges, bearers := fa.counts(); exchanges != 1 || len(bearers) != callers {
		t.Errorf("%d exchanges for %d calls, want 1", exchanges, len(bearers))
	}

	// every call gets a 401 for the cached token: one new exchange for all
	fa.expireAll()
	run()
	if exchanges, _ := fa.counts(); exchanges != 2 {
		t.Errorf("%d exchanges after the token expired under %d calls, want 2", exchanges, callers)
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d secret reads, want 1", n)
	}
}

func TestARefusedExchange(t *testing.T) {
	const rotated = "n3w-cl!ent-secret"
	tests := []struct {
		name      string
		accepts   string // the client secret the server takes
		secrets   []*string
		wantErr   bool
		wantReads int
		wantEx    int
		wantAuth  string // the PATCH's bearer, when one is sent
	}{
		{name: "unchanged credentials get the refusal after one more read",
			accepts: "other", secrets: []*string{credentials(testClientID, testClientSecret)},
			wantErr: true, wantReads: 2, wantEx: 1},
		{name: "a rotated client secret is read again and exchanged",
			accepts: rotated, secrets: []*string{credentials(testClientID, testClientSecret),
				credentials(testClientID, rotated)},
			wantReads: 2, wantEx: 2, wantAuth: "Bearer acc3ss-1"},
		{name: "credentials refused again after the read are final",
			accepts: rotated, secrets: []*string{credentials(testClientID, testClientSecret),
				credentials(testClientID, "still-wrong")},
			wantErr: true, wantReads: 2, wantEx: 2},
		{name: "a secret that now holds a token is used as it is",
			accepts: rotated, secrets: []*string{credentials(testClientID, testClientSecret),
				aws.String(accessPrefix + "9")},
			wantReads: 2, wantEx: 1, wantAuth: "Bearer acc3ss-9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fakeApinizer{secret: tt.accepts, expiresIn: "3600"}
			hs, sm := newExchangeHarness(t, fa, tt.secrets...)
			err := hs.change(t)
			exchanges, bearers := fa.counts()
			if tt.wantErr {
				e := asError(t, err)
				if e.Class != ClassToken || e.StatusCode != http.StatusUnauthorized ||
					e.Code != "invalid_client" || e.Op != "get access token for client svc-rotator" {
					t.Errorf("got %v (class %v), want the refused exchange as a token error", err, e.Class)
				}
				if len(bearers) != 0 {
					t.Errorf("PATCH sent with %q after a refused exchange", bearers)
				}
			} else if err != nil || len(bearers) != 1 || bearers[0] != tt.wantAuth {
				t.Errorf("got %v with bearers %q, want success with %q", err, bearers, tt.wantAuth)
			}
			if n := sm.count(); n != tt.wantReads || exchanges != tt.wantEx {
				t.Errorf("%d secret reads and %d exchanges, want %d and %d",
					n, exchanges, tt.wantReads, tt.wantEx)
			}
		})
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantClass Class
		wantReads int
		wantMsg   string
	}{
		{name: "a 400 is a token error and reads the secret again",
			handler: respond(http.StatusBadRequest,
				`{"error":"invalid_request","error_description":"Bad request"}`),
			wantClass: ClassToken, wantReads: 2, wantMsg: "HTTP 400 invalid_request: Bad request"},
		{name: "a 403 is a token error without a new read",
			handler:   respond(http.StatusForbidden, `{"error":"access_denied"}`),
			wantClass: ClassToken, wantReads: 1, wantMsg: "HTTP 403 access_denied"},
		{name: "a 404 is a token error, not a rejected call",
			handler:   respond(http.StatusNotFound, "Not Found"),
			wantClass: ClassToken, wantReads: 1, wantMsg: "HTTP 404: Not Found"},
		{name: "a 503 is transient once the attempts are spent",
			handler:   respond(http.StatusServiceUnavailable, "<html>down</html>"),
			wantClass: ClassTransient, wantReads: 1, wantMsg: "HTTP 503: down (after 4 attempts)"},
		{name: "an error that echoes the form and the secret is redacted",
			handler: func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(b))
				body, _ := json.Marshal(map[string]string{"error": "invalid_client",
					"error_description": "bad " + string(b) + " / " + form.Get("client_secret")})
				respond(http.StatusUnauthorized, string(body))(w, r)
			},
			wantClass: ClassToken, wantReads: 2, wantMsg: "client_secret=[REDACTED] / [REDACTED]"},
		{name: "an HTML page that echoes the form is redacted",
			handler: func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				respond(http.StatusBadGateway, "<html><p>"+string(b)+"</p></html>")(w, r)
			},
			wantClass: ClassTransient, wantReads: 1, wantMsg: "client_secret=[REDACTED]"},
		{name: "a 200 without an access token is a token error that does not quote it",
			handler:   respond(http.StatusOK, `{"token":"`+accessPrefix+`1"}`),
			wantClass: ClassToken, wantReads: 1, wantMsg: `no string "access_token"`},
		{name: "a 200 with another token type is a token error that does not quote the token",
			handler: respond(http.StatusOK,
				`{"access_token":"`+accessPrefix+`1","token_type":"MAC"}`),
			wantClass: ClassToken, wantReads: 1, wantMsg: `"token_type" is not "Bearer"`},
		{name: "a redirect is not followed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://elsewhere.example/token", http.StatusTemporaryRedirect)
			},
			wantClass: ClassToken, wantReads: 1,
			wantMsg: "redirect to https://elsewhere.example/token not followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var patches atomic.Int32
			sm := &fakeSecrets{values: []*string{credentials(testClientID, testClientSecret)}}
			hs := newHarnessWithTokens(t, NewSecretToken(sm, "s"), fastOptions(),
				func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/apiops/auth/token" {
						tt.handler(w, r)
						return
					}
					patches.Add(1)
					respond(http.StatusOK, deployedBody)(w, r)
				})
			t.Cleanup(func() { assertNoCredentialsIn(t, "logs", hs.logs.String()) })
			err := hs.change(t)
			e := asError(t, err)
			if e.Class != tt.wantClass || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %q (class %v), want %v saying %q", err, e.Class, tt.wantClass, tt.wantMsg)
			}
			if n := sm.count(); n != tt.wantReads {
				t.Errorf("%d secret reads, want %d", n, tt.wantReads)
			}
			if n := patches.Load(); n != 0 {
				t.Errorf("%d PATCH requests without a token", n)
			}
		})
	}
}

func TestATransientExchangeFailureIsRetried(t *testing.T) {
	fa := &fakeApinizer{expiresIn: "3600", tokenDown: 2}
	hs, sm := newExchangeHarness(t, fa, credentials(testClientID, testClientSecret))
	if err := hs.change(t); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if exchanges, _ := fa.counts(); exchanges != 3 || len(hs.recordedWaits()) != 2 {
		t.Errorf("%d token requests and %d waits, want 3 and 2", exchanges, len(hs.recordedWaits()))
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d secret reads, want 1: a 503 says nothing about the secret", n)
	}
	if !strings.Contains(hs.logs.String(), "get access token for client svc-rotator") {
		t.Errorf("the retries are not logged: %s", hs.logs.String())
	}
}

func TestTheExchangeKeepsTheAttemptTimeout(t *testing.T) {
	opts := fastOptions()
	opts.AttemptTimeout = 50 * time.Millisecond
	opts.MaxAttempts = 1
	sm := &fakeSecrets{values: []*string{credentials(testClientID, testClientSecret)}}
	hs := newHarnessWithTokens(t, NewSecretToken(sm, "s"), opts, hang)
	err := hs.change(t)
	e := asError(t, err)
	if e.Class != ClassTransient || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(e.Message, "no answer within 50ms") {
		t.Errorf("got %v, want a transient timeout of the attempt", err)
	}
}

func TestInvalidCredentialSecretsAreRefused(t *testing.T) {
	const value = "v4lue-n0t-to-sh0w"
	tests := []struct {
		name   string
		secret string
		want   string
	}{
		{name: "a token beside client credentials is refused",
			secret: `{"token":"` + value + `","clientId":"a","clientSecret":"` + value + `"}`,
			want:   `holds both "token" and client credentials`},
		{name: "a token beside a client secret alone is refused",
			secret: `{"token":"` + value + `","clientSecret":"` + value + `"}`,
			want:   `holds both "token" and client credentials`},
		{name: "a client id without a client secret is refused",
			secret: `{"clientId":"` + value + `"}`, want: `no string field "clientSecret"`},
		{name: "a client secret without a client id is refused",
			secret: `{"clientSecret":"` + value + `"}`, want: `no string field "clientId"`},
		{name: "an empty client id is refused",
			secret: `{"clientId":"","clientSecret":"` + value + `"}`, want: `"clientId" field is empty`},
		{name: "a client secret of white space is refused",
			secret: `{"clientId":"` + value + `","clientSecret":" \t"}`,
			want:   `"clientSecret" field is empty`},
		{name: "a null client secret is refused",
			secret: `{"clientId":"` + value + `","clientSecret":null}`,
			want:   `"clientSecret" field is empty`},
		{name: "a numeric client id is refused",
			secret: `{"clientId":4711,"clientSecret":"` + value + `"}`,
			want:   `no string field "clientId"`},
		{name: "a client secret that is an object is refused",
			secret: `{"clientId":"a","clientSecret":{"v":"` + value + `"}}`,
			want:   `no string field "clientSecret"`},
		{name: "a client secret that is a boolean is refused",
			secret: `{"clientId":"a","clientSecret":true}`, want: `no string field "clientSecret"`},
		{name: "snake-case keys are not taken for client credentials",
			secret: `{"client_id":"a","client_secret":"` + value + `"}`,
			want:   `no string field "token", nor "clientId" and "clientSecret"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := &fakeSecrets{values: []*string{aws.String(tt.secret)}}
			hs := newHarnessWithTokens(t, NewSecretToken(sm, "apinizer/token"), fastOptions(),
				respond(http.StatusOK, deployedBody))
			_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			e := asError(t, err)
			if e.Class != ClassToken || e.Op != "read token secret apinizer/token" {
				t.Errorf("class %v op %q, want token and the secret's id", e.Class, e.Op)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), "4711") {
				t.Errorf("error %q shows a value", err)
			}
			if n := hs.requests.Load(); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestASecretTokenAloneCannotExchange(t *testing.T) {
	sm := &fakeSecrets{values: []*string{credentials(testClientID, testClientSecret)}}
	st := NewSecretToken(sm, "s")
	for name, get := range map[string]func() (sensitive.String, error){
		"Token": func() (sensitive.String, error) { return st.Token(t.Context()) },
		"Refresh": func() (sensitive.String, error) {
			return st.Refresh(t.Context(), sensitive.String{})
		},
	} {
		tok, err := get()
		if ClassOf(err) != ClassToken || !strings.Contains(err.Error(), "client credentials") ||
			!tok.Empty() {
			t.Errorf("%s = %v, want a token error about client credentials", name, err)
		}
		assertNoCredentialsIn(t, name+" error", err.Error())
	}
}

func TestASharedSecretTokenIsReadOnceForEveryClient(t *testing.T) {
	fa := &fakeApinizer{expiresIn: "3600"}
	srv := httptest.NewServer(fa)
	t.Cleanup(srv.Close)
	sm := &fakeSecrets{values: []*string{credentials(testClientID, testClientSecret)}}
	st := NewSecretToken(sm, "s")
	for range 2 {
		c, err := New(srv.URL, st, fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := fa.counts(); n != 2 || sm.count() != 1 {
		t.Errorf("%d exchanges and %d reads, want one exchange per Client and one read", n, sm.count())
	}
}

func TestReadAccessToken(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     string
		lifetime time.Duration
		wantErr  string
	}{
		{name: "the documented answer is read", body: `{"access_token":"abc","token_type":"Bearer",` +
			`"expires_in":3600}`, want: "abc", lifetime: time.Hour},
		{name: "the token type is compared without case", body: `{"access_token":"abc",` +
			`"token_type":"bearer","expires_in":60}`, want: "abc", lifetime: time.Minute},
		{name: "a missing token type and lifetime are accepted", body: `{"access_token":"abc"}`,
			want: "abc"},
		{name: "a null lifetime is unknown", body: `{"access_token":"abc","expires_in":null}`,
			want: "abc"},
		{name: "a lifetime past a year is capped", body: `{"access_token":"abc","expires_in":1e300}`,
			want: "abc", lifetime: maxTokenLifetime},
		{name: "a negative lifetime is refused", body: `{"access_token":"abc","expires_in":-5}`,
			wantErr: `"expires_in" is not a number of seconds`},
		{name: "a lifetime in a string is refused", body: `{"access_token":"abc","expires_in":"60"}`,
			wantErr: `"expires_in" is not a number of seconds`},
		{name: "an empty access token is refused", body: `{"access_token":""}`,
			wantErr: `no string "access_token"`},
		{name: "an access token a header cannot carry is refused",
			body:    `{"access_token":"a b\r\nX: y"}`,
			wantErr: "characters a header cannot carry"},
		{name: "a failure envelope in a 200 is reported", body: `{"error":"invalid_client",` +
			`"error_description":"Bad client credentials"}`,
			wantErr: "invalid_client: Bad client credentials"},
		{name: "a body that is no JSON object is refused", body: `<html>ok</html>`,
			wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, lifetime, err := readAccessToken("op", &answer{status: 200, body: []byte(tt.body)})
			if tt.wantErr != "" {
				if ClassOf(err) != ClassToken || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, want a token error saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "a b") || strings.Contains(err.Error(), "abc") {
					t.Errorf("error %q quotes the token", err)
				}
				return
			}
			if err != nil || tok.Reveal() != tt.want || lifetime != tt.lifetime {
				t.Errorf("got %q %s %v, want %q %s", tok.Reveal(), lifetime, err, tt.want, tt.lifetime)
			}
		})
	}
}

// countingExchange is an exchangeFunc that counts its calls, holds each
// until gate is closed (when set), and fails while err is set.
type countingExchange struct {
	calls atomic.Int32
	gate  chan struct{}
	err   error
}

func (x *countingExchange) exchange(ctx context.Context, _ string,
	_ sensitive.String) (sensitive.String, time.Duration, error) {
	n := x.calls.Add(1)
	if x.gate != nil {
		select {
		case <-x.gate:
		case <-ctx.Done():
			return sensitive.String{}, 0, stopped(ctx, "x", 1, nil)
		}
	}
	if x.err != nil {
		return sensitive.String{}, 0, x.err
	}
	return sensitive.New(fmt.Sprintf("t%d", n)), time.Hour, nil
}

func newTestExchanger(x *countingExchange) *exchanger {
	sm := &fakeSecrets{values: []*string{credentials(testClientID, testClientSecret)}}
	st := NewSecretToken(sm, "s")
	return newExchanger(st, x.exchange, slog.New(slog.DiscardHandler))
}

func TestWaitersShareTheExchangeUnderWay(t *testing.T) {
	t.Run("a failure is shared, not repeated by every waiter", func(t *testing.T) {
		x := &countingExchange{gate: make(chan struct{}),
			err: &Error{Op: "x", Class: ClassTransient, StatusCode: 503}}
		e := newTestExchanger(x)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := e.Token(t.Context()); ClassOf(err) != ClassTransient {
					t.Errorf("got %v, want the shared transient failure", err)
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
		close(x.gate)
		wg.Wait()
		if n := x.calls.Load(); n != 1 {
			t.Errorf("%d exchanges, want 1", n)
		}
	})

	t.Run("a waiter tries again when the exchange's own caller gave up", func(t *testing.T) {
		x := &countingExchange{gate: make(chan struct{})}
		e := newTestExchanger(x)
		short, cancel := context.WithCancel(t.Context())
		leader := make(chan error, 1)
		go func() { _, err := e.Token(short); leader <- err }()
		time.Sleep(10 * time.Millisecond)
		waiter := make(chan sensitive.String, 1)
		go func() {
			tok, err := e.Token(t.Context())
			if err != nil {
				t.Errorf("waiter: %v", err)
			}
			waiter <- tok
		}()
		time.Sleep(10 * time.Millisecond)
		cancel()
		if err := <-leader; !errors.Is(err, context.Canceled) {
			t.Errorf("leader got %v, want its cancellation", err)
		}
		time.Sleep(10 * time.Millisecond)
		close(x.gate)
		if tok := <-waiter; tok.Reveal() != "t2" {
			t.Errorf("waiter got %q, want the token of its own exchange", tok.Reveal())
		}
	})

	t.Run("a waiter stops when its own context ends", func(t *testing.T) {
		x := &countingExchange{gate: make(chan struct{})}
		defer close(x.gate)
		e := newTestExchanger(x)
		go func() { _, _ = e.Token(t.Context()) }()
		time.Sleep(10 * time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		_, err := e.Token(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || ClassOf(err) != ClassTransient {
			t.Errorf("got %v, want a transient error wrapping the deadline", err)
		}
	})
}

func TestATokenSecretBehindAClientWorksAsBefore(t *testing.T) {
	// the server takes only the token the secret holds last
	serve := func(good string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+good {
				respond(http.StatusUnauthorized, tokenInvalidBody)(w, r)
				return
			}
			respond(http.StatusOK, deployedBody)(w, r)
		}
	}

	t.Run("the token is read once and sent as it is", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String(testToken)}}
		hs := newHarnessWithTokens(t, NewSecretToken(sm, "s"), fastOptions(), serve(testToken))
		for range 3 {
			if err := hs.change(t); err != nil {
				t.Fatal(err)
			}
		}
		if n := sm.count(); n != 1 {
			t.Errorf("%d secret reads, want 1", n)
		}
	})

	t.Run("a 401 reads the secret again and the call is retried", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String("old-token"), aws.String(testToken)}}
		hs := newHarnessWithTokens(t, NewSecretToken(sm, "s"), fastOptions(), serve(testToken))
		if err := hs.change(t); err != nil {
			t.Fatal(err)
		}
		if n := sm.count(); n != 2 || hs.requests.Load() != 2 {
			t.Errorf("%d secret reads and %d requests, want 2 and 2", n, hs.requests.Load())
		}
	})

	t.Run("concurrent 401s read the secret once more", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String("old-token"), aws.String(testToken)}}
		hs := newHarnessWithTokens(t, NewSecretToken(sm, "s"), fastOptions(), serve(testToken))
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if err := hs.change(t); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := sm.count(); n != 2 {
			t.Errorf("%d secret reads, want 2", n)
		}
	})

	t.Run("a secret that now holds client credentials is exchanged", func(t *testing.T) {
		fa := &fakeApinizer{expiresIn: "3600"}
		hs, sm := newExchangeHarness(t, fa, aws.String("old-token"),
			credentials(testClientID, testClientSecret))
		if err := hs.change(t); err != nil {
			t.Fatal(err)
		}
		exchanges, bearers := fa.counts()
		want := []string{"Bearer old-token", "Bearer acc3ss-1"}
		if exchanges != 1 || fmt.Sprint(bearers) != fmt.Sprint(want) || sm.count() != 2 {
			t.Errorf("%d exchanges, bearers %q, %d reads; want 1, %q, 2",
				exchanges, bearers, sm.count(), want)
		}
	})
}
