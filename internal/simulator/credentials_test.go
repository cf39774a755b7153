package simulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestPasswordChangeAnswersInEveryEnvelopeAndShape(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		topKeys   []string
		dplKeys   []string
		listKey   string
		entryKeys []string
		body      string
	}{
		{
			name:      "seed envelope reports environments",
			cfg:       Config{Envelope: EnvelopeSeed},
			topKeys:   []string{"success", "deploymentResult"},
			dplKeys:   []string{"success", "message", "environmentResults"},
			listKey:   "environmentResults",
			entryKeys: []string{"environmentName", "success", "message"},
			body: `{"success":true,"deploymentResult":{"success":true,` +
				`"message":"Deployment completed successfully","environmentResults":[` +
				`{"environmentName":"production","success":true,"message":"Deployed successfully"},` +
				`{"environmentName":"staging","success":true,"message":"Deployed successfully"}]}}`,
		},
		{
			name:      "current envelope reports environments by default",
			cfg:       Config{},
			topKeys:   []string{"status", "deploymentResult"},
			dplKeys:   []string{"success", "message", "environmentResults"},
			listKey:   "environmentResults",
			entryKeys: []string{"environmentName", "success", "message"},
			body: `{"status":"SUCCESS","deploymentResult":{"success":true,` +
				`"message":"Deployment completed successfully","environmentResults":[` +
				`{"environmentName":"production","success":true,"message":"Deployed successfully"},` +
				`{"environmentName":"staging","success":true,"message":"Deployed successfully"}]}}`,
		},
		{
			name:      "current envelope reports pods",
			cfg:       Config{Shape: ShapePods, Environments: []string{"prod"}},
			topKeys:   []string{"status", "deploymentResult"},
			dplKeys:   []string{"success", "responseTime", "detailList"},
			listKey:   "detailList",
			entryKeys: []string{"envName", "podName", "podIp", "success", "detail", "responseTime"},
			body: `{"status":"SUCCESS","deploymentResult":{"success":true,"responseTime":0,` +
				`"detailList":[{"envName":"prod","podName":"prod-worker-0","podIp":"10.0.1.10",` +
				`"success":true,"detail":"Deployed successfully","responseTime":0},` +
				`{"envName":"prod","podName":"prod-worker-1","podIp":"10.0.1.11",` +
				`"success":true,"detail":"Deployed successfully","responseTime":0}]}}`,
		},
		{
			name: "seed envelope reports pods when told to",
			cfg: Config{Envelope: EnvelopeSeed, Shape: ShapePods,
				Environments: []string{"prod"}, PodsPerEnv: 1},
			topKeys:   []string{"success", "deploymentResult"},
			dplKeys:   []string{"success", "responseTime", "detailList"},
			listKey:   "detailList",
			entryKeys: []string{"envName", "podName", "podIp", "success", "detail", "responseTime"},
			body: `{"success":true,"deploymentResult":{"success":true,"responseTime":0,` +
				`"detailList":[{"envName":"prod","podName":"prod-worker-0","podIp":"10.0.1.10",` +
				`"success":true,"detail":"Deployed successfully","responseTime":0}]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, tt.cfg)

			a := patch(t, run.URL, "app", "svc", "new-password")
			got := wantJSON(t, a, http.StatusOK)
			wantKeys(t, "answer", got, tt.topKeys...)
			dpl := got["deploymentResult"]
			wantKeys(t, "deploymentResult", dpl, tt.dplKeys...)
			entries, _ := dpl.(map[string]any)[tt.listKey].([]any)
			if len(entries) == 0 {
				t.Fatalf("no %s entries", tt.listKey)
			}
			for _, e := range entries {
				wantKeys(t, tt.listKey+" entry", e, tt.entryKeys...)
			}
			if a.body != tt.body {
				t.Errorf("body =\n%s\nwant\n%s", a.body, tt.body)
			}

			if pw, _ := run.Password("app", "svc"); pw != "new-password" {
				t.Errorf("stored password = %q, want the new one", pw)
			}
			if n := run.PasswordChanges("app", "svc"); n != 1 {
				t.Errorf("PasswordChanges = %d, want 1", n)
			}
		})
	}
}

func TestPasswordChangeRefusesBadRequests(t *testing.T) {
	const path = "/apiops/projects/app/credentials/svc/"
	tests := []struct {
		name   string
		cfg    Config
		call   call
		status int
		body   string
	}{
		{
			name:   "a wrong Content-Type is refused",
			call:   call{path: path, contentType: "text/plain", body: `{"password":"x"}`},
			status: http.StatusBadRequest,
			body:   `{"status":"FAILURE","resultMessage":"Content type must be application/json"}`,
		},
		{
			name:   "a missing Content-Type is refused",
			call:   call{path: path, body: `{"password":"x"}`},
			status: http.StatusBadRequest,
			body:   `{"status":"FAILURE","resultMessage":"Content type must be application/json"}`,
		},
		{
			name:   "a body that is not JSON is refused",
			call:   call{path: path, contentType: "application/json", body: `password=x`},
			status: http.StatusBadRequest,
			body:   `{"status":"FAILURE","resultMessage":"Malformed JSON request body"}`,
		},
		{
			name:   "an empty password is refused",
			call:   call{path: path, contentType: "application/json", body: `{"password":""}`},
			status: http.StatusBadRequest,
			body:   `{"status":"FAILURE","resultMessage":"Credential password can not be empty!"}`,
		},
		{
			name: "a missing password is refused in the seed envelope",
			cfg:  Config{Envelope: EnvelopeSeed},
			call: call{path: path, contentType: "application/json",
				body: `{"username":"svc"}`},
			status: http.StatusBadRequest,
			body: `{"error":"bad_request",` +
				`"error_description":"Credential password can not be empty!"}`,
		},
		{
			name: "an unknown project is 400 in the current envelope",
			call: call{path: "/apiops/projects/Nope/credentials/svc/",
				contentType: "application/json", body: `{"password":"x"}`},
			status: http.StatusBadRequest,
			body: `{"status":"FAILURE","resultMessage":"Project (Nope) is not found ` +
				`or user does not have privilege to access it!"}`,
		},
		{
			name: "an unknown project is 404 in the seed envelope",
			cfg:  Config{Envelope: EnvelopeSeed},
			call: call{path: "/apiops/projects/Nope/credentials/svc/",
				contentType: "application/json", body: `{"password":"x"}`},
			status: http.StatusNotFound,
			body: `{"error":"not_found","error_description":"Project(Nope) was not found ` +
				`or user does not have privilege to access it!"}`,
		},
		{
			name: "project names are case-sensitive",
			call: call{path: "/apiops/projects/App/credentials/svc/",
				contentType: "application/json", body: `{"password":"x"}`},
			status: http.StatusBadRequest,
			body: `{"status":"FAILURE","resultMessage":"Project (App) is not found ` +
				`or user does not have privilege to access it!"}`,
		},
		{
			name: "an unknown credential is refused",
			call: call{path: "/apiops/projects/app/credentials/nobody/",
				contentType: "application/json", body: `{"password":"x"}`},
			status: http.StatusBadRequest,
			body: `{"status":"FAILURE",` +
				`"resultMessage":"Credential (username: nobody) was not found!"}`,
		},
		{
			name: "an unknown credential is refused in the seed envelope",
			cfg:  Config{Envelope: EnvelopeSeed},
			call: call{path: "/apiops/projects/app/credentials/nobody/",
				contentType: "application/json", body: `{"password":"x"}`},
			status: http.StatusBadRequest,
			body: `{"error":"bad_request",` +
				`"error_description":"Credential (username: nobody) was not found!"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, tt.cfg)
			c := tt.call
			c.method, c.token = http.MethodPatch, testToken

			a := send(t, run.URL, c)
			wantJSON(t, a, tt.status)
			wantBody(t, a, tt.status, tt.body)
			if pw, _ := run.Password("app", "svc"); pw != "old-password" {
				t.Errorf("password changed to %q by a refused request", pw)
			}
		})
	}
}

func TestPasswordChangeAcceptsJSONWithCharsetAndIgnoresOtherFields(t *testing.T) {
	run := start(t, Config{})

	a := send(t, run.URL, call{method: http.MethodPatch,
		path: "/apiops/projects/app/credentials/svc/", token: testToken,
		contentType: "application/json; charset=utf-8",
		body:        `{"password":"p1","username":"other","enabled":false}`})
	wantJSON(t, a, http.StatusOK)
	if pw, _ := run.Password("app", "svc"); pw != "p1" {
		t.Errorf("password = %q, want p1", pw)
	}
}

func TestEncodedNamesAreUnescapedSegmentBySegment(t *testing.T) {
	tests := []struct {
		name              string
		escapedProject    string
		escapedUser       string
		project, username string
	}{
		{"an escaped slash stays in the username", "app", "a%2Fb", "app", "a/b"},
		{"a space", "my%20project", "svc%20user", "my project", "svc user"},
		{"an escaped percent", "app", "100%25", "app", "100%"},
		{"reserved characters", "p%3Fq", "u%40x%2By%26z%3D1%23", "p?q", "u@x+y&z=1#"},
		{"unicode", "%C3%BCr%C3%BCn", "kullan%C4%B1c%C4%B1", "ürün", "kullanıcı"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, Config{})
			run.SetCredential(tt.project, tt.username, "old")

			a := patch(t, run.URL, tt.escapedProject, tt.escapedUser, "new")
			wantJSON(t, a, http.StatusOK)
			if pw, _ := run.Password(tt.project, tt.username); pw != "new" {
				t.Errorf("password of %q/%q = %q, want new", tt.project, tt.username, pw)
			}
			reqs := run.Requests()
			last := reqs[len(reqs)-1]
			if last.Project != tt.project || last.Username != tt.username {
				t.Errorf("logged %q/%q, want %q/%q", last.Project, last.Username,
					tt.project, tt.username)
			}
			wantRaw := "/apiops/projects/" + tt.escapedProject + "/credentials/" +
				tt.escapedUser + "/"
			if last.RawPath != wantRaw {
				t.Errorf("RawPath = %q, want %q", last.RawPath, wantRaw)
			}
		})
	}
}

func TestUnknownPathsAre404WithAPlainBody(t *testing.T) {
	run := start(t, Config{})
	run.SetCredential("app", "a/b", "old")

	for _, path := range []string{
		"/apiops/projects/app/credentials/svc",  // no trailing slash
		"/apiops/projects/app/credentials/a/b/", // an unescaped slash splits the name
		"/apiops/projects/app/credentials//",    // empty username
		"/apiops/projects//credentials/svc/",    // empty project
		"/APIOPS/projects/app/credentials/svc/", // case-sensitive
		"/apiops/projects/app/credentials",
		"/apiops/test/healthcheck/",
		"/",
	} {
		t.Run(path, func(t *testing.T) {
			a := send(t, run.URL, call{method: http.MethodPatch, path: path,
				token: testToken, contentType: "application/json",
				body: `{"password":"new"}`})
			wantBody(t, a, http.StatusNotFound, "Not Found")
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
		})
	}
	if pw, _ := run.Password("app", "svc"); pw != "old-password" {
		t.Errorf("password changed to %q", pw)
	}
}

func TestOtherMethodsAre405(t *testing.T) {
	run := start(t, Config{})

	a := send(t, run.URL, call{method: http.MethodPut,
		path: "/apiops/projects/app/credentials/svc/", token: testToken})
	if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != http.MethodPatch {
		t.Errorf("answer = %d Allow %q, want 405 Allow PATCH", a.status, a.header.Get("Allow"))
	}
}
