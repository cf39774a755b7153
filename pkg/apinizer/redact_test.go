package apinizer

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

func TestRedactorReplacesEveryEchoedForm(t *testing.T) {
	r := newRedactor(testPassword, testToken, "")
	forms := map[string]string{
		"as it is":            testPassword,
		"JSON escaped":        `Pa\"ss\\w:o@r/d%#x &é✓<>+=?;`,
		"JSON escaped (HTML)": `Pa\"ss\\w:o@r/d%#x \u0026é✓\u003c\u003e+=?;`,
		"path escaped":        url.PathEscape(testPassword),
		"query escaped":       url.QueryEscape(testPassword),
		"the token":           testToken,
	}
	for name, form := range forms {
		t.Run("the password "+name+" is replaced", func(t *testing.T) {
			got := r.clean("before "+form+" after", maxMessageBytes)
			if got != "before [REDACTED] after" {
				t.Errorf("clean = %q", got)
			}
		})
	}
}

func TestRedactorWithNoSecretsChangesNothing(t *testing.T) {
	if got := newRedactor().redact("a b"); got != "a b" {
		t.Errorf("redact = %q", got)
	}
}

func TestExcerptDropsATailCutAtTheLimit(t *testing.T) {
	// the body is cut in the middle of the echoed password
	body := []byte("error: " + testPassword[:10])
	got := newRedactor(testPassword).excerpt(body, true)
	if strings.Contains(got, testPassword[:4]) {
		t.Errorf("excerpt %q keeps the start of the password", got)
	}
}

func TestAPasswordCutByTheBodyLimitDoesNotShow(t *testing.T) {
	// The limit falls inside the echoed password; no replacement could
	// match the half that was read.
	body := "password " + testPassword + " refused"
	opts := fastOptions()
	opts.MaxBodyBytes = int64(len("password ") + 12)
	hs := newHarness(t, opts, respond(http.StatusBadRequest, body))
	_, err := hs.client.ChangePassword(t.Context(), "p", "u", sensitive.New(testPassword))
	if err == nil || strings.Contains(err.Error(), testPassword[:8]) {
		t.Errorf("error %v shows the start of the password", err)
	}
	assertNoSecret(t, err)
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{name: "a short text is kept", in: "abc", limit: 5, want: "abc"},
		{name: "a text at the limit is kept", in: "abcde", limit: 5, want: "abcde"},
		{name: "a long text is cut and marked", in: "abcdefgh", limit: 6, want: "abc..."},
		{name: "a cut never splits a letter", in: "éééé", limit: 6, want: "é..."},
		{name: "a tiny limit leaves only the mark", in: "abcdef", limit: 2, want: "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.in, tt.limit)
			if got != tt.want || !utf8.ValidString(got) {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
		})
	}
}

func TestCleanStripsControlsAndInvalidUTF8(t *testing.T) {
	got := newRedactor().clean("a\x00b\r\n\tc\xffd\u0085e", 100)
	if got != "a b c\uFFFDd e" {
		t.Errorf("clean = %q", got)
	}
}

func TestStripTags(t *testing.T) {
	got := newRedactor().clean(stripTags("<p>a<br/>b</p> <i>c</i>"), 100)
	if got != "a b c" {
		t.Errorf("stripTags = %q", got)
	}
}
