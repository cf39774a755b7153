package config

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
)

// fuzzSecret stands for a password someone typed into a URL's user
// information by mistake: no error may repeat it.
const fuzzSecret = "Fuzz-UserInfo-Secret-42"

// FuzzLoad fuzzes every environment variable Load reads. Whatever they
// hold: no panic; an accepted configuration sends the token and passwords
// only over https, or plain http to a loopback host, and holds values in
// their documented ranges; and no error repeats a password put in a URL's
// user information.
func FuzzLoad(f *testing.F) {
	f.Add("https://apinizer.example.com", "apinizer/token", "https://sqs.us-east-1.amazonaws.com/1/dlq",
		"32", "", "10", "", "")
	f.Add("http://127.0.0.1:8080/apinizer/", "t", "http://localhost:4566/1/q", "4096", `"\`, "1",
		"https://gw.example.com", "/orders/v1/ping")
	f.Add("http://apinizer.example.com", "", "sqs", "15", "abcdefghijklmnopqrstuvwxyz", "0",
		"ftp://gw", "//evil.example/x")
	f.Add("https://[::1]:443#frag", " ", "https://u:p@sqs/q", "1e3", "é", "101", "http://10.0.0.1", "/p?q=1")
	f.Add("HTTPS://APINIZER.EXAMPLE.COM:0", "x", "https://q", "+32", "\x00", " 7 ", "https://gw:99999", "/\x7f")
	f.Add("http://127.0.0.1.nip.io", "x", "https://q", "-1", "0123456789", "99", "http://[::ffff:127.0.0.1]", "")

	f.Fuzz(func(t *testing.T, base, tokenID, dlq, length, exclude, concurrency, gateway, probe string) {
		env := map[string]string{
			EnvBaseURL: base, EnvTokenSecretID: tokenID, EnvDeadLetterQueueURL: dlq,
			EnvPasswordLength: length, EnvExcludeCharacters: exclude, EnvBulkMaxConcurrency: concurrency,
			EnvGatewayURL: gateway, EnvGatewayProbePath: probe,
		}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		cfg, err := Load(lookup)
		if err == nil {
			fuzzCheckAccepted(t, cfg)
		} else if !strings.HasPrefix(err.Error(), "configuration: ") {
			t.Fatalf("error %q does not say it is about configuration", err)
		}

		// the same, with a password in the user information of each URL
		withSecret := func(u string) string {
			scheme, rest, ok := strings.Cut(u, "://")
			if !ok {
				scheme, rest = "https", u
			}
			return scheme + "://user:" + fuzzSecret + "@" + rest
		}
		env[EnvBaseURL], env[EnvGatewayURL] = withSecret(base), withSecret(gateway)
		env[EnvDeadLetterQueueURL] = withSecret(dlq)
		cfg, err = Load(lookup)
		if err == nil {
			t.Fatalf("a base URL with user information was accepted: %+v", cfg)
		}
		if strings.Contains(err.Error(), fuzzSecret) || strings.Contains(err.Error(), url.QueryEscape(fuzzSecret)) {
			t.Fatalf("the error repeats the user information: %v", err)
		}
	})
}

// fuzzCheckAccepted checks what an accepted configuration promises.
func fuzzCheckAccepted(t *testing.T, cfg Config) {
	t.Helper()
	for name, raw := range map[string]string{"base URL": cfg.BaseURL, "gateway URL": cfg.GatewayURL} {
		if raw == "" && name == "gateway URL" {
			continue
		}
		if err := apinizer.CheckBaseURL(raw); err != nil {
			t.Fatalf("accepted %s %q that the client refuses: %v", name, raw, err)
		}
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %s %q", name, raw)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && fuzzLoopback(u.Hostname()):
		default:
			t.Fatalf("accepted %s %q: the token or a password would travel in clear", name, raw)
		}
	}
	if cfg.TokenSecretID == "" || cfg.DeadLetterQueueURL == "" {
		t.Fatalf("accepted without a token secret or a queue: %+v", cfg)
	}
	if cfg.PasswordLength < 16 || cfg.PasswordLength > 4096 ||
		cfg.BulkMaxConcurrency < 1 || cfg.BulkMaxConcurrency > 100 {
		t.Fatalf("accepted out-of-range numbers: %+v", cfg)
	}
	for _, r := range cfg.ExcludeCharacters {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			t.Fatalf("accepted exclusions %q", cfg.ExcludeCharacters)
		}
	}
	if !leavesEachKind(cfg.ExcludeCharacters) {
		t.Fatalf("accepted exclusions %q that leave no letter or digit of some kind", cfg.ExcludeCharacters)
	}
	if cfg.GatewayProbePath != "" && (cfg.GatewayURL == "" || !strings.HasPrefix(cfg.GatewayProbePath, "/") ||
		strings.ContainsAny(cfg.GatewayProbePath, "?#")) {
		t.Fatalf("accepted probe path %q", cfg.GatewayProbePath)
	}
}

// fuzzLoopback is an independent reading of "loopback host".
func fuzzLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
