package rotation

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Fuzz targets for what the rotation function reads from outside: the
// credential secret's value and the event Secrets Manager sends. Plain
// `go test` runs their seeds, the corpus files under testdata/corpus;
// `go test -fuzz=FuzzX` explores from there.

// FuzzParseCredential parses a secret value and, when it parses, sets a
// password with WithPassword: the password reads back as set, the names and
// every other key are kept, and no error quotes the value.
func FuzzParseCredential(f *testing.F) {
	for _, c := range corpusLoad(f, "secret", 64<<10) {
		f.Add(string(c.Data), "New-Pass-0123456789")
	}
	f.Add(`{"projectName":"p","username":"u","password":"x","k":{"a":[1,"\u2028",null]}}`, `"\</script>`+"\u2028é")
	f.Fuzz(func(t *testing.T, value, password string) {
		cred, err := ParseCredential(value)
		if err != nil {
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("error %v is not ErrInvalidSecret", err)
			}
			// the error names keys, never values: it is short whatever
			// the input, and holds no control character
			if len(err.Error()) > 200 || strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("error quotes the input: %q", err)
			}
			return
		}
		if cred.ProjectName == "" || cred.Username == "" {
			t.Fatal("parsed a credential without names")
		}
		// generated passwords are valid UTF-8; JSON cannot carry other bytes
		if password == "" || !utf8.ValidString(password) {
			return
		}
		corpusAssertRoundTrip(t, value, cred, password)
	})
}

// FuzzValidateEvent decodes a payload as the Lambda runtime does and
// validates it: no panic, an accepted event has the fields the engine
// relies on, and a refusal never echoes more than a short excerpt.
func FuzzValidateEvent(f *testing.F) {
	for _, c := range corpusLoad(f, "event", 64<<10) {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ev Event
		if corpusDecode(payload, &ev) != nil {
			return // the runtime refuses it before the handler runs
		}
		err := ValidateEvent(ev)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error %v is not ErrInvalidEvent", err)
			}
			if len(err.Error()) > 200 || strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("error echoes the input: %q", err)
			}
			return
		}
		switch ev.Step {
		case StepCreate, StepSet, StepTest, StepFinish:
		default:
			t.Fatalf("accepted step %q", ev.Step)
		}
		for _, v := range []string{ev.SecretID, ev.ClientRequestToken} {
			if v == "" || len(v) > maxFieldLength || strings.ContainsFunc(v, func(r rune) bool {
				return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' '
			}) {
				t.Fatalf("accepted field %q", v)
			}
		}
	})
}
