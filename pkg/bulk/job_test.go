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

func TestTokenCountsTheSecretByName(t *testing.T) {
	const (
		name = "apinizer/o/a"
		arn  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/o/a-AbCdEf"
	)
	a := Token(Job{SecretID: name, JobID: "j"}, "m1")
	// a job given by name keeps the token it had before ARNs counted by
	// name, so one queued then resumes its rotation as it would have
	if a != "1371b90f-140e-eadd-c348-cff1567b68c7" {
		t.Errorf("token of a job given by name changed: %s", a)
	}
	if b := Token(Job{SecretID: arn, JobID: "j"}, "m2"); b != a {
		t.Errorf("name and ARN give two tokens, %s and %s: two rotations of one job", a, b)
	}
	for _, other := range []Job{
		{SecretID: "apinizer/o/b", JobID: "j"},
		{SecretID: "arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/o/b-AbCdEf", JobID: "j"},
		{SecretID: name, JobID: "k"},
		{SecretID: arn, JobID: "k"},
		{SecretID: name},
	} {
		if Token(other, "m1") == a {
			t.Errorf("%+v gets the token of another job", other)
		}
	}
}

func TestSecretName(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	cases := []struct{ id, want string }{
		{"apinizer/o/a", "apinizer/o/a"},
		{"apinizer/o/a-AbCdEf", "apinizer/o/a-AbCdEf"}, // a name is never cut
		{arn + "apinizer/o/a-AbCdEf", "apinizer/o/a"},
		{arn + "apinizer/o/a-012345", "apinizer/o/a"},
		{arn + "apinizer/o/my-client-AbCdEf", "apinizer/o/my-client"},
		// partial ARNs: no suffix to drop
		{arn + "apinizer/o/my-app", "apinizer/o/my-app"},
		{arn + "apinizer/team-a/orders", "apinizer/team-a/orders"},
		{arn + "apinizer/o-my/app", "apinizer/o-my/app"},
		{arn + "apinizer/o/a-b.c@de", "apinizer/o/a-b.c@de"},
		{arn + "apinizer/o/a-AbCdE", "apinizer/o/a-AbCdE"},
		{arn + "apinizer/o/a-AbCdEfG", "apinizer/o/a-AbCdEfG"},
		{arn + "apinizer/o/a-AbC_Ef", "apinizer/o/a-AbC_Ef"},
		{arn + "apinizer/o/a_AbCdEf", "apinizer/o/a_AbCdEf"},
		{arn + "-AbCdEf", "-AbCdEf"}, // nothing would be left
		// the ambiguity SecretName documents: these partial ARNs of
		// "apinizer/o/a-abcdef" and "apinizer/o/my-client" read as full
		// ARNs of "apinizer/o/a" and "apinizer/o/my"
		{arn + "apinizer/o/a-abcdef", "apinizer/o/a"},
		{arn + "apinizer/o/my-client", "apinizer/o/my"},
		{"arn:aws:iam::123456789012:role/x-AbCdEf", "arn:aws:iam::123456789012:role/x-AbCdEf"},
	}
	for _, tc := range cases {
		if got := SecretName(tc.id); got != tc.want {
			t.Errorf("SecretName(%q) = %q, want %q", tc.id, got, tc.want)
		}
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
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/my-key", "apinizer/my", false},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:apinizer/my-key", "apinizer/my-key", true},
	}
	for _, tc := range cases {
		if got := SameSecret(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSecret(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
