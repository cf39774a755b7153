package rotation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// Keys of a credential secret's JSON value.
const (
	keyProject  = "projectName"
	keyUsername = "username"
	keyPassword = "password"
)

// ErrInvalidSecret marks a secret that cannot be rotated as it is: no value,
// a value that is not a credential, rotation not enabled. Retrying does not
// help; a person must fix the secret.
var ErrInvalidSecret = errors.New("invalid secret")

// Credential is the value of a credential secret: JSON with projectName,
// username and password. Other keys are kept as they are.
type Credential struct {
	ProjectName string
	Username    string
	Password    sensitive.String
	fields      map[string]json.RawMessage
}

// Format prints the credential's project and username, never its
// password or its other keys (which may hold secrets of their own),
// whatever the verb: %v, %+v, %#v and %s all go through it.
func (c Credential) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "Credential{ProjectName:%q Username:%q Password:%s}", c.ProjectName, c.Username,
		sensitive.Placeholder)
}

// LogValue logs the project and username only.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("project", c.ProjectName), slog.String("username", c.Username))
}

// MarshalJSON writes the project and username only: a credential is
// written to Secrets Manager through WithPassword, never by encoding it.
func (c Credential) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{keyProject: c.ProjectName, keyUsername: c.Username,
		keyPassword: sensitive.Placeholder})
}

// ParseCredential reads a secret value. Its errors name the key at fault and
// never quote the value.
func ParseCredential(value string) (Credential, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(value))
	if err := dec.Decode(&fields); err != nil || fields == nil || dec.More() {
		return Credential{}, fmt.Errorf("%w: the value is not a JSON object with %s, %s and %s",
			ErrInvalidSecret, keyProject, keyUsername, keyPassword)
	}
	c := Credential{fields: fields}
	var err error
	if c.ProjectName, err = stringField(fields, keyProject, true); err != nil {
		return Credential{}, err
	}
	if c.Username, err = stringField(fields, keyUsername, true); err != nil {
		return Credential{}, err
	}
	password, err := stringField(fields, keyPassword, false)
	if err != nil {
		return Credential{}, err
	}
	c.Password = sensitive.New(password)
	return c, nil
}

// stringField reads fields[key] as a string. A missing required key, or a
// key that differs only in case, gets a message that says so.
func stringField(fields map[string]json.RawMessage, key string, required bool) (string, error) {
	raw, ok := fields[key]
	if !ok {
		if !required {
			return "", nil
		}
		for k := range fields {
			if strings.EqualFold(k, key) {
				return "", fmt.Errorf("%w: key %q is missing (found %q: keys are case-sensitive)",
					ErrInvalidSecret, key, printable(k))
			}
		}
		return "", fmt.Errorf("%w: key %q is missing", ErrInvalidSecret, key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: key %q must be a string", ErrInvalidSecret, key)
	}
	if required && strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%w: key %q is empty", ErrInvalidSecret, key)
	}
	if required && (s == "." || s == ".." || strings.ContainsFunc(s, unicode.IsControl)) {
		return "", fmt.Errorf("%w: key %q is not a usable Apinizer name", ErrInvalidSecret, key)
	}
	return s, nil
}

// sameCredential refuses a pending value that names another credential
// than the current one: its password must not be sent to that one.
func sameCredential(pending, current Credential, versionID string) error {
	if pending.ProjectName == current.ProjectName && pending.Username == current.Username {
		return nil
	}
	return fmt.Errorf("%w: pending version %s names credential %s/%s, current names %s/%s",
		ErrInvalidSecret, versionID, pending.ProjectName, pending.Username,
		current.ProjectName, current.Username)
}

// WithPassword returns the secret value with only the password replaced, as
// JSON. Every other key is kept byte for byte.
func (c Credential) WithPassword(p sensitive.String) (string, error) {
	fields := make(map[string]json.RawMessage, len(c.fields)+1)
	for k, v := range c.fields {
		fields[k] = v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p.Reveal()); err != nil {
		return "", errors.New("encoding the new password")
	}
	fields[keyPassword] = bytes.TrimSpace(buf.Bytes())
	buf.Reset()
	if err := enc.Encode(fields); err != nil {
		return "", errors.New("encoding the new secret value")
	}
	return strings.TrimSpace(buf.String()), nil
}
