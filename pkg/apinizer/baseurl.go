package apinizer

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// parseBaseURL checks the address Apinizer is reached at and returns it as
// "scheme://host[:port]" plus the escaped path prefix ("" or "/prefix",
// without a trailing slash). The token goes to this address only, so it must
// be https, or plain http to a loopback host for local runs.
//
// The raw text is never echoed in the errors: a mistyped URL may carry a
// password in its user information.
func parseBaseURL(raw string) (origin, prefix string, err error) {
	if strings.TrimSpace(raw) == "" {
		return "", "", errors.New("apinizer: base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", errors.New("apinizer: base URL is not a valid URL")
	}
	if u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.Hostname() == "" {
		return "", "", errors.New(
			"apinizer: base URL must be absolute, such as https://apinizer.example.com")
	}
	if u.User != nil {
		return "", "", errors.New("apinizer: base URL must not carry user information")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return "", "", errors.New("apinizer: base URL must not carry a query or a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", "", fmt.Errorf(
				"apinizer: base URL host %q needs https (plain http is allowed for loopback hosts only)",
				u.Hostname())
		}
	default:
		return "", "", fmt.Errorf("apinizer: base URL scheme %q is not supported, use https", u.Scheme)
	}
	return u.Scheme + "://" + u.Host, strings.TrimRight(u.EscapedPath(), "/"), nil
}

// isLoopback reports whether host is "localhost" or a loopback address
// (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// CheckBaseURL reports whether raw is an address New accepts.
func CheckBaseURL(raw string) error {
	_, _, err := parseBaseURL(raw)
	return err
}
