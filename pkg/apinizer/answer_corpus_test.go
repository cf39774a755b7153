package apinizer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/apinizer-rotation/rotator/internal/corpus"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// The corpus of hostile inputs is described in testdata/corpus/README.md.
// This file replays its Apinizer answers from an httptest server to
// ChangePassword, and seeds FuzzReadAnswer with them.

const corpusDir = "../../testdata/corpus"

// corpusEntry is one corpus file, expanded, and what the manifest expects.
type corpusEntry = corpus.Entry

func corpusLoad(tb testing.TB, kind string, maxSize int) []corpusEntry {
	return corpus.Load(tb, corpusDir, kind, maxSize)
}

func corpusExpand(tb testing.TB, data []byte) []byte { return corpus.Expand(tb, data) }

// corpusAnswer is one recorded Apinizer answer: a status, headers and a
// body, and how to send it (%truncate N: promise the whole body, send N
// bytes and close; %stall: send the headers and then nothing).
type corpusAnswer struct {
	status   int
	header   http.Header
	body     []byte
	truncate int // -1: send the whole body
	stall    bool
}

// corpusPlaceholders are replaced in an answer before it is read: the
// request's secrets in the forms a server may echo them in, and the address
// of a second server that must never be asked anything.
func corpusPlaceholders(other string) *strings.Replacer {
	var j bytes.Buffer
	enc := json.NewEncoder(&j)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(testPassword)
	return strings.NewReplacer(
		"{{password_json}}", strings.Trim(strings.TrimSpace(j.String()), `"`),
		"{{password_url}}", url.QueryEscape(testPassword),
		"{{password}}", testPassword,
		"{{token}}", testToken,
		"{{other}}", other)
}

// parseCorpusAnswer reads the format of testdata/corpus/apinizer: a first
// line "STATUS <code>", header lines "Name: value" and directives
// "%truncate N" or "%stall", a blank line, then the body as it is.
func parseCorpusAnswer(data []byte, placeholders *strings.Replacer) (corpusAnswer, error) {
	a := corpusAnswer{header: http.Header{}, truncate: -1}
	head, body, found := bytes.Cut(data, []byte("\n\n"))
	if !found {
		return a, errors.New("no blank line after the head")
	}
	a.body = []byte(placeholders.Replace(string(body)))
	lines := strings.Split(placeholders.Replace(string(head)), "\n")
	code, ok := strings.CutPrefix(lines[0], "STATUS ")
	n, err := strconv.Atoi(code)
	if !ok || err != nil {
		return a, fmt.Errorf("first line %q is not STATUS <code>", lines[0])
	}
	a.status = n
	for _, l := range lines[1:] {
		switch {
		case l == "%stall":
			a.stall = true
		case strings.HasPrefix(l, "%truncate "):
			if a.truncate, err = strconv.Atoi(strings.TrimPrefix(l, "%truncate ")); err != nil {
				return a, fmt.Errorf("bad directive %q", l)
			}
		default:
			name, value, ok := strings.Cut(l, ": ")
			if !ok {
				return a, fmt.Errorf("bad header line %q", l)
			}
			a.header.Add(name, value)
		}
	}
	return a, nil
}

// serve answers one request with a.
func (a corpusAnswer) serve(w http.ResponseWriter, r *http.Request) {
	if a.truncate >= 0 {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n", a.status, http.StatusText(a.status), len(a.body))
		_ = a.header.Write(buf)
		fmt.Fprint(buf, "\r\n")
		_, _ = buf.Write(a.body[:min(a.truncate, len(a.body))])
		_ = buf.Flush()
		return
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	if a.stall {
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
		return
	}
	_, _ = w.Write(a.body)
}

// corpusSecretForms are the forms of the request's secrets that must not
// show up anywhere: plain, JSON-escaped and URL-encoded, and base64 when
// asked (the redactor does not look for base64, which no request carries).
func corpusSecretForms(withBase64 bool) []string {
	var forms []string
	for _, s := range []string{testPassword, testToken} {
		j, _ := json.Marshal(s)
		forms = append(forms, s, strings.Trim(string(j), `"`), url.QueryEscape(s), url.PathEscape(s))
		if withBase64 {
			forms = append(forms, base64.StdEncoding.EncodeToString([]byte(s)),
				base64.RawStdEncoding.EncodeToString([]byte(s)))
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

func TestCorpusAnswersGetTheirClass(t *testing.T) {
	other := &atomic.Int32{}
	otherSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { other.Add(1) }))
	t.Cleanup(otherSrv.Close)
	placeholders := corpusPlaceholders(otherSrv.URL)
	const wantPath = "/apiops/projects/Orders/credentials/orders-client/"

	for _, c := range corpusLoad(t, "apinizer", 0) {
		t.Run(c.Name, func(t *testing.T) {
			a, err := parseCorpusAnswer(c.Data, placeholders)
			if err != nil {
				t.Fatal(err)
			}
			var wrongRequest atomic.Value
			opts := fastOptions()
			opts.AttemptTimeout = 300 * time.Millisecond // for %stall
			hs := newHarness(t, opts, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPatch || r.URL.EscapedPath() != wantPath {
					wrongRequest.Store(r.Method + " " + r.URL.String())
				}
				a.serve(w, r)
			})
			before := other.Load()

			dep, err := hs.client.ChangePassword(context.Background(), "Orders", "orders-client",
				sensitive.New(testPassword))
			got := "deployed"
			if err != nil {
				got = ClassOf(err).String()
			}
			if got != c.Expect {
				t.Fatalf("class %s, want %s (error: %v)", got, c.Expect, err)
			}
			if err != nil && !strings.Contains(err.Error(), c.Error) {
				t.Errorf("error %q does not say %q", err, c.Error)
			}
			if got == "deployed" && (dep == nil || !dep.Deployed()) {
				t.Errorf("no error, but the deployment is %+v", dep)
			}

			// one request, or one per attempt, to the credential's own path
			want := int32(1)
			switch {
			case c.Expect == "transient":
				want = int32(opts.MaxAttempts)
			case a.status == http.StatusUnauthorized:
				want = 2 // the token is read again once
			}
			if n := hs.requests.Load(); n != want {
				t.Errorf("%d requests, want %d", n, want)
			}
			if w := wrongRequest.Load(); w != nil {
				t.Errorf("unexpected request %s", w)
			}
			if n := other.Load() - before; n != 0 {
				t.Errorf("the redirect target was asked %d times", n)
			}
			for _, w := range hs.recordedWaits() {
				if w > retryAfterCap*opts.MaxBackoff {
					t.Errorf("waited %s, more than the cap", w)
				}
			}

			// nothing that may be logged or dead-lettered shows a secret
			assertNoSecret(t, err)
			texts := map[string]string{}
			if err != nil {
				texts["error"] = err.Error() + " | " + chainText(err)
			}
			if dep != nil {
				b, _ := json.Marshal(dep)
				texts["deployment"] = string(b)
			}
			for what, text := range texts {
				for _, f := range corpusSecretForms(true) {
					if strings.Contains(text, f) {
						t.Errorf("%s shows a secret (%q)", what, f)
					}
				}
			}
		})
	}
}
