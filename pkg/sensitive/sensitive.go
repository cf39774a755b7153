// Package sensitive holds values that must never reach a log line, an error
// message or a JSON document by accident: passwords and tokens.
package sensitive

import (
	"fmt"
	"log/slog"
)

// Placeholder is what a sensitive value prints as.
const Placeholder = "[REDACTED]"

// String is a secret text. Printing it with fmt, logging it with slog or
// marshalling it to JSON shows Placeholder; only Reveal gives the value.
type String struct {
	value string
}

// New wraps s.
func New(s string) String { return String{value: s} }

// Reveal returns the secret text. Call it only where the value is sent to
// the one place that needs it.
func (s String) Reveal() string { return s.value }

// Empty reports whether the value is the empty string.
func (s String) Empty() bool { return s.value == "" }

// Equal reports whether two values hold the same text.
func (s String) Equal(o String) bool { return s.value == o.value }

// String implements fmt.Stringer.
func (s String) String() string { return Placeholder }

// GoString implements fmt.GoStringer, so %#v hides the value too.
func (s String) GoString() string { return Placeholder }

// Format implements fmt.Formatter: every verb prints the placeholder.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Placeholder)) }

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Placeholder) }

// MarshalJSON implements json.Marshaler.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + Placeholder + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s String) MarshalText() ([]byte, error) { return []byte(Placeholder), nil }
