package gateway

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// Error is why Check did not find the password accepted. Its text never
// holds the password, the username and password together, or the
// Authorization header.
type Error struct {
	// Attempts is how many requests were sent; 0 when the check could not
	// start (an empty username or password, or ctx already ended).
	Attempts int
	// LastStatus is the HTTP status of the last answer, 0 if no attempt got
	// one.
	LastStatus int
	// Message describes the last failure, such as "HTTP 401" or "no
	// answer: connection refused".
	Message string
	// Err is the cause beneath, for errors.Is and errors.As: ctx's error
	// when ctx ended the check, else the last transport error, if any. Its
	// text is already in Message, cleaned.
	Err error

	// stop says why no further attempt was made, when that is worth
	// saying: "not retried", "no time left ...", "deadline reached".
	stop string
}

// Error reads like "gateway did not accept the new password after 3
// attempts (last: HTTP 401)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Attempts == 0 {
		b.WriteString("gateway check not made")
		for _, s := range []string{e.Message, e.stop} {
			if s != "" {
				b.WriteString(": " + s)
			}
		}
		return b.String()
	}

	plural := "s"
	if e.Attempts == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "gateway did not accept the new password after %d attempt%s",
		e.Attempts, plural)
	if e.Message != "" {
		b.WriteString(" (last: " + e.Message + ")")
	}
	if e.stop != "" {
		b.WriteString("; " + e.stop)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// scrubber removes a credential's secrets from text before it goes into an
// error or a log line: the password, the "username:password" pair and the
// encoded forms the request carried them in (Basic value, form value).
type scrubber struct {
	forms []string // longest first
}

func newScrubber(username, password string) scrubber {
	if password == "" {
		return scrubber{}
	}
	pair := username + ":" + password
	forms := []string{password, url.QueryEscape(password), url.PathEscape(password),
		pair, base64.StdEncoding.EncodeToString([]byte(pair))}
	slices.SortFunc(forms, func(a, b string) int {
		return cmp.Or(len(b)-len(a), strings.Compare(a, b))
	})
	return scrubber{forms: slices.Compact(forms)}
}

func (s scrubber) clean(text string) string {
	for _, f := range s.forms {
		text = strings.ReplaceAll(text, f, sensitive.Placeholder)
	}
	return text
}
