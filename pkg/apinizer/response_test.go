package apinizer

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

func TestChangePasswordReadsEverySuccessShape(t *testing.T) {
	ok := func(name, pod string) EnvironmentResult {
		return EnvironmentResult{Name: name, Pod: pod, Success: true}
	}
	tests := []struct {
		name      string
		body      string
		wantEnvs  []EnvironmentResult
		wantMsg   string
		wantFlag  *bool
		wantError bool // a *DeploymentError is expected
	}{
		{
			name: "the older envelope with environmentResults is deployed",
			body: `{"success": true, "deploymentResult": {"success": true,
				"message": "Deployment completed successfully",
				"environmentResults": [{"environmentName": "production", "success": true,
				"message": "Deployed successfully"}]}}`,
			wantEnvs: []EnvironmentResult{{Name: "production", Success: true, Message: "Deployed successfully"}},
			wantMsg:  "Deployment completed successfully",
			wantFlag: ptr(true),
		},
		{
			name: "the newer envelope with environmentResults is deployed",
			body: `{"status": "SUCCESS", "resultMessage": "Credential updated",
				"deploymentResult": {"success": true, "environmentResults": [
				{"environmentName": "test", "success": true}, {"environmentName": "prod", "success": true}]}}`,
			wantEnvs: []EnvironmentResult{ok("test", ""), ok("prod", "")},
			wantMsg:  "Credential updated",
			wantFlag: ptr(true),
		},
		{
			name: "the older envelope with a per-pod detailList is deployed",
			body: `{"success": true, "deploymentResult": {"success": true, "responseTime": 12,
				"detailList": [{"envName": "prod", "podName": "gw-1", "podIp": "10.0.0.1",
				"success": true, "detail": "ok", "responseTime": 5}]}}`,
			wantEnvs: []EnvironmentResult{{Name: "prod", Pod: "gw-1", Success: true, Message: "ok"}},
			wantFlag: ptr(true),
		},
		{
			name: "the newer envelope with a per-pod detailList is deployed",
			body: `{"status": "SUCCESS", "deploymentResult": {"success": true, "detailList": [
				{"envName": "prod", "podName": "gw-1", "success": true},
				{"envName": "prod", "podName": "gw-2", "success": true}]}}`,
			wantEnvs: []EnvironmentResult{ok("prod", "gw-1"), ok("prod", "gw-2")},
			wantFlag: ptr(true),
		},
		{
			name: "nested detailList entries are flattened and inherit the environment name",
			body: `{"status": "SUCCESS", "deploymentResult": {"success": true, "detailList": [
				{"envName": "prod", "success": true, "detailList": [
					{"podName": "gw-1", "success": true},
					{"podName": "gw-2", "success": true, "detailList": [
						{"envName": "prod-eu", "podName": "gw-2a", "success": true}]}]},
				{"envName": "test", "podName": "gw-9", "success": true}]}}`,
			wantEnvs: []EnvironmentResult{ok("prod", "gw-1"), ok("prod-eu", "gw-2a"), ok("test", "gw-9")},
			wantFlag: ptr(true),
		},
		{
			name: "firstFromApiResultList alone is read as the one entry",
			body: `{"status": "SUCCESS", "deploymentResult": {"success": true,
				"firstFromApiResultList": {"envName": "prod", "podName": "gw-1", "success": true}}}`,
			wantEnvs: []EnvironmentResult{ok("prod", "gw-1")},
			wantFlag: ptr(true),
		},
		{
			name: "firstFromApiResultList beside a detailList is not counted twice",
			body: `{"status": "SUCCESS", "deploymentResult": {"success": true,
				"detailList": [{"envName": "prod", "podName": "gw-1", "success": true}],
				"firstFromApiResultList": {"envName": "prod", "podName": "gw-1", "success": true}}}`,
			wantEnvs: []EnvironmentResult{ok("prod", "gw-1")},
			wantFlag: ptr(true),
		},
		{
			name:     "an overall true flag with no entries is deployed",
			body:     `{"status": "SUCCESS", "deploymentResult": {"success": true, "detailList": []}}`,
			wantFlag: ptr(true),
		},
		{
			name:     "a status in lower case is read",
			body:     `{"status": "success", "deploymentResult": {"success": true}}`,
			wantFlag: ptr(true),
		},
		{
			name: "a failed environment is a deployment error naming it",
			body: `{"success": true, "deploymentResult": {"success": false, "environmentResults": [
				{"environmentName": "prod", "success": false, "message": "Connection refused"},
				{"environmentName": "test", "success": true}]}}`,
			wantEnvs: []EnvironmentResult{
				{Name: "prod", Message: "Connection refused"}, ok("test", "")},
			wantFlag:  ptr(false),
			wantError: true,
		},
		{
			name: "a failed pod is a deployment error although the overall flag is true",
			body: `{"status": "SUCCESS", "deploymentResult": {"success": true, "detailList": [
				{"envName": "prod", "podName": "gw-1", "success": true},
				{"envName": "prod", "podName": "gw-2", "success": false, "detail": "timeout"}]}}`,
			wantEnvs: []EnvironmentResult{
				ok("prod", "gw-1"), {Name: "prod", Pod: "gw-2", Message: "timeout"}},
			wantFlag:  ptr(true),
			wantError: true,
		},
		{
			name: "an entry without success counts as failed",
			body: `{"status": "SUCCESS", "deploymentResult": {"detailList": [
				{"envName": "prod", "podName": "gw-1"}]}}`,
			wantEnvs:  []EnvironmentResult{{Name: "prod", Pod: "gw-1"}},
			wantError: true,
		},
		{
			name: "a failed group whose pods all succeeded is kept as a failure",
			body: `{"status": "SUCCESS", "deploymentResult": {"success": true, "detailList": [
				{"envName": "prod", "success": false, "detail": "partial", "detailList": [
					{"podName": "gw-1", "success": true}]}]}}`,
			wantEnvs: []EnvironmentResult{
				ok("prod", "gw-1"), {Name: "prod", Message: "partial"}},
			wantFlag:  ptr(true),
			wantError: true,
		},
		{
			name: "no gateway reachable is a deployment error with the result message",
			body: `{"status": "SUCCESS", "resultMessage": "saved successfully but deployment to environments failed",
				"deploymentResult": {"success": false, "detailList": []}}`,
			wantMsg:   "saved successfully but deployment to environments failed",
			wantFlag:  ptr(false),
			wantError: true,
		},
		{
			name:      "an empty deploymentResult is no evidence of a deployment",
			body:      `{"success": true, "deploymentResult": {}}`,
			wantError: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, fastOptions(), respond(http.StatusOK, tt.body))
			dep, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			if dep == nil {
				t.Fatalf("no Deployment returned for a 200 (err %v)", err)
			}
			if !dep.Reported {
				t.Errorf("Reported is false, want true")
			}
			if !reflect.DeepEqual(dep.Environments, tt.wantEnvs) {
				t.Errorf("environments\n got %+v\nwant %+v", dep.Environments, tt.wantEnvs)
			}
			if tt.wantMsg != "" && dep.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", dep.Message, tt.wantMsg)
			}
			if !reflect.DeepEqual(dep.Success, tt.wantFlag) {
				t.Errorf("overall flag %v, want %v", show(dep.Success), show(tt.wantFlag))
			}
			if !tt.wantError {
				if err != nil || !dep.Deployed() {
					t.Fatalf("got error %v, Deployed %v; want a deployed result", err, dep.Deployed())
				}
				return
			}

			var de *DeploymentError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T), want a *DeploymentError", err, err)
			}
			if ClassOf(err) != ClassDeploymentFailed {
				t.Errorf("class %v, want deployment_failed", ClassOf(err))
			}
			if dep.Deployed() {
				t.Errorf("Deployed() is true beside a DeploymentError")
			}
			for _, f := range dep.Failed() {
				if !strings.Contains(err.Error(), f.Name) {
					t.Errorf("error %q does not name failed environment %q", err, f.Name)
				}
			}
			assertNoSecret(t, err)
		})
	}
}

func TestChangePasswordTreatsAnUnreadable200AsUnknownDeployment(t *testing.T) {
	huge := `{"status": "SUCCESS", "resultMessage": "` + strings.Repeat("x", 2000) + `"}`
	tests := []struct {
		name     string
		body     string
		wantText string
	}{
		{name: "a missing deploymentResult is not reported",
			body: `{"success": true}`, wantText: "no deployment result was reported"},
		{name: "a null deploymentResult is not reported",
			body: `{"status": "SUCCESS", "deploymentResult": null}`, wantText: "no deployment result"},
		{name: "a deploymentResult of the wrong type is unreadable",
			body: `{"status": "SUCCESS", "deploymentResult": "done"}`, wantText: "unreadable deploymentResult"},
		{name: "an entry field of the wrong type is unreadable",
			body:     `{"status": "SUCCESS", "deploymentResult": {"success": "yes", "detailList": []}}`,
			wantText: "unreadable deploymentResult"},
		{name: "a list of the wrong type is unreadable",
			body:     `{"status": "SUCCESS", "deploymentResult": {"success": true, "detailList": {"a": 1}}}`,
			wantText: "unreadable deploymentResult"},
		{name: "a success flag of the wrong type makes the envelope unreadable",
			body:     `{"success": "true", "deploymentResult": {"success": true}}`,
			wantText: "unreadable answer"},
		{name: "an envelope with neither success nor status is unreadable",
			body: `{"deploymentResult": {"success": true}}`, wantText: "unreadable answer"},
		{name: "contradicting success and status are unreadable",
			body: `{"success": true, "status": "FAILURE"}`, wantText: "unreadable answer"},
		{name: "truncated JSON is unreadable and quoted",
			body: `{"status": "SUCCESS", "deploymentResult": {"succ`, wantText: `{"status": "SUCCESS"`},
		{name: "a JSON array is unreadable", body: `[1, 2]`, wantText: "unreadable answer: [1, 2]"},
		{name: "an empty body is unreadable", body: ``, wantText: "unreadable answer: empty body"},
		{name: "an HTML page is unreadable and shown without tags",
			body:     `<html><head><title>Login</title></head><body>Please sign in</body></html>`,
			wantText: "unreadable answer: Login Please sign in"},
		{name: "a body over the limit is unreadable", body: huge, wantText: "could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			opts.MaxBodyBytes = 1000
			hs := newHarness(t, opts, respond(http.StatusOK, tt.body))
			dep, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			var de *DeploymentError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T), want a *DeploymentError", err, err)
			}
			if dep == nil || dep.Reported || de.Deployment.Reported {
				t.Errorf("deployment %+v, want one with Reported false", dep)
			}
			if dep.Deployed() {
				t.Errorf("an unknown outcome counts as deployed")
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if n := hs.requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1: a 200 is never retried", n)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestChangePasswordTreatsA200FailureEnvelopeAsRejected(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode string
		wantMsg  string
	}{
		{
			name:     "the newer FAILURE status is rejected with its message",
			body:     `{"status": "FAILURE", "resultMessage": "Credential (username: u) was not found!"}`,
			wantCode: "FAILURE",
			wantMsg:  "Credential (username: u) was not found!",
		},
		{
			name:     "the older success false is rejected with its description",
			body:     `{"success": false, "error": "bad_request", "error_description": "Credential password can not be empty!"}`,
			wantCode: "bad_request",
			wantMsg:  "Credential password can not be empty!",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, fastOptions(), respond(http.StatusOK, tt.body))
			dep, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			e := asError(t, err)
			if e.Class != ClassRejected || e.StatusCode != http.StatusOK {
				t.Errorf("class %v status %d, want rejected 200", e.Class, e.StatusCode)
			}
			if e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Errorf("code %q message %q, want %q %q", e.Code, e.Message, tt.wantCode, tt.wantMsg)
			}
			if dep == nil {
				t.Errorf("no Deployment returned beside a 200")
			}
			if n := hs.requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestChangePasswordReadsEveryErrorAnswer(t *testing.T) {
	htmlPage := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
		"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n" +
		strings.Repeat("<!-- padding -->\r\n", 40) + "</body>\r\n</html>\r\n"
	tests := []struct {
		name         string
		status       int
		body         string
		wantClass    Class
		wantCode     string
		wantMsg      string // exact, unless wantMsgPrefix
		wantPrefix   bool
		wantRequests int32
	}{
		{name: "a 400 in the older envelope is rejected", status: 400,
			body:      `{"error": "bad_request", "error_description": "Credential (username: api-user) was not found!"}`,
			wantClass: ClassRejected, wantCode: "bad_request",
			wantMsg: "Credential (username: api-user) was not found!", wantRequests: 1},
		{name: "a 400 in the newer envelope is rejected", status: 400,
			body:      `{"status": "FAILURE", "resultMessage": "Project (MyProject) is not found or user does not have privilege to access it!"}`,
			wantClass: ClassRejected, wantCode: "FAILURE",
			wantMsg: "Project (MyProject) is not found or user does not have privilege to access it!", wantRequests: 1},
		{name: "a 401 in the older envelope is a token problem after one refresh", status: 401,
			body:      `{"error": "unauthorized_client", "error_description": "Invalid token"}`,
			wantClass: ClassToken, wantCode: "unauthorized_client", wantMsg: "Invalid token", wantRequests: 2},
		{name: "a 401 in the newer envelope is a token problem after one refresh", status: 401,
			body:      `{"status": "FAILURE", "resultMessage": "Token was expired!"}`,
			wantClass: ClassToken, wantCode: "FAILURE", wantMsg: "Token was expired!", wantRequests: 2},
		{name: "a 403 is a token problem without a refresh", status: 403,
			body:      `{"status": "FAILURE", "resultMessage": "User does not have required permission for this operation!"}`,
			wantClass: ClassToken, wantCode: "FAILURE",
			wantMsg: "User does not have required permission for this operation!", wantRequests: 1},
		{name: "a 404 in the older envelope is rejected", status: 404,
			body:      `{"error": "not_found", "error_description": "Project(MyProject) was not found or user does not have privilege to access it!"}`,
			wantClass: ClassRejected, wantCode: "not_found",
			wantMsg: "Project(MyProject) was not found or user does not have privilege to access it!", wantRequests: 1},
		{name: "a 404 in the newer envelope is rejected", status: 404,
			body:      `{"status": "FAILURE", "resultMessage": "not found"}`,
			wantClass: ClassRejected, wantCode: "FAILURE", wantMsg: "not found", wantRequests: 1},
		{name: "a 500 in the newer envelope is transient and retried", status: 500,
			body:      `{"status": "FAILURE", "resultMessage": "Database is not reachable"}`,
			wantClass: ClassTransient, wantCode: "FAILURE", wantMsg: "Database is not reachable", wantRequests: 4},
		{name: "a 500 in the older envelope is transient and retried", status: 500,
			body:      `{"error": "server_error", "error_description": "internal"}`,
			wantClass: ClassTransient, wantCode: "server_error", wantMsg: "internal", wantRequests: 4},
		{name: "an HTML 502 page from a proxy is transient, shown short without tags", status: 502,
			body: htmlPage, wantClass: ClassTransient,
			wantMsg: "502 Bad Gateway 502 Bad Gateway nginx", wantPrefix: true, wantRequests: 4},
		{name: "an empty 503 is transient", status: 503, body: "",
			wantClass: ClassTransient, wantMsg: "", wantRequests: 4},
		{name: "a 504 in plain text is transient", status: 504, body: "upstream timed out\n",
			wantClass: ClassTransient, wantMsg: "upstream timed out", wantRequests: 4},
		{name: "a 501 is rejected", status: 501, body: "",
			wantClass: ClassRejected, wantRequests: 1},
		{name: "a 429 is transient", status: 429, body: "slow down",
			wantClass: ClassTransient, wantMsg: "slow down", wantRequests: 4},
		{name: "a 409 in plain text is rejected", status: 409, body: "conflict",
			wantClass: ClassRejected, wantMsg: "conflict", wantRequests: 1},
		{name: "wrong-typed JSON is shown as an excerpt", status: 400, body: `{"error": 5, "status": []}`,
			wantClass: ClassRejected, wantMsg: `{"error": 5, "status": []}`, wantRequests: 1},
		{name: "truncated JSON is shown as an excerpt", status: 400, body: `{"error": "bad_req`,
			wantClass: ClassRejected, wantMsg: `{"error": "bad_req`, wantRequests: 1},
		{name: "a body over the limit is shown as a short excerpt", status: 400,
			body:      `{"error_description": "` + strings.Repeat("y", 3000) + `"}`,
			wantClass: ClassRejected, wantMsg: "answer over 1000 bytes: ", wantPrefix: true, wantRequests: 1},
		{name: "an echoed password in error_description is redacted", status: 400,
			body:      `{"error": "bad_request", "error_description": "password Pa\"ss\\w:o@r/d%#x &é✓<>+=?; is weak"}`,
			wantClass: ClassRejected, wantCode: "bad_request",
			wantMsg: "password [REDACTED] is weak", wantRequests: 1},
		{name: "an echoed password in resultMessage is redacted", status: 500,
			body:      `{"status": "FAILURE", "resultMessage": "cannot save Pa\"ss\\w:o@r/d%#x &é✓<>+=?;"}`,
			wantClass: ClassTransient, wantCode: "FAILURE",
			wantMsg: "cannot save [REDACTED]", wantRequests: 4},
		{name: "an echoed request body in an HTML page is redacted", status: 502,
			body:      `<html><body>bad request {"password":"Pa\"ss\\w:o@r/d%#x &é✓<>+=?;"}</body></html>`,
			wantClass: ClassTransient, wantMsg: `bad request {"password":"[REDACTED]"}`, wantRequests: 4},
		{name: "an echoed token is redacted", status: 401,
			body:      `{"status": "FAILURE", "resultMessage": "Token tok-3xY9.Secret_Value~42 is not valid!"}`,
			wantClass: ClassToken, wantCode: "FAILURE",
			wantMsg: "Token [REDACTED] is not valid!", wantRequests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			opts.MaxBodyBytes = 1000
			hs := newHarness(t, opts, respond(tt.status, tt.body))
			dep, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
			if dep != nil {
				t.Errorf("deployment %+v beside a %d", dep, tt.status)
			}
			e := asError(t, err)
			if e.Class != tt.wantClass || e.StatusCode != tt.status {
				t.Errorf("class %v status %d, want %v %d", e.Class, e.StatusCode, tt.wantClass, tt.status)
			}
			if e.Code != tt.wantCode {
				t.Errorf("code %q, want %q", e.Code, tt.wantCode)
			}
			if tt.wantPrefix {
				if !strings.HasPrefix(e.Message, tt.wantMsg) {
					t.Errorf("message %q does not start with %q", e.Message, tt.wantMsg)
				}
			} else if e.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", e.Message, tt.wantMsg)
			}
			if len(e.Message) > maxMessageBytes {
				t.Errorf("message is %d bytes long", len(e.Message))
			}
			if strings.ContainsAny(e.Message, "\r\n\t<>") && !strings.Contains(tt.body, "{") {
				t.Errorf("message %q keeps control characters or tags", e.Message)
			}
			if n := hs.requests.Load(); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if e.Attempts != int(tt.wantRequests) {
				t.Errorf("Attempts %d, want %d", e.Attempts, tt.wantRequests)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestNonJSONExcerptsAreShortAndClean(t *testing.T) {
	body := "line one\r\n\x00\x1b[31mred\x1b[0m\t" + strings.Repeat("é", 300)
	hs := newHarness(t, fastOptions(), respond(http.StatusBadRequest, body))
	_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	e := asError(t, err)
	if len(e.Message) > maxExcerptBytes {
		t.Errorf("excerpt is %d bytes, want at most %d", len(e.Message), maxExcerptBytes)
	}
	for _, r := range e.Message {
		if r < ' ' || r == 0x7F {
			t.Fatalf("excerpt %q keeps control character %U", e.Message, r)
		}
	}
	if !strings.HasPrefix(e.Message, "line one [31mred [0m é") || !strings.HasSuffix(e.Message, "é...") {
		t.Errorf("excerpt %q", e.Message)
	}
}

func ptr[T any](v T) *T { return &v }

func show(b *bool) any {
	if b == nil {
		return "nil"
	}
	return *b
}
