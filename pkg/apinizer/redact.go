package apinizer

import (
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// Limits on text from Apinizer kept in errors.
const (
	maxExcerptBytes = 200 // an excerpt of a body that is not a JSON envelope
	maxMessageBytes = 500 // a message Apinizer wrote into a JSON envelope
	maxNameBytes    = 200 // an environment or pod name
	maxCodeBytes    = 64  // an "error" or "status" code
)

// redactor cleans text that Apinizer sent back before it goes into an error:
// every copy of a secret in the request (the password, the token) becomes
// sensitive.Placeholder, in its plain form and in the forms a server may
// echo it in (JSON string, URL escaped).
type redactor struct {
	forms []string // longest first, so a longer form is replaced before its parts
}

// newRedactor returns a redactor for the given secrets; empty ones are
// skipped.
func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if s == "" {
			continue
		}
		r.forms = append(r.forms, s, url.PathEscape(s), url.QueryEscape(s))
		if j, err := json.Marshal(s); err == nil {
			r.forms = append(r.forms, string(j[1:len(j)-1]))
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(s) == nil {
			j := strings.TrimSpace(b.String())
			r.forms = append(r.forms, j[1:len(j)-1])
		}
	}
	slices.SortFunc(r.forms, func(a, b string) int {
		return cmp.Or(len(b)-len(a), strings.Compare(a, b))
	})
	r.forms = slices.Compact(r.forms)
	return r
}

// longest is the length of the longest form, 0 for none.
func (r redactor) longest() int {
	if len(r.forms) == 0 {
		return 0
	}
	return len(r.forms[0])
}

// redact replaces every form of every secret in s.
func (r redactor) redact(s string) string {
	for _, f := range r.forms {
		s = strings.ReplaceAll(s, f, sensitive.Placeholder)
	}
	return s
}

// clean makes s fit for an error: secrets redacted, invalid UTF-8 replaced,
// runs of control characters and white space turned into one space, cut to
// at most limit bytes.
func (r redactor) clean(s string, limit int) string {
	s = r.redact(s)
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(c rune) bool {
		return unicode.IsSpace(c) || unicode.IsControl(c)
	}), " ")
	// once more: dropping control characters may have joined a secret
	s = r.redact(s)
	return truncate(s, limit)
}

// excerpt is a short, clean piece of a body that is not a JSON envelope,
// for example a proxy's HTML error page. cut tells that the body was
// stopped at the read limit: its tail may hold the start of a secret, which
// no replacement would catch, so that much of the tail is dropped.
func (r redactor) excerpt(body []byte, cut bool) string {
	s := string(body)
	if cut {
		s = s[:max(0, len(s)-r.longest())]
	}
	// redact before anything changes the text, or a changed copy would
	// no longer match
	s = r.redact(s)
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "<") {
		s = stripTags(s)
	}
	return r.clean(s, maxExcerptBytes)
}

// stripTags drops everything between '<' and '>', leaving the words of an
// HTML page.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, c := range s {
		switch {
		case c == '<':
			in = true
			b.WriteByte(' ')
		case c == '>' && in:
			in = false
		case !in:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// truncate cuts s to at most limit bytes on a rune boundary, marking the
// cut with "...".
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = "..."
	n := max(0, limit-len(mark))
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}
