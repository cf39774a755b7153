package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func valid() map[string]string {
	return map[string]string{
		EnvBaseURL:            "https://apinizer.example.com",
		EnvTokenSecretID:      "apinizer/token",
		EnvDeadLetterQueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
	}
}

func TestLoadAppliesDefaults(t *testing.T) {
	cfg, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PasswordLength != 32 || cfg.ExcludeCharacters != DefaultExcludeCharacters ||
		cfg.BulkMaxConcurrency != 10 || cfg.BulkPrepareAhead != 10 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestLoadReadsARateWithDecimals(t *testing.T) {
	for v, want := range map[string]float64{"2.5": 2.5, " 0.5 ": 0.5, "0.001": 0.001, "1000": 1000, "": 0} {
		m := valid()
		m[EnvMaxRPS] = v
		cfg, err := Load(env(m))
		if err != nil || cfg.MaxRPS != want {
			t.Errorf("%s=%q: MaxRPS %v, error %v; want %v", EnvMaxRPS, v, cfg.MaxRPS, err, want)
		}
	}
}

func TestDefaultExclusionsCoverWhatBreaksURLsJSONAndBasicAuth(t *testing.T) {
	for _, c := range []string{`"`, `\`, ":", "@", "/", "%", "#", "&", "?", "+", "'"} {
		if !strings.Contains(DefaultExcludeCharacters, c) {
			t.Errorf("default exclusions miss %q", c)
		}
	}
}

func TestLoadReportsEveryProblemInOneError(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{EnvBaseURL, EnvTokenSecretID, EnvDeadLetterQueueURL}},
		{"plain http to a remote host", map[string]string{EnvBaseURL: "http://apinizer.example.com"}, []string{"https"}},
		{"relative URL", map[string]string{EnvBaseURL: "apinizer.example.com"}, []string{"absolute"}},
		{"a query string", map[string]string{EnvBaseURL: "https://h/?x=1"}, []string{"query"}},
		{"length not a number", map[string]string{EnvPasswordLength: "long"}, []string{EnvPasswordLength}},
		{"length too short", map[string]string{EnvPasswordLength: "8"}, []string{EnvPasswordLength}},
		{"exclusions not ASCII", map[string]string{EnvExcludeCharacters: "é"}, []string{EnvExcludeCharacters}},
		{"exclusions leave no digit", map[string]string{EnvExcludeCharacters: "0123456789"}, []string{"digits"}},
		{"gateway over plain http", map[string]string{EnvGatewayURL: "http://gw.example.com"}, []string{EnvGatewayURL}},
		{"probe path without gateway", map[string]string{EnvGatewayProbePath: "/probe"}, []string{EnvGatewayURL}},
		{"probe path with a query", map[string]string{EnvGatewayURL: "https://gw", EnvGatewayProbePath: "/p?x"},
			[]string{EnvGatewayProbePath}},
		{"rate not a number", map[string]string{EnvMaxRPS: "fast"}, []string{EnvMaxRPS}},
		{"rate zero", map[string]string{EnvMaxRPS: "0"}, []string{EnvMaxRPS}},
		{"rate above 1000", map[string]string{EnvMaxRPS: "5000"}, []string{EnvMaxRPS}},
		{"rate just above 1000", map[string]string{EnvMaxRPS: "1000.001"}, []string{EnvMaxRPS}},
		{"rate not a number at all", map[string]string{EnvMaxRPS: "NaN"}, []string{EnvMaxRPS}},
		{"concurrency zero", map[string]string{EnvBulkMaxConcurrency: "0"}, []string{EnvBulkMaxConcurrency}},
		{"prepare-ahead negative", map[string]string{EnvBulkPrepareAhead: "-1"}, []string{EnvBulkPrepareAhead}},
		{"prepare-ahead too many", map[string]string{EnvBulkPrepareAhead: "101"}, []string{EnvBulkPrepareAhead}},
		{"queue URL not a URL", map[string]string{EnvDeadLetterQueueURL: "dlq"}, []string{EnvDeadLetterQueueURL}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			if len(tc.set) == 0 {
				m = map[string]string{}
			}
			for k, v := range tc.set {
				m[k] = v
			}
			_, err := Load(env(m))
			if err == nil {
				t.Fatal("expected an error")
			}
			if strings.Count(err.Error(), "configuration:") != 1 {
				t.Errorf("want one message, got %q", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoopbackHTTPIsAllowedForLocalRuns(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8099", "http://localhost:1", "http://[::1]:2"} {
		m := valid()
		m[EnvBaseURL] = u
		if _, err := Load(env(m)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
