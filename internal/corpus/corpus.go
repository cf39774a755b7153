// Package corpus loads the hostile inputs kept in testdata/corpus for the
// tests of every package: each file, expanded, with what its manifest
// entry expects, and a scan for secrets in what the code produced.
package corpus

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Entry is one corpus file, expanded, and what the manifest expects of it.
type Entry struct {
	Name       string            `json:"-"`
	Data       []byte            `json:"-"`
	Expect     string            `json:"expect"`
	Error      string            `json:"error"`
	Key        string            `json:"key"`
	Records    map[string]string `json:"records"`
	KnownIssue string            `json:"knownIssue"`
	Why        string            `json:"why"`
}

// Load reads every file of one kind under dir and checks that the files
// and the manifest list the same names. maxSize skips files larger than
// that once expanded (0: none are skipped).
func Load(tb testing.TB, dir, kind string, maxSize int) []Entry {
	tb.Helper()
	raw, err := os.ReadFile(path.Join(dir, "manifest.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var manifest map[string]Entry
	if err := json.Unmarshal(raw, &manifest); err != nil {
		tb.Fatalf("manifest.json: %v", err)
	}
	files, err := os.ReadDir(path.Join(dir, kind))
	if err != nil {
		tb.Fatal(err)
	}
	var out []Entry
	seen := map[string]bool{}
	for _, f := range files {
		name := kind + "/" + f.Name()
		e, ok := manifest[name]
		if !ok {
			tb.Fatalf("%s is not in manifest.json", name)
		}
		seen[name] = true
		data, err := os.ReadFile(path.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		e.Name, e.Data = name, Expand(tb, data)
		if maxSize == 0 || len(e.Data) <= maxSize {
			out = append(out, e)
		}
	}
	for name := range manifest {
		if strings.HasPrefix(name, kind+"/") && !seen[name] {
			tb.Fatalf("manifest.json lists %s, which does not exist", name)
		}
	}
	return out
}

var repeat = regexp.MustCompile(`^\{\{repeat (\d+)\}\}((?s:.*?))\{\{/repeat\}\}`)

// Expand replaces each {{repeat N}}text{{/repeat}} with N copies of text,
// innermost first, so that huge inputs are kept as small files.
func Expand(tb testing.TB, data []byte) []byte {
	for {
		start := bytes.LastIndex(data, []byte("{{repeat "))
		if start < 0 {
			return data
		}
		m := repeat.FindSubmatchIndex(data[start:])
		if m == nil || m[0] != 0 {
			tb.Fatalf("unclosed {{repeat}} at byte %d", start)
		}
		n, err := strconv.Atoi(string(data[start+m[2] : start+m[3]]))
		text := data[start+m[4] : start+m[5]]
		if err != nil || n*len(text) > 32<<20 {
			tb.Fatalf("bad repeat at byte %d", start)
		}
		data = slices.Concat(data[:start], bytes.Repeat(text, n), data[start+m[1]:])
	}
}

// Leaks returns each text in which a secret shows, in plain, JSON-escaped,
// URL-encoded or base64 form.
func Leaks(secrets []string, texts map[string]string) []string {
	var found []string
	for _, s := range secrets {
		j, _ := json.Marshal(s)
		forms := []string{s, strings.Trim(string(j), `"`), url.QueryEscape(s), url.PathEscape(s),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(s)),
			base64.URLEncoding.EncodeToString([]byte(s))}
		slices.Sort(forms)
		forms = slices.Compact(forms)
		for what, text := range texts {
			for _, f := range forms {
				if strings.Contains(text, f) {
					found = append(found, fmt.Sprintf("%q in %s", f, what))
				}
			}
		}
	}
	return found
}
