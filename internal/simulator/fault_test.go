package simulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestFaultsAnswerBeforeNormalHandling(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		fault       Fault
		status      int
		contentType string
		body        string
	}{
		{
			name:        "429 in the current envelope",
			fault:       Fault{Status: 429, RetryAfter: "7"},
			status:      429,
			contentType: contentTypeJSON,
			body:        `{"status":"FAILURE","resultMessage":"Too Many Requests"}`,
		},
		{
			name:        "500 in the seed envelope",
			cfg:         Config{Envelope: EnvelopeSeed},
			fault:       Fault{Status: 500},
			status:      500,
			contentType: contentTypeJSON,
			body:        `{"error":"server_error","error_description":"Internal Server Error"}`,
		},
		{
			name:        "503 in the seed envelope",
			cfg:         Config{Envelope: EnvelopeSeed},
			fault:       Fault{Status: 503, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"},
			status:      503,
			contentType: contentTypeJSON,
			body: `{"error":"temporarily_unavailable",` +
				`"error_description":"Service Unavailable"}`,
		},
		{
			name:        "502 from the proxy is HTML",
			fault:       Fault{Status: 502},
			status:      502,
			contentType: "text/html",
			body:        proxyPage(502),
		},
		{
			name:        "504 from the proxy is HTML",
			fault:       Fault{Status: 504},
			status:      504,
			contentType: "text/html",
			body:        proxyPage(504),
		},
		{
			name:        "a raw JSON body",
			fault:       Fault{Status: 500, Body: `{"unexpected":true}`},
			status:      500,
			contentType: contentTypeJSON,
			body:        `{"unexpected":true}`,
		},
		{
			name:        "a raw text body on 200",
			fault:       Fault{Status: 200, Body: "garbage"},
			status:      200,
			contentType: "text/plain;charset=UTF-8",
			body:        "garbage",
		},
		{
			name:   "an empty body",
			fault:  Fault{Status: 503, EmptyBody: true, Body: "ignored"},
			status: 503,
			body:   "",
		},
		{
			name:        "a zero status is 500",
			fault:       Fault{},
			status:      500,
			contentType: contentTypeJSON,
			body:        `{"status":"FAILURE","resultMessage":"Internal Server Error"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, tt.cfg)
			run.AddFaults(tt.fault)

			a := patch(t, run.URL, "app", "svc", "new")
			wantBody(t, a, tt.status, tt.body)
			if ct := a.header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.contentType)
			}
			if got := a.header.Get("Retry-After"); got != tt.fault.RetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.fault.RetryAfter)
			}
			if pw, _ := run.Password("app", "svc"); pw != "old-password" {
				t.Errorf("a fault without Apply stored the password %q", pw)
			}

			// the fault is used up: the next change goes through
			next := patch(t, run.URL, "app", "svc", "new")
			wantJSON(t, next, http.StatusOK)
		})
	}
}

func TestFaultCountsAndOrder(t *testing.T) {
	run := start(t, Config{})
	run.AddFaults(Fault{Status: 503, Count: 2}, Fault{Status: 429})

	var got []int
	for range 5 {
		got = append(got, patch(t, run.URL, "app", "svc", "new").status)
	}
	want := []int{503, 503, 429, 200, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses = %v, want %v", got, want)
		}
	}
	if n := run.PasswordChanges("app", "svc"); n != 2 {
		t.Errorf("PasswordChanges = %d, want 2", n)
	}
}

func TestFaultsMatchProjectAndUsername(t *testing.T) {
	run := start(t, Config{})
	run.SetCredential("app", "other", "pw")
	run.SetCredential("app2", "svc", "pw")
	run.AddFaults(Fault{Status: 500, Project: "app", Username: "svc"})

	if a := patch(t, run.URL, "app", "other", "new"); a.status != 200 {
		t.Errorf("another username: %d, want 200", a.status)
	}
	if a := patch(t, run.URL, "app2", "svc", "new"); a.status != 200 {
		t.Errorf("another project: %d, want 200", a.status)
	}
	if a := patch(t, run.URL, "app", "svc", "new"); a.status != 500 {
		t.Errorf("the matching credential: %d, want 500", a.status)
	}
}

func TestFaultWithApplyStoresThePassword(t *testing.T) {
	run := start(t, Config{})
	run.AddFaults(Fault{Status: 504, Apply: true, Count: 2})

	a := patch(t, run.URL, "app", "svc", "applied")
	if a.status != 504 {
		t.Fatalf("status = %d, want 504", a.status)
	}
	if pw, _ := run.Password("app", "svc"); pw != "applied" {
		t.Errorf("password = %q, want it stored before the fault", pw)
	}
	if n := run.PasswordChanges("app", "svc"); n != 1 {
		t.Errorf("PasswordChanges = %d, want 1", n)
	}

	// an invalid request is not stored, and still gets the fault
	bad := send(t, run.URL, call{method: http.MethodPatch,
		path: "/apiops/projects/app/credentials/svc/", token: "wrong",
		contentType: "application/json", body: `{"password":"stolen"}`})
	if bad.status != 504 {
		t.Errorf("status = %d, want 504", bad.status)
	}
	if pw, _ := run.Password("app", "svc"); pw != "applied" {
		t.Errorf("a fault with Apply stored %q from a request with a wrong token", pw)
	}
}

func TestFaultsApplyOnlyToPasswordChanges(t *testing.T) {
	run := start(t, Config{})
	run.AddFaults(Fault{Status: 500})

	a := send(t, run.URL, call{method: http.MethodGet, path: "/apiops/test/healthcheck"})
	wantBody(t, a, 200, "OK")
	if b := patch(t, run.URL, "app", "svc", "x"); !strings.Contains(b.body, "Internal Server Error") {
		t.Errorf("the fault should still be pending; got %d %s", b.status, b.body)
	}
}
