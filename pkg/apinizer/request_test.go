package apinizer

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

const deployedBody = `{"status":"SUCCESS","deploymentResult":{"success":true,` +
	`"environmentResults":[{"environmentName":"prod","success":true}]}}`

func TestChangePasswordEncodesEveryPathSegment(t *testing.T) {
	tests := []struct {
		name        string
		project     string
		username    string
		wantRawPath string
		wantPath    string
	}{
		{
			name:        "plain names are sent as they are, with the trailing slash",
			project:     "MyProject",
			username:    "api-user",
			wantRawPath: "/apiops/projects/MyProject/credentials/api-user/",
			wantPath:    "/apiops/projects/MyProject/credentials/api-user/",
		},
		{
			name:        "a space, a slash and a question mark are escaped",
			project:     "my proj",
			username:    "a/b?c",
			wantRawPath: "/apiops/projects/my%20proj/credentials/a%2Fb%3Fc/",
			wantPath:    "/apiops/projects/my proj/credentials/a/b?c/",
		},
		{
			name:        "hash, percent, semicolon and the sub-delimiters are escaped",
			project:     "p#1%;x",
			username:    "u&=+@,$!",
			wantRawPath: "/apiops/projects/p%231%25%3Bx/credentials/u%26%3D%2B%40%2C%24%21/",
			wantPath:    "/apiops/projects/p#1%;x/credentials/u&=+@,$!/",
		},
		{
			name:        "an already escaped looking name is escaped again",
			project:     "%2F",
			username:    "a%20b",
			wantRawPath: "/apiops/projects/%252F/credentials/a%2520b/",
			wantPath:    "/apiops/projects/%2F/credentials/a%20b/",
		},
		{
			name:        "unreserved characters stay, non-ASCII letters are escaped as UTF-8",
			project:     "proje_ü",
			username:    "user.name~-",
			wantRawPath: "/apiops/projects/proje_%C3%BC/credentials/user.name~-/",
			wantPath:    "/apiops/projects/proje_ü/credentials/user.name~-/",
		},
		{
			name:        "three dots are a name, not a path step",
			project:     "p",
			username:    "...",
			wantRawPath: "/apiops/projects/p/credentials/.../",
			wantPath:    "/apiops/projects/p/credentials/.../",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotURI, gotPath string
			hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
				gotURI, gotPath = r.RequestURI, r.URL.Path
				respond(http.StatusOK, deployedBody)(w, r)
			})
			_, err := hs.client.ChangePassword(t.Context(), tt.project, tt.username, sensitive.New("pw"))
			if err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
			if gotURI != tt.wantRawPath {
				t.Errorf("server saw request URI %q, want %q", gotURI, tt.wantRawPath)
			}
			if gotPath != tt.wantPath {
				t.Errorf("server decoded path %q, want %q", gotPath, tt.wantPath)
			}
		})
	}
}

func TestChangePasswordKeepsTheBaseURLPathPrefix(t *testing.T) {
	tests := []struct {
		name   string
		suffix string
	}{
		{name: "a prefix without a trailing slash is kept", suffix: "/apinizer"},
		{name: "a prefix with a trailing slash is kept once", suffix: "/apinizer/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotURI string
			hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
				gotURI = r.RequestURI
				respond(http.StatusOK, deployedBody)(w, r)
			})
			c, err := New(hs.srv.URL+tt.suffix, StaticToken(sensitive.New(testToken)), fastOptions())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if _, err := c.ChangePassword(t.Context(), "p", "u", sensitive.New("pw")); err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
			if want := "/apinizer/apiops/projects/p/credentials/u/"; gotURI != want {
				t.Errorf("server saw %q, want %q", gotURI, want)
			}
		})
	}
}

func TestChangePasswordSendsTheDocumentedRequest(t *testing.T) {
	var (
		method  string
		header  http.Header
		rawBody []byte
	)
	hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
		method, header = r.Method, r.Header.Clone()
		rawBody, _ = io.ReadAll(r.Body)
		respond(http.StatusOK, deployedBody)(w, r)
	})

	_, err := hs.client.ChangePassword(t.Context(), "MyProject", "api-user", sensitive.New(testPassword))
	if err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}

	if method != http.MethodPatch {
		t.Errorf("method %s, want PATCH", method)
	}
	wantHeaders := map[string]string{
		"Authorization": "Bearer " + testToken,
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	}
	for k, want := range wantHeaders {
		if got := header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	wantBody := `{"password":"Pa\"ss\\w:o@r/d%#x &é✓<>+=?;"}`
	if string(rawBody) != wantBody {
		t.Errorf("body %s, want %s", rawBody, wantBody)
	}
	var decoded map[string]string
	if err := json.Unmarshal(rawBody, &decoded); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if len(decoded) != 1 || decoded["password"] != testPassword {
		t.Errorf("decoded body %q, want only the password %q", decoded, testPassword)
	}
}

func TestChangePasswordSendsPasswordsExactly(t *testing.T) {
	passwords := map[string]string{
		"quotes and backslashes":        `"\"\\`,
		"URL and Basic auth delimiters": "a:b@c/d%e#f?g&h=i+j;k",
		"spaces":                        " lead and trail ",
		"non-ASCII letters and emoji":   "şifreΩ密码🔑",
		"HTML characters":               "<script>&amp;</script>",
		"control characters":            "tab\tnew\nline\x00nul",
		"line and paragraph separators": "a\u2028b\u2029c",
	}
	for name, password := range passwords {
		t.Run(name, func(t *testing.T) {
			var got map[string]string
			hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewDecoder(r.Body).Decode(&got)
				respond(http.StatusOK, deployedBody)(w, r)
			})
			if _, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(password)); err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
			if got["password"] != password {
				t.Errorf("server got %q, want %q", got["password"], password)
			}
		})
	}
}

func TestChangePasswordRefusesBadArgumentsBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name     string
		project  string
		username string
		password string
		wantText string
	}{
		{name: "an empty project name is refused", project: "", username: "u", password: "pw",
			wantText: "project name is empty"},
		{name: "an empty username is refused", project: "p", username: "", password: "pw",
			wantText: "username is empty"},
		{name: "an empty password is refused", project: "p", username: "u", password: "",
			wantText: "password is empty"},
		{name: "a dot as username is refused", project: "p", username: ".", password: "pw",
			wantText: `username must not be "." or ".."`},
		{name: "two dots as project name are refused", project: "..", username: "u", password: "pw",
			wantText: `project name must not be "." or ".."`},
		{name: "a password that is not UTF-8 is refused", project: "p", username: "u",
			password: "pw\xff\xfe", wantText: "password is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, fastOptions(), respond(http.StatusOK, deployedBody))
			dep, err := hs.client.ChangePassword(t.Context(), tt.project, tt.username, sensitive.New(tt.password))
			e := asError(t, err)
			if e.Class != ClassRejected {
				t.Errorf("class %v, want rejected", e.Class)
			}
			if dep != nil {
				t.Errorf("deployment %+v, want nil", dep)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if n := hs.requests.Load(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}

func TestCheckTokenCallsTheHelloEndpoint(t *testing.T) {
	var method, uri, auth, accept string
	hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
		method, uri = r.Method, r.RequestURI
		auth, accept = r.Header.Get("Authorization"), r.Header.Get("Accept")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "Hello rotator")
	})
	if err := hs.client.CheckToken(t.Context()); err != nil {
		t.Fatalf("CheckToken: %v", err)
	}
	if method != http.MethodGet || uri != "/apiops/test/hello/rotator/" {
		t.Errorf("request %s %s, want GET /apiops/test/hello/rotator/", method, uri)
	}
	if auth != "Bearer "+testToken {
		t.Errorf("Authorization %q, want the bearer token", auth)
	}
	if !strings.Contains(accept, "text/plain") {
		t.Errorf("Accept %q does not take text/plain", accept)
	}
}

func TestCheckTokenReportsARejectedToken(t *testing.T) {
	hs := newHarness(t, fastOptions(), respond(http.StatusUnauthorized,
		`{"status":"FAILURE","resultMessage":"Token is not valid!"}`))
	err := hs.client.CheckToken(t.Context())
	e := asError(t, err)
	if e.Class != ClassToken || e.StatusCode != http.StatusUnauthorized {
		t.Errorf("got class %v status %d, want token 401", e.Class, e.StatusCode)
	}
	if e.Message != "Token is not valid!" {
		t.Errorf("message %q", e.Message)
	}
	assertNoSecret(t, err)
}

func TestListCredentialsReadsUsernames(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      []string
		wantClass Class
	}{
		{
			name:   "the newer envelope lists usernames and skips entries without one",
			status: http.StatusOK,
			body: `{"status":"SUCCESS","resultList":[{"username":"a","password":null},` +
				`{"username":"b@x.com"},{"fullName":"no name"}],"resultCount":3}`,
			want: []string{"a", "b@x.com"},
		},
		{
			name:   "an empty list is no error",
			status: http.StatusOK,
			body:   `{"status":"SUCCESS","resultList":[]}`,
			want:   []string{},
		},
		{
			name:      "a failure envelope is rejected",
			status:    http.StatusOK,
			body:      `{"status":"FAILURE","resultMessage":"Project (p) is not found"}`,
			wantClass: ClassRejected,
		},
		{
			name:      "a wrong-typed list is unreadable",
			status:    http.StatusOK,
			body:      `{"status":"SUCCESS","resultList":{"username":"a"}}`,
			wantClass: ClassRejected,
		},
		{
			name:      "an HTML page is unreadable",
			status:    http.StatusOK,
			body:      `<html><body>login</body></html>`,
			wantClass: ClassRejected,
		},
		{
			name:      "a 400 is rejected",
			status:    http.StatusBadRequest,
			body:      `{"status":"FAILURE","resultMessage":"User does not have required permission"}`,
			wantClass: ClassRejected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var uri string
			hs := newHarness(t, fastOptions(), func(w http.ResponseWriter, r *http.Request) {
				uri = r.RequestURI
				respond(tt.status, tt.body)(w, r)
			})
			got, err := hs.client.ListCredentials(t.Context(), "my proj")
			if uri != "/apiops/projects/my%20proj/credentials/" {
				t.Errorf("request URI %q", uri)
			}
			if tt.wantClass != ClassUnknown {
				if c := ClassOf(err); c != tt.wantClass {
					t.Fatalf("class %v (%v), want %v", c, err, tt.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatalf("ListCredentials: %v", err)
			}
			if !slices.Equal(got, tt.want) || got == nil {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEscapeSegment(t *testing.T) {
	tests := map[string]string{
		"":            "",
		"abcXYZ09":    "abcXYZ09",
		"-._~":        "-._~",
		" ":           "%20",
		"/?#[]@":      "%2F%3F%23%5B%5D%40",
		"!$&'()*+,;=": "%21%24%26%27%28%29%2A%2B%2C%3B%3D",
		"%":           "%25",
		"é":           "%C3%A9",
		"\x00\n":      "%00%0A",
	}
	for in, want := range tests {
		if got := escapeSegment(in); got != want {
			t.Errorf("escapeSegment(%q) = %q, want %q", in, got, want)
		}
	}
}
