package bulk

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseJob(t *testing.T) {
	cases := []struct {
		name, body string
		want       Job
		err        string
	}{
		{"name only", `{"secretId":"apinizer/a"}`, Job{SecretID: "apinizer/a"}, ""},
		{"with job id", `{"secretId":"arn:aws:secretsmanager:us-east-1:1:secret:x","jobId":"j1"}`,
			Job{SecretID: "arn:aws:secretsmanager:us-east-1:1:secret:x", JobID: "j1"}, ""},
		{"unknown keys ignored", `{"secretId":"a","extra":[1,2]}`, Job{SecretID: "a"}, ""},
		{"null job id", `{"secretId":"a","jobId":null}`, Job{SecretID: "a"}, ""},
		{"not JSON", `{bad`, Job{}, "not a JSON object"},
		{"array", `[{"secretId":"a"}]`, Job{}, "not a JSON object"},
		{"null", `null`, Job{}, "not a JSON object"},
		{"two objects", `{"secretId":"a"}{"secretId":"b"}`, Job{}, "not a JSON object"},
		{"missing", `{"secretID":"a"}`, Job{}, `"secretId" is missing`},
		{"number", `{"secretId":7}`, Job{}, "must be a string"},
		{"empty", `{"secretId":""}`, Job{}, "is empty"},
		{"spaces", `{"secretId":"a b"}`, Job{}, "printable ASCII"},
		{"non-ASCII", `{"secretId":"sécret"}`, Job{}, "printable ASCII"},
		{"huge", `{"secretId":"` + strings.Repeat("a", 3000) + `"}`, Job{}, "longer than"},
		{"job id object", `{"secretId":"a","jobId":{}}`, Job{}, `"jobId" must be a string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJob(tc.body)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidJob) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("want %q, got %v", tc.err, err)
			}
		})
	}
}

func TestTokenIsStablePerJobAndValidForSecretsManager(t *testing.T) {
	a := Token(Job{SecretID: "s"}, "m1")
	if a != Token(Job{SecretID: "s"}, "m1") {
		t.Error("a redelivered message must get the same token")
	}
	if a == Token(Job{SecretID: "s"}, "m2") || a == Token(Job{SecretID: "t"}, "m1") {
		t.Error("different jobs must get different tokens")
	}
	if Token(Job{SecretID: "s", JobID: "j"}, "m1") != Token(Job{SecretID: "s", JobID: "j"}, "m2") {
		t.Error("one job id enqueued twice must get one token")
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("token %q is not shaped like a version id", a)
	}
}

func TestRedactJobBodyKeepsOnlyTheJobKeys(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"secretId":"s","password":"Leaky-Password-9"}`, `{"password":"[REDACTED]","secretId":"s"}`},
		{`{"secretId":"s","jobId":"j"}`, `{"secretId":"s","jobId":"j"}`},
		{`{bad`, `[REDACTED: not a JSON object, 4 bytes]`},
		{`{"secretId":{"password":"P"}}`, `{"secretId":"[REDACTED]"}`},
	}
	for _, tc := range cases {
		if got := redactJobBody(tc.body); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.body, got, tc.want)
		}
	}
}

func TestSameSecret(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/token-AbCdEf"
	cases := []struct {
		a, b string
		want bool
	}{
		{"apinizer/token", "apinizer/token", true},
		{arn, "apinizer/token", true},
		{"apinizer/token", arn, true},
		{arn, arn, true},
		{"apinizer/tokens", arn, false},
		{"apinizer/orders", "apinizer/token", false},
	}
	for _, tc := range cases {
		if got := SameSecret(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSecret(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
