package simulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand; safe for the server's
// goroutines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// useClock makes s tell time by a fake clock.
func useClock(s *Server) *fakeClock {
	c := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = c.Now
	return c
}

// gatewayToken asks the gateway's token endpoint for a token.
func gatewayToken(t *testing.T, base, username, password string) answer {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"},
		"client_id": {username}, "client_secret": {password}}
	return send(t, base, call{method: http.MethodPost, path: "/credential/token",
		contentType: "application/x-www-form-urlencoded", body: form.Encode()})
}

// probe calls an API proxy under /gateway/ with Basic authentication.
func probe(t *testing.T, base, path, username, password string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(username, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// wantAccepted fails the test unless the gateway accepts exactly the
// passwords in want among all those tried, through GatewayAccepts and both
// endpoints.
func wantAccepted(t *testing.T, run *Running, username string, tried []string, want string) {
	t.Helper()
	for _, pw := range tried {
		accepted := pw == want
		if got := run.GatewayAccepts(username, pw); got != accepted {
			t.Errorf("GatewayAccepts(%q) = %v, want %v", pw, got, accepted)
		}
		status := http.StatusUnauthorized
		if accepted {
			status = http.StatusOK
		}
		if a := gatewayToken(t, run.URL, username, pw); a.status != status {
			t.Errorf("token endpoint with %q: %d, want %d", pw, a.status, status)
		}
		if a := probe(t, run.URL, "/gateway/probe", username, pw); a.status != status {
			t.Errorf("probe with %q: %d, want %d", pw, a.status, status)
		}
	}
}

func TestGatewayAcceptsTheDeployedPassword(t *testing.T) {
	for _, env := range []Envelope{EnvelopeSeed, EnvelopeCurrent} {
		t.Run(string(env), func(t *testing.T) {
			run := start(t, Config{Envelope: env})
			tried := []string{"old-password", "new-password", ""}

			// SetCredential deploys at once
			wantAccepted(t, run, "svc", tried, "old-password")

			if a := patch(t, run.URL, "app", "svc", "new-password"); a.status != http.StatusOK {
				t.Fatalf("PATCH: %d %s", a.status, a.body)
			}
			wantAccepted(t, run, "svc", tried, "new-password")
			if run.GatewayAccepts("nobody", "new-password") {
				t.Error("the gateway accepts an unknown username")
			}
		})
	}
}

func TestGatewayAnswers(t *testing.T) {
	const (
		invalidClient = `{"error":"invalid_client","error_description":"Bad client credentials"}`
		badGrant      = `{"error":"unsupported_grant_type",` +
			`"error_description":"Only the client_credentials grant type is supported"}`
	)
	for _, env := range []Envelope{EnvelopeSeed, EnvelopeCurrent} {
		t.Run(string(env), func(t *testing.T) {
			run := start(t, Config{Envelope: env})

			// the token endpoint, accepted
			a := gatewayToken(t, run.URL, "svc", "old-password")
			got := wantJSON(t, a, http.StatusOK)
			wantKeys(t, "token answer", got, "access_token", "token_type", "expires_in")
			if tok, _ := got["access_token"].(string); tok == "" || got["token_type"] != "Bearer" ||
				got["expires_in"] != 3600.0 {
				t.Errorf("token answer = %s", a.body)
			}
			if cc := a.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}

			// a gateway token is no management API token
			tok, _ := got["access_token"].(string)
			hello := send(t, run.URL, call{method: http.MethodGet,
				path: "/apiops/test/hello/x", token: tok})
			if hello.status != http.StatusUnauthorized {
				t.Errorf("the management API accepts a gateway token: %d", hello.status)
			}

			// the token endpoint, refused, in the OAuth shape whatever the envelope
			wantBody(t, gatewayToken(t, run.URL, "svc", "wrong"), 401, invalidClient)
			wantBody(t, gatewayToken(t, run.URL, "nobody", "old-password"), 401, invalidClient)
			wrongGrant := send(t, run.URL, call{method: http.MethodPost,
				path: "/credential/token", contentType: "application/x-www-form-urlencoded",
				body: "grant_type=password&client_id=svc&client_secret=old-password"})
			wantBody(t, wrongGrant, 400, badGrant)
			get := send(t, run.URL, call{method: http.MethodGet, path: "/credential/token"})
			if get.status != http.StatusMethodNotAllowed || get.header.Get("Allow") != "POST" {
				t.Errorf("GET /credential/token: %d Allow %q", get.status, get.header.Get("Allow"))
			}

			// the probe: any path and method under /gateway/
			wantBody(t, probe(t, run.URL, "/gateway/probe", "svc", "old-password"), 200, "OK")
			wantBody(t, probe(t, run.URL, "/gateway/orders/v1/list?x=1", "svc", "old-password"),
				200, "OK")
			req, _ := http.NewRequest(http.MethodPost, run.URL+"/gateway/", nil)
			req.SetBasicAuth("svc", "old-password")
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
				t.Errorf("POST /gateway/: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			refused := probe(t, run.URL, "/gateway/probe", "svc", "wrong")
			wantBody(t, refused, 401, "Unauthorized")
			if wa := refused.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Basic ") {
				t.Errorf("WWW-Authenticate = %q", wa)
			}
			noAuth := send(t, run.URL, call{method: http.MethodGet, path: "/gateway/probe"})
			if noAuth.status != 401 || noAuth.header.Get("WWW-Authenticate") == "" {
				t.Errorf("no Authorization: %d %v", noAuth.status, noAuth.header)
			}
			bearer := send(t, run.URL, call{method: http.MethodGet, path: "/gateway/probe",
				token: testToken})
			if bearer.status != 401 {
				t.Errorf("a bearer token on the probe: %d, want 401", bearer.status)
			}
			if a := send(t, run.URL, call{method: http.MethodGet, path: "/gateway"}); a.status != 404 {
				t.Errorf("/gateway alone: %d, want 404", a.status)
			}
		})
	}
}

func TestGatewayExoticCredentials(t *testing.T) {
	run := start(t, Config{})
	const user, pw = "jürgen@örnek.com", `p:a@s%s w&o=r+d/ü`
	run.SetCredential("other-project", user, pw)

	wantAccepted(t, run, user, []string{pw, pw[:5], "p"}, pw)
	if a := probe(t, run.URL, "/gateway/x", user, pw); a.status != 200 {
		t.Errorf("probe: %d", a.status)
	}
}

func TestGatewayLag(t *testing.T) {
	run := start(t, Config{GatewayLagMS: 1000})
	clock := useClock(run.Server)
	tried := []string{"old-password", "pw-b", "pw-c"}

	patch(t, run.URL, "app", "svc", "pw-b")
	wantAccepted(t, run, "svc", tried, "old-password")
	clock.Add(999 * time.Millisecond)
	wantAccepted(t, run, "svc", tried, "old-password")
	clock.Add(time.Millisecond)
	wantAccepted(t, run, "svc", tried, "pw-b")

	// two changes within the lag: each takes over in its turn
	clock.Add(time.Hour)
	patch(t, run.URL, "app", "svc", "old-password") // t0
	clock.Add(500 * time.Millisecond)
	patch(t, run.URL, "app", "svc", "pw-c") // t0 + 500ms
	clock.Add(250 * time.Millisecond)
	wantAccepted(t, run, "svc", tried, "pw-b")
	clock.Add(500 * time.Millisecond) // t0 + 1250ms
	wantAccepted(t, run, "svc", tried, "old-password")
	clock.Add(250 * time.Millisecond) // t0 + 1500ms
	wantAccepted(t, run, "svc", tried, "pw-c")

	// the Manager had the newest password all along
	if got, _ := run.Password("app", "svc"); got != "pw-c" {
		t.Errorf("Password = %q", got)
	}
}

func TestGatewayLagIsReal(t *testing.T) {
	run := start(t, Config{GatewayLagMS: 500})
	patch(t, run.URL, "app", "svc", "new")
	if !run.GatewayAccepts("svc", "old-password") || run.GatewayAccepts("svc", "new") {
		t.Error("the new password is accepted before the lag")
	}
	time.Sleep(600 * time.Millisecond)
	if run.GatewayAccepts("svc", "old-password") || !run.GatewayAccepts("svc", "new") {
		t.Error("the new password is not accepted after the lag")
	}
}

func TestGatewayAfterFailedDeployments(t *testing.T) {
	tests := []struct {
		name    string
		failure DeployFailure
	}{
		{"one pod of one environment", DeployFailure{Environment: "staging",
			Pod: PodName("staging", 1)}},
		{"a whole environment", DeployFailure{Environment: "production"}},
		{"in the pods shape", DeployFailure{Environment: "staging", Pod: PodName("staging", 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DeployFailures: []DeployFailure{tt.failure}}
			if strings.Contains(tt.name, "pods shape") {
				cfg.Shape = ShapePods
			}
			run := start(t, cfg)
			tried := []string{"old-password", "new"}

			got := wantJSON(t, patch(t, run.URL, "app", "svc", "new"), http.StatusOK)
			if dr, _ := got["deploymentResult"].(map[string]any); dr["success"] != false {
				t.Fatalf("the deployment did not fail: %v", got)
			}
			if pw, _ := run.Password("app", "svc"); pw != "new" {
				t.Errorf("the Manager holds %q, want the new password", pw)
			}
			// some pods serve the new password, the failed ones the old one
			wantAccepted(t, run, "svc", tried, "")

			// a later change that deploys everywhere heals it
			cfg.DeployFailures = nil
			cfg.Tokens = []string{testToken}
			run.SetConfig(cfg)
			patch(t, run.URL, "app", "svc", "new")
			wantAccepted(t, run, "svc", tried, "new")
		})
	}
}

func TestGatewayFailedPodKeepsItsPasswordAcrossChanges(t *testing.T) {
	failing := DeployFailure{Environment: "staging", Pod: PodName("staging", 0)}
	run := start(t, Config{Environments: []string{"staging"}, PodsPerEnv: 1,
		DeployFailures: []DeployFailure{failing}})
	patch(t, run.URL, "app", "svc", "second")
	patch(t, run.URL, "app", "svc", "third")
	// the only pod never got a change
	wantAccepted(t, run, "svc", []string{"old-password", "second", "third"}, "old-password")
}

func TestGatewayWithoutEnvironmentsAcceptsNothing(t *testing.T) {
	run := start(t, Config{Environments: []string{}})
	wantAccepted(t, run, "svc", []string{"old-password"}, "")
}

func TestSetCredentialDeploysAtOnce(t *testing.T) {
	run := start(t, Config{GatewayLagMS: 60_000,
		DeployFailures: []DeployFailure{{Environment: "staging"}}})
	patch(t, run.URL, "app", "svc", "patched")
	run.SetCredential("app", "svc", "reset")
	wantAccepted(t, run, "svc", []string{"old-password", "patched", "reset"}, "reset")
}

func TestFaultWithApplyDeploys(t *testing.T) {
	run := start(t, Config{})
	run.AddFaults(Fault{Status: http.StatusGatewayTimeout, Apply: true},
		Fault{Status: http.StatusServiceUnavailable})

	if a := patch(t, run.URL, "app", "svc", "applied"); a.status != 504 {
		t.Fatalf("status %d, want 504", a.status)
	}
	wantAccepted(t, run, "svc", []string{"old-password", "applied"}, "applied")

	// a fault without Apply deploys nothing
	if a := patch(t, run.URL, "app", "svc", "refused"); a.status != 503 {
		t.Fatalf("status %d, want 503", a.status)
	}
	wantAccepted(t, run, "svc", []string{"applied", "refused"}, "applied")
}

func TestGatewayRequestsAreRecordedWithoutSecrets(t *testing.T) {
	run := start(t, Config{})
	const secret = "Gateway-S3cret&x=1"
	run.SetCredential("app", "svc", secret)
	gatewayToken(t, run.URL, "svc", secret)
	gatewayToken(t, run.URL, "svc", "wrong")
	probe(t, run.URL, "/gateway/probe", "svc", secret)
	probe(t, run.URL, "/gateway/probe", "svc", "wrong")

	reqs := run.Requests()
	want := []struct {
		method, path string
		status       int
		auth         bool
	}{
		{"POST", "/credential/token", 200, false},
		{"POST", "/credential/token", 401, false},
		{"GET", "/gateway/probe", 200, true},
		{"GET", "/gateway/probe", 401, true},
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests recorded, want %d: %+v", len(reqs), len(want), reqs)
	}
	for i, w := range want {
		r := reqs[i]
		if r.Method != w.method || r.Path != w.path || r.Status != w.status ||
			r.HasAuthorization != w.auth || r.Username != "svc" || r.TokenAccepted ||
			r.PasswordLength != 0 {
			t.Errorf("request %d = %+v, want %s %s %d auth=%v for svc", i, r,
				w.method, w.path, w.status, w.auth)
		}
	}

	logged, _ := json.Marshal(reqs)
	control := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/requests"})
	basic := base64.StdEncoding.EncodeToString([]byte("svc:" + secret))
	for _, text := range []string{string(logged), control.body} {
		for _, s := range []string{secret, url.QueryEscape(secret), basic, "wrong"} {
			if strings.Contains(text, s) {
				t.Errorf("the request log shows %q: %s", s, text)
			}
		}
	}
}

func TestGatewayLagConfig(t *testing.T) {
	if err := (Config{GatewayLagMS: -1}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "gatewayLagMs") {
		t.Errorf("Validate = %v, want an error naming gatewayLagMs", err)
	}
	run := start(t, Config{})
	put := send(t, run.URL, call{method: http.MethodPut, path: "/_sim/config",
		body: `{"gatewayLagMs":250,"tokens":["t"]}`})
	got := wantJSON(t, put, http.StatusOK)
	if got["gatewayLagMs"] != 250.0 || run.Config().GatewayLagMS != 250 {
		t.Errorf("config = %s", put.body)
	}
	bad := send(t, run.URL, call{method: http.MethodPut, path: "/_sim/config",
		body: `{"gatewayLagMs":-5}`})
	if bad.status != http.StatusBadRequest {
		t.Errorf("a negative lag: %d, want 400", bad.status)
	}
}

func TestGatewayUnderConcurrentChanges(t *testing.T) {
	run := start(t, Config{Shape: ShapePods, GatewayLagMS: 1})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, _ = trySend(run.URL, patchCall("app", "svc", fmt.Sprintf("pw-%d", i)))
		})
		wg.Go(func() {
			_ = run.GatewayAccepts("svc", fmt.Sprintf("pw-%d", i))
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"},
				"client_secret": {"old-password"}}
			_, _ = trySend(run.URL, call{method: http.MethodPost, path: "/credential/token",
				contentType: "application/x-www-form-urlencoded", body: form.Encode()})
		})
	}
	wg.Wait()

	// once the lag has passed, the Manager's password is the one accepted
	time.Sleep(5 * time.Millisecond)
	final, _ := run.Password("app", "svc")
	if !run.GatewayAccepts("svc", final) {
		t.Errorf("the gateway does not accept the last password %q", final)
	}
}
