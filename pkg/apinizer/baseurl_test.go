package apinizer

import (
	"strings"
	"testing"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

func TestNewValidatesTheBaseURL(t *testing.T) {
	tests := []struct {
		name       string
		url        string
		wantOrigin string
		wantPrefix string
		wantErr    string
	}{
		{name: "https is accepted", url: "https://apinizer.example.com",
			wantOrigin: "https://apinizer.example.com"},
		{name: "https with a port and a trailing slash is accepted", url: "https://h.example:8443/",
			wantOrigin: "https://h.example:8443"},
		{name: "a path prefix is kept", url: "https://h.example/apinizer",
			wantOrigin: "https://h.example", wantPrefix: "/apinizer"},
		{name: "an escaped path prefix stays escaped", url: "https://h.example/a%20b/",
			wantOrigin: "https://h.example", wantPrefix: "/a%20b"},
		{name: "an upper-case scheme is accepted", url: "HTTPS://h.example",
			wantOrigin: "https://h.example"},
		{name: "http to 127.0.0.1 is accepted", url: "http://127.0.0.1:8080",
			wantOrigin: "http://127.0.0.1:8080"},
		{name: "http to another 127/8 address is accepted", url: "http://127.1.2.3",
			wantOrigin: "http://127.1.2.3"},
		{name: "http to localhost is accepted", url: "http://localhost:9000/api",
			wantOrigin: "http://localhost:9000", wantPrefix: "/api"},
		{name: "http to ::1 is accepted", url: "http://[::1]:8080",
			wantOrigin: "http://[::1]:8080"},
		{name: "http to another host is refused", url: "http://example.com",
			wantErr: "needs https"},
		{name: "http to a private address is refused", url: "http://10.0.0.1",
			wantErr: "needs https"},
		{name: "a host that only starts like localhost is refused", url: "http://localhost.evil.com",
			wantErr: "needs https"},
		{name: "ftp is refused", url: "ftp://h.example", wantErr: `scheme "ftp" is not supported`},
		{name: "a relative URL is refused", url: "/apiops", wantErr: "must be absolute"},
		{name: "a host without a scheme is refused", url: "apinizer.example.com", wantErr: "must be absolute"},
		{name: "a scheme-relative URL is refused", url: "//apinizer.example.com", wantErr: "must be absolute"},
		{name: "an opaque URL is refused", url: "https:apinizer.example.com", wantErr: "must be absolute"},
		{name: "an empty URL is refused", url: " ", wantErr: "base URL is empty"},
		{name: "a URL that does not parse is refused", url: "https://h.example/%zz", wantErr: "not a valid URL"},
		{name: "a query is refused", url: "https://h.example/?a=1", wantErr: "query or a fragment"},
		{name: "an empty query is refused", url: "https://h.example/?", wantErr: "query or a fragment"},
		{name: "a fragment is refused", url: "https://h.example/#x", wantErr: "query or a fragment"},
		{name: "an empty fragment is refused", url: "https://h.example/#", wantErr: "query or a fragment"},
		{name: "user information is refused without echoing it", url: "https://admin:hunter2@h.example",
			wantErr: "must not carry user information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url, StaticToken(sensitive.New(testToken)), Options{})
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("New(%q) accepted it", tt.url)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not say %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q echoes the password in the URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.url, err)
			}
			if c.origin != tt.wantOrigin || c.prefix != tt.wantPrefix {
				t.Errorf("origin %q prefix %q, want %q %q", c.origin, c.prefix, tt.wantOrigin, tt.wantPrefix)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		tokens TokenSource
		opts   Options
		want   string
	}{
		{name: "a missing token source is refused", opts: Options{}, want: "no token source"},
		{name: "a negative attempt count is refused", tokens: StaticToken(sensitive.New("t")),
			opts: Options{MaxAttempts: -1}, want: "must not be negative"},
		{name: "a negative timeout is refused", tokens: StaticToken(sensitive.New("t")),
			opts: Options{AttemptTimeout: -1}, want: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("https://h.example", tt.tokens, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestNewFillsDefaults(t *testing.T) {
	c, err := New("https://h.example", StaticToken(sensitive.New("t")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.maxAttempts != DefaultMaxAttempts || c.attemptTimeout != DefaultAttemptTimeout ||
		c.initialBackoff != DefaultInitialBackoff || c.maxBackoff != DefaultMaxBackoff ||
		c.maxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("defaults not applied: %d %s %s %s %d", c.maxAttempts, c.attemptTimeout,
			c.initialBackoff, c.maxBackoff, c.maxBodyBytes)
	}
	if c.httpClient == nil || c.httpClient.CheckRedirect == nil {
		t.Errorf("the default HTTP client follows redirects")
	}
}
