package simulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestCredentialList(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		project string
		status  int
		body    string
	}{
		{
			name:    "one project's credentials, sorted, passwords null",
			project: "app",
			status:  http.StatusOK,
			body: `{"status":"SUCCESS","resultList":[` +
				`{"username":"a/b","password":null,"enabled":true,"roleNameList":[],"ipList":[]},` +
				`{"username":"svc","password":null,"enabled":true,"roleNameList":[],"ipList":[]}` +
				`],"resultCount":2}`,
		},
		{
			name:    "the seed envelope lists in the same shape",
			cfg:     Config{Envelope: EnvelopeSeed},
			project: "other",
			status:  http.StatusOK,
			body: `{"status":"SUCCESS","resultList":[` +
				`{"username":"x","password":null,"enabled":true,"roleNameList":[],"ipList":[]}` +
				`],"resultCount":1}`,
		},
		{
			name:    "an empty project",
			project: "empty",
			status:  http.StatusOK,
			body:    `{"status":"SUCCESS","resultList":[],"resultCount":0}`,
		},
		{
			name:    "admin lists every project",
			project: "admin",
			status:  http.StatusOK,
			body: `{"status":"SUCCESS","resultList":[` +
				`{"username":"a/b","password":null,"enabled":true,"roleNameList":[],"ipList":[]},` +
				`{"username":"svc","password":null,"enabled":true,"roleNameList":[],"ipList":[]},` +
				`{"username":"x","password":null,"enabled":true,"roleNameList":[],"ipList":[]}` +
				`],"resultCount":3}`,
		},
		{
			name:    "an unknown project",
			project: "nope",
			status:  http.StatusBadRequest,
			body: `{"status":"FAILURE","resultMessage":"Project (nope) is not found ` +
				`or user does not have privilege to access it!"}`,
		},
		{
			name:    "an unknown project in the seed envelope",
			cfg:     Config{Envelope: EnvelopeSeed},
			project: "nope",
			status:  http.StatusNotFound,
			body: `{"error":"not_found","error_description":"Project(nope) was not found ` +
				`or user does not have privilege to access it!"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, tt.cfg)
			run.SetCredential("app", "a/b", "secret-1")
			run.SetCredential("other", "x", "secret-2")
			run.AddProject("empty")

			a := send(t, run.URL, call{method: http.MethodGet,
				path: "/apiops/projects/" + tt.project + "/credentials/", token: testToken})
			got := wantJSON(t, a, tt.status)
			wantBody(t, a, tt.status, tt.body)
			if tt.status == http.StatusOK {
				wantKeys(t, "list", got, "status", "resultList", "resultCount")
			}
			if strings.Contains(a.body, "secret-") || strings.Contains(a.body, "old-password") {
				t.Errorf("the list shows a password: %s", a.body)
			}
		})
	}
}

func TestCredentialListNeedsAToken(t *testing.T) {
	run := start(t, Config{})

	a := send(t, run.URL, call{method: http.MethodGet, path: "/apiops/projects/app/credentials/"})
	wantBody(t, a, http.StatusUnauthorized, `{"status":"FAILURE","resultMessage":"`+msgEmptyKey+`"}`)
}
