package sensitive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestStringNeverShowsItsValue(t *testing.T) {
	const secret = "s3cr3t-P@ss"
	s := New(secret)
	type holder struct {
		Password String `json:"password"`
	}

	outputs := map[string]string{
		"%v":  fmt.Sprintf("%v", s),
		"%s":  fmt.Sprintf("%s", s),
		"%q":  fmt.Sprintf("%q", s),
		"%x":  fmt.Sprintf("%x", s),
		"%#v": fmt.Sprintf("%#v", s),
		"%+v": fmt.Sprintf("%+v", holder{s}),
	}
	b, err := json.Marshal(holder{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(b)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "password", s)
	outputs["slog"] = buf.String()

	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the value: %s", name, out)
		}
		if !strings.Contains(out, Placeholder) {
			t.Errorf("%s does not show the placeholder: %s", name, out)
		}
	}
	if s.Reveal() != secret {
		t.Errorf("Reveal() = %q, want the value", s.Reveal())
	}
}
