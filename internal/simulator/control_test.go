package simulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestControlConfig(t *testing.T) {
	run := start(t, Config{})

	a := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/config"})
	got := wantJSON(t, a, http.StatusOK)
	wantKeys(t, "config", got, "envelope", "shape", "environments", "podsPerEnv",
		"deployFailures", "omitDeploymentResult", "latencyMs", "jitterMs", "tokens")
	if got["envelope"] != "current" || got["shape"] != "environmentResults" ||
		got["podsPerEnv"] != 2.0 {
		t.Errorf("defaults = %s", a.body)
	}

	put := send(t, run.URL, call{method: http.MethodPut, path: "/_sim/config",
		body: `{"envelope":"seed","shape":"detailList","environments":["prod"],` +
			`"latencyMs":5,"tokens":["t2"],` +
			`"deployFailures":[{"environment":"prod","pod":"prod-worker-0"}]}`})
	wantJSON(t, put, http.StatusOK)
	cfg := run.Config()
	want := Config{Envelope: EnvelopeSeed, Shape: ShapePods, Environments: []string{"prod"},
		PodsPerEnv: 2, LatencyMS: 5, Tokens: []string{"t2"},
		DeployFailures: []DeployFailure{{Environment: "prod", Pod: "prod-worker-0"}}}
	if !equalConfig(cfg, want) {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}

	// the new token is in force, the old one no longer
	if a := patch(t, run.URL, "app", "svc", "x"); a.status != http.StatusUnauthorized {
		t.Errorf("old token: %d, want 401", a.status)
	}
}

// equalConfig compares two configurations field by field.
func equalConfig(a, b Config) bool {
	return a.Envelope == b.Envelope && a.Shape == b.Shape &&
		slices.Equal(a.Environments, b.Environments) && a.PodsPerEnv == b.PodsPerEnv &&
		slices.Equal(a.DeployFailures, b.DeployFailures) &&
		a.OmitDeploymentResult == b.OmitDeploymentResult &&
		a.LatencyMS == b.LatencyMS && a.JitterMS == b.JitterMS &&
		a.GatewayLagMS == b.GatewayLagMS &&
		slices.Equal(a.Tokens, b.Tokens)
}

func TestControlRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		call call
		want int
	}{
		{"an unknown envelope", call{method: http.MethodPut, path: "/_sim/config",
			body: `{"envelope":"v3"}`}, http.StatusBadRequest},
		{"an unknown config field", call{method: http.MethodPut, path: "/_sim/config",
			body: `{"latency":5}`}, http.StatusBadRequest},
		{"a negative latency", call{method: http.MethodPut, path: "/_sim/config",
			body: `{"latencyMs":-1}`}, http.StatusBadRequest},
		{"an empty password", call{method: http.MethodPut, path: "/_sim/credentials/p/u/",
			body: `{"password":""}`}, http.StatusBadRequest},
		{"faults that are not an array", call{method: http.MethodPost, path: "/_sim/faults",
			body: `{"status":500}`}, http.StatusBadRequest},
		{"a fault status that is no status", call{method: http.MethodPost,
			path: "/_sim/faults", body: `[{"status":42}]`}, http.StatusBadRequest},
		{"an unknown endpoint", call{method: http.MethodGet, path: "/_sim/nothing"},
			http.StatusNotFound},
		{"a wrong method", call{method: http.MethodDelete, path: "/_sim/config"},
			http.StatusMethodNotAllowed},
		{"reset by GET", call{method: http.MethodGet, path: "/_sim/reset"},
			http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, Config{})

			a := send(t, run.URL, tt.call)
			got := wantJSON(t, a, tt.want)
			wantKeys(t, "error", got, "error")
			if run.Config().Envelope != EnvelopeCurrent {
				t.Errorf("a refused call changed the config")
			}
		})
	}
}

func TestControlCredentialsFaultsRequestsAndReset(t *testing.T) {
	run := start(t, Config{})

	// set a credential with an encoded name, then change it through the API
	put := send(t, run.URL, call{method: http.MethodPut, path: "/_sim/credentials/p%20q/a%2Fb/",
		body: `{"password":"seeded"}`})
	wantBody(t, put, http.StatusNoContent, "")
	if pw, _ := run.Password("p q", "a/b"); pw != "seeded" {
		t.Fatalf("password = %q, want seeded", pw)
	}
	patch(t, run.URL, "p%20q", "a%2Fb", "changed")
	get := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/credentials/p%20q/a%2Fb/"})
	wantBody(t, get, http.StatusOK, `{"password":"changed","changes":1}`)
	missing := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/credentials/p/x/"})
	wantJSON(t, missing, http.StatusNotFound)

	// queue faults, see them pending, then used up
	faults := send(t, run.URL, call{method: http.MethodPost, path: "/_sim/faults",
		body: `[{"status":429,"count":2,"retryAfter":"1","username":"svc"},{"status":502}]`})
	wantBody(t, faults, http.StatusNoContent, "")
	pending := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/faults"})
	var got []Fault
	_ = json.Unmarshal([]byte(pending.body), &got)
	want := []Fault{{Status: 429, Count: 2, RetryAfter: "1", Username: "svc"},
		{Status: 502, Count: 1}}
	if !slices.Equal(got, want) {
		t.Errorf("pending faults = %+v, want %+v", got, want)
	}
	if a := patch(t, run.URL, "app", "svc", "x"); a.status != 429 ||
		a.header.Get("Retry-After") != "1" {
		t.Errorf("first change: %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}

	// the request log leaves out control calls
	log := send(t, run.URL, call{method: http.MethodGet, path: "/_sim/requests"})
	var reqs []Request
	if err := json.Unmarshal([]byte(log.body), &reqs); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 || reqs[1].Status != 429 {
		t.Errorf("request log = %+v, want the two password changes", reqs)
	}
	if strings.Contains(log.body, "changed") || strings.Contains(log.body, testToken) {
		t.Errorf("request log shows a secret: %s", log.body)
	}
	var raw []map[string]any
	_ = json.Unmarshal([]byte(log.body), &raw)
	wantKeys(t, "logged request", raw[0], "time", "done", "method", "path", "rawPath", "project",
		"username", "status", "hasAuthorization", "tokenAccepted", "passwordLength")

	// reset forgets everything but the configuration
	reset := send(t, run.URL, call{method: http.MethodPost, path: "/_sim/reset"})
	wantBody(t, reset, http.StatusNoContent, "")
	if _, ok := run.Password("app", "svc"); ok {
		t.Error("a credential survived reset")
	}
	if n := len(run.Requests()); n != 0 {
		t.Errorf("%d requests survived reset", n)
	}
	if n := len(run.pendingFaults()); n != 0 {
		t.Errorf("%d faults survived reset", n)
	}
	if !slices.Equal(run.Config().Tokens, []string{testToken}) {
		t.Error("reset changed the configuration")
	}
}
