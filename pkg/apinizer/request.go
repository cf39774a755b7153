package apinizer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// userAgent names this client in Apinizer's access logs.
const userAgent = "apinizer-rotation/rotator"

// call is one logical request to Apinizer. Every attempt builds a fresh
// *http.Request from it.
type call struct {
	op     string // names the operation and its non-secret ids, for errors and logs
	method string
	url    string // full URL, path already escaped
	accept string
	// body is the request body, nil for none. It holds the password or the
	// client secret: it goes into the request and nowhere else.
	body []byte
	// contentType is the body's type; "" means application/json.
	contentType string
	// password is the secret body holds (the password, the client secret),
	// replaced in any text Apinizer sends back; "" for none.
	password string
	// anonymous sends no bearer token: the call that obtains one.
	anonymous bool
}

// endpoint joins the base URL and a path template such as
// "apiops/projects/{}/credentials/{}": each "{}" becomes the next of names,
// escaped with escapeSegment. The result always ends in "/", as every
// documented Apinizer path does.
//
// It parses the result back and checks that Go keeps the escaping exactly as
// written, so what the server sees is what was built here.
func (c *Client) endpoint(op, template string, names ...string) (string, error) {
	var p strings.Builder
	p.WriteString(c.prefix)
	p.WriteString("/")
	rest := template
	for _, name := range names {
		before, after, found := strings.Cut(rest, "{}")
		if !found {
			return "", &Error{Op: op, Class: ClassRejected, Message: "cannot build the request path"}
		}
		p.WriteString(before)
		p.WriteString(escapeSegment(name))
		rest = after
	}
	p.WriteString(rest)
	p.WriteString("/")

	raw := c.origin + p.String()
	u, err := url.Parse(raw)
	if err != nil || u.EscapedPath() != p.String() {
		return "", &Error{Op: op, Class: ClassRejected,
			Message: "cannot build the request path", Err: err}
	}
	return raw, nil
}

// escapeSegment percent-encodes every byte of s except RFC 3986's
// unreserved characters (letters, digits, '-', '.', '_', '~'). Nothing a
// name holds, not '/', '?', '#', '%', ';', '&', '=', '+', '@', a space or a
// non-ASCII letter, can change the shape of the path; the server decodes
// each escape back to the byte it stands for.
func escapeSegment(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0F])
	}
	return b.String()
}

// checkName refuses a path name that is empty, or is "." or "..", which
// proxies and servers resolve as path steps even when sent as they are.
func checkName(op, what, name string) error {
	switch name {
	case "":
		return &Error{Op: op, Class: ClassRejected, Message: what + " is empty"}
	case ".", "..":
		return &Error{Op: op, Class: ClassRejected, Message: what + ` must not be "." or ".."`}
	}
	return nil
}

// passwordBody encodes the one field Apinizer reads: {"password":"..."}.
// HTML escaping is off so the bytes are the plain JSON encoding; the value
// must be valid UTF-8, or JSON would replace bytes and another password
// would arrive.
func passwordBody(op string, password sensitive.String) ([]byte, error) {
	if password.Empty() {
		return nil, &Error{Op: op, Class: ClassRejected, Message: "password is empty"}
	}
	if !utf8.ValidString(password.Reveal()) {
		return nil, &Error{Op: op, Class: ClassRejected, Message: "password is not valid UTF-8"}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := struct {
		Password string `json:"password"`
	}{password.Reveal()}
	if err := enc.Encode(body); err != nil {
		// a string always encodes; say nothing of the value if it did not
		return nil, &Error{Op: op, Class: ClassRejected, Message: "cannot encode the request body"}
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// newRequest builds the request for one attempt, bound to ctx, with token as
// its bearer unless the call is anonymous.
func newRequest(ctx context.Context, rq *call, token sensitive.String) (*http.Request, error) {
	var body io.Reader = http.NoBody
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, rq.url, body)
	if err != nil {
		return nil, err
	}
	if !rq.anonymous {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	req.Header.Set("Accept", rq.accept)
	if rq.body != nil {
		req.Header.Set("Content-Type", cmp.Or(rq.contentType, "application/json"))
	}
	req.Header.Set("User-Agent", userAgent)
	return req, nil
}

// displayName shows a project or user name in an error or log line as it
// is, or quoted when it holds spaces, '/', quotes or characters that are not
// printable, so a name can never forge or split a line.
func displayName(s string) string {
	for _, r := range s {
		if r == '/' || r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsGraphic(r) {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// credentialOp names a credential operation, e.g. "change password of proj/user".
func credentialOp(verb, projectName, username string) string {
	return fmt.Sprintf("%s %s/%s", verb, displayName(projectName), displayName(username))
}
