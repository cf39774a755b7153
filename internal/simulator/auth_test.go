package simulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPasswordChangeRefusesBadTokens(t *testing.T) {
	const (
		seedInvalid = `{"error":"unauthorized_client","error_description":"Invalid token"}`
		emptyKey    = `{"status":"FAILURE","resultMessage":"` + msgEmptyKey + `"}`
		notValid    = `{"status":"FAILURE","resultMessage":"Token is not valid!"}`
	)
	tests := []struct {
		name          string
		envelope      Envelope
		authorization string
		body          string
	}{
		{"no header, seed envelope", EnvelopeSeed, "", seedInvalid},
		{"a wrong token, seed envelope", EnvelopeSeed, "Bearer wrong", seedInvalid},
		{"no header, current envelope", EnvelopeCurrent, "", emptyKey},
		{"an empty bearer token", EnvelopeCurrent, "Bearer ", emptyKey},
		{"a wrong token", EnvelopeCurrent, "Bearer wrong", notValid},
		{"a token prefix", EnvelopeCurrent, "Bearer test-tok", notValid},
		{"basic authentication", EnvelopeCurrent, "Basic dGVzdC10b2tlbg==", notValid},
		{"the token without a scheme", EnvelopeCurrent, testToken, notValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, Config{Envelope: tt.envelope})
			req, _ := http.NewRequest(http.MethodPatch,
				run.URL+"/apiops/projects/app/credentials/svc/",
				strings.NewReader(`{"password":"new"}`))
			req.Header.Set("Content-Type", "application/json")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}

			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&raw)
			if resp.StatusCode != http.StatusUnauthorized || string(raw) != tt.body {
				t.Errorf("answer = %d %s, want 401 %s", resp.StatusCode, raw, tt.body)
			}
			if pw, _ := run.Password("app", "svc"); pw != "old-password" {
				t.Errorf("password changed to %q without a valid token", pw)
			}
			last := run.Requests()[0]
			if last.HasAuthorization != (tt.authorization != "") || last.TokenAccepted {
				t.Errorf("logged HasAuthorization=%v TokenAccepted=%v",
					last.HasAuthorization, last.TokenAccepted)
			}
		})
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	run := start(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, run.URL+"/apiops/test/hello/x", nil)
	req.Header.Set("Authorization", "bearer "+testToken)

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
}

// postToken calls the token endpoint with a form.
func postToken(t *testing.T, base string, form url.Values) answer {
	t.Helper()
	return send(t, base, call{method: http.MethodPost, path: "/apiops/auth/token",
		contentType: "application/x-www-form-urlencoded", body: form.Encode()})
}

func TestTokenEndpointIssuesTokensForStoredCredentials(t *testing.T) {
	run := start(t, Config{Tokens: []string{}})

	a := postToken(t, run.URL, url.Values{"grant_type": {"client_credentials"},
		"client_id": {"svc"}, "client_secret": {"old-password"}})
	got := wantJSON(t, a, http.StatusOK)
	wantKeys(t, "token answer", got, "access_token", "token_type", "expires_in")
	token, _ := got["access_token"].(string)
	if token == "" || got["token_type"] != "Bearer" || got["expires_in"] != 3600.0 {
		t.Fatalf("token answer = %s", a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", a.header.Get("Cache-Control"))
	}

	// the issued token opens the hello endpoint and the password change
	hello := send(t, run.URL, call{method: http.MethodGet,
		path: "/apiops/test/hello/sim", token: token})
	wantBody(t, hello, http.StatusOK, "Hello sim")
	change := send(t, run.URL, call{method: http.MethodPatch,
		path: "/apiops/projects/app/credentials/svc/", token: token,
		contentType: "application/json", body: `{"password":"rotated"}`})
	wantJSON(t, change, http.StatusOK)

	// the old password no longer gets a token; the new one does
	old := postToken(t, run.URL, url.Values{"grant_type": {"client_credentials"},
		"client_id": {"svc"}, "client_secret": {"old-password"}})
	wantBody(t, old, http.StatusUnauthorized,
		`{"error":"invalid_client","error_description":"Bad client credentials"}`)
	fresh := postToken(t, run.URL, url.Values{"grant_type": {"client_credentials"},
		"client_id": {"svc"}, "client_secret": {"rotated"}})
	wantJSON(t, fresh, http.StatusOK)

	for _, r := range run.Requests() {
		if r.Path == "/apiops/auth/token" && r.Username != "svc" {
			t.Errorf("token request logged username %q, want svc", r.Username)
		}
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	tests := []struct {
		name   string
		form   url.Values
		status int
		body   string
	}{
		{
			name: "a wrong secret",
			form: url.Values{"grant_type": {"client_credentials"},
				"client_id": {"svc"}, "client_secret": {"wrong"}},
			status: http.StatusUnauthorized,
			body:   `{"error":"invalid_client","error_description":"Bad client credentials"}`,
		},
		{
			name: "an unknown client",
			form: url.Values{"grant_type": {"client_credentials"},
				"client_id": {"nobody"}, "client_secret": {"old-password"}},
			status: http.StatusUnauthorized,
			body:   `{"error":"invalid_client","error_description":"Bad client credentials"}`,
		},
		{
			name:   "no credentials at all",
			form:   url.Values{"grant_type": {"client_credentials"}},
			status: http.StatusUnauthorized,
			body:   `{"error":"invalid_client","error_description":"Bad client credentials"}`,
		},
		{
			name: "another grant type",
			form: url.Values{"grant_type": {"password"},
				"client_id": {"svc"}, "client_secret": {"old-password"}},
			status: http.StatusBadRequest,
			body: `{"error":"unsupported_grant_type",` +
				`"error_description":"Only the client_credentials grant type is supported"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, Config{})

			a := postToken(t, run.URL, tt.form)
			wantJSON(t, a, tt.status)
			wantBody(t, a, tt.status, tt.body)
		})
	}
}

func TestIssuedTokensExpire(t *testing.T) {
	s := New(Config{})
	s.SetCredential("app", "svc", "pw")
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }

	token, ok := s.issue("svc", "pw")
	if !ok {
		t.Fatal("issue refused a stored credential")
	}
	hello := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/apiops/test/hello/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}

	if rec := hello(); rec.Code != http.StatusOK {
		t.Fatalf("fresh token: status %d", rec.Code)
	}
	clock = clock.Add(TokenLifetime)
	rec := hello()
	want := `{"status":"FAILURE","resultMessage":"Token was expired!"}`
	if rec.Code != http.StatusUnauthorized || rec.Body.String() != want {
		t.Errorf("expired token: %d %s, want 401 %s", rec.Code, rec.Body, want)
	}
	if rec := hello(); !strings.Contains(rec.Body.String(), msgInvalidToken) {
		t.Errorf("an expired token is then forgotten; got %s", rec.Body)
	}
}

func TestTestEndpoints(t *testing.T) {
	tests := []struct {
		name     string
		envelope Envelope
		call     call
		status   int
		body     string
	}{
		{"hello with a token", EnvelopeCurrent,
			call{path: "/apiops/test/hello/World", token: testToken}, 200, "Hello World"},
		{"hello unescapes its name", EnvelopeCurrent,
			call{path: "/apiops/test/hello/a%20b", token: testToken}, 200, "Hello a b"},
		{"hello with a wrong token", EnvelopeCurrent,
			call{path: "/apiops/test/hello/World", token: "wrong"}, 401,
			`{"status":"FAILURE","resultMessage":"Token is not valid!"}`},
		{"hello with no token, seed envelope", EnvelopeSeed,
			call{path: "/apiops/test/hello/World"}, 401,
			`{"error":"unauthorized_client","error_description":"Invalid token"}`},
		{"healthcheck needs no token", EnvelopeCurrent,
			call{path: "/apiops/test/healthcheck"}, 200, "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, Config{Envelope: tt.envelope})
			c := tt.call
			c.method = http.MethodGet

			a := send(t, run.URL, c)
			wantBody(t, a, tt.status, tt.body)
			ct := a.header.Get("Content-Type")
			if tt.status == 200 && ct != "text/plain;charset=UTF-8" {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
		})
	}
}
