package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// testToken is the bearer token the test servers accept.
const testToken = "test-token"

// start serves a simulator for one test, with testToken accepted unless cfg
// names tokens, and credential "app"/"svc" holding "old-password".
func start(t *testing.T, cfg Config) *Running {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = []string{testToken}
	}
	run, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(run.Close)
	run.SetCredential("app", "svc", "old-password")
	return run
}

// call is one request to send.
type call struct {
	method      string
	path        string // escaped, after the base URL
	token       string // "" sends no Authorization header
	contentType string
	body        string
}

// answer is what came back.
type answer struct {
	status int
	header http.Header
	body   string
}

// send makes one real HTTP request, failing the test if it cannot.
func send(t *testing.T, base string, c call) answer {
	t.Helper()
	a, err := trySend(base, c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// trySend makes one real HTTP request; goroutines other than the test's
// use it, as they may not stop the test.
func trySend(base string, c call) (answer, error) {
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		return answer{}, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: reading body: %w", c.method, c.path, err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}, nil
}

// patchCall is a password change with testToken.
func patchCall(project, username, password string) call {
	body, _ := json.Marshal(map[string]string{"password": password})
	return call{method: http.MethodPatch,
		path:  "/apiops/projects/" + project + "/credentials/" + username + "/",
		token: testToken, contentType: "application/json", body: string(body)}
}

// patch sends a password change with testToken.
func patch(t *testing.T, base, project, username, password string) answer {
	t.Helper()
	return send(t, base, patchCall(project, username, password))
}

// object decodes a JSON object, failing the test if it is not one.
func object(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, body)
	}
	return m
}

// keys are an object's keys, sorted.
func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// wantKeys fails the test unless v is an object with exactly these keys.
func wantKeys(t *testing.T, what string, v any, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(v); !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v", what, got, want)
	}
}

// wantJSON fails the test unless the answer is JSON with Apinizer's
// Content-Type and the given status.
func wantJSON(t *testing.T, a answer, status int) map[string]any {
	t.Helper()
	if a.status != status {
		t.Errorf("status = %d, want %d (body %q)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != contentTypeJSON {
		t.Errorf("Content-Type = %q, want %q", ct, contentTypeJSON)
	}
	return object(t, a.body)
}

// wantBody fails the test unless the answer is exactly status and body.
func wantBody(t *testing.T, a answer, status int, body string) {
	t.Helper()
	if a.status != status || a.body != body {
		t.Errorf("answer = %d %q, want %d %q", a.status, a.body, status, body)
	}
}
