package apinizer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// TokenSource supplies the bearer token.
type TokenSource interface {
	// Token returns the token to send.
	Token(ctx context.Context) (sensitive.String, error)
	// Refresh gets a new token after a 401. stale is the token that was
	// rejected; if the cached token already differs from stale (another
	// goroutine refreshed), it returns the cached one without re-reading.
	Refresh(ctx context.Context, stale sensitive.String) (sensitive.String, error)
}

// SecretsManagerGetter is the one Secrets Manager call the token source
// makes.
type SecretsManagerGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var (
	_ SecretsManagerGetter = (*secretsmanager.Client)(nil)
	_ TokenSource          = (*SecretToken)(nil)
	_ TokenSource          = StaticToken{}
)

// SecretToken reads the token from a Secrets Manager secret once, on the
// first Token call, keeps it for the life of the process (one Lambda cold
// start), and reads it again on Refresh. It is safe for concurrent use: any
// number of goroutines may call it, and only one read runs at a time.
//
// The secret's SecretString (stage AWSCURRENT) is one of:
//
//   - the token itself, trimmed of surrounding white space;
//   - JSON {"token": "..."};
//   - JSON {"clientId": "...", "clientSecret": "..."}: client credentials,
//     taken exactly as written, which a Client exchanges for short-lived
//     access tokens at POST {base}/apiops/auth/token.
//
// Other JSON fields are ignored. An empty or invalid value (both kinds in
// one secret, a field of the wrong type, a missing or empty field), or a
// failed read, is an *Error of ClassToken with Op "read token secret <id>";
// it names the field at fault and never holds a value.
//
// Only a Client made by New can use client credentials: it puts an exchange
// in front of the SecretToken, keeps each access token until shortly before
// it expires, and reads the secret again when an exchange is refused.
// Token and Refresh called directly on a SecretToken that holds client
// credentials return an *Error of ClassToken.
type SecretToken struct {
	client   SecretsManagerGetter
	secretID string
	// sem has one slot, held while the secret is read; waiting for it ends
	// with ctx, which a sync.Mutex could not do.
	sem     chan struct{}
	current atomic.Pointer[tokenSecret] // nil until the first good read
}

// tokenSecret is what a token secret holds: a token, or client credentials
// to exchange for access tokens. It is never printed.
type tokenSecret struct {
	token        sensitive.String // empty when the secret holds client credentials
	clientID     string
	clientSecret sensitive.String
}

// exchanges reports whether the secret holds client credentials.
func (t *tokenSecret) exchanges() bool { return t.token.Empty() }

// sameCredentials reports whether t and o hold the same client credentials.
func (t *tokenSecret) sameCredentials(o *tokenSecret) bool {
	return t.clientID == o.clientID && t.clientSecret.Equal(o.clientSecret)
}

// NewSecretToken returns a SecretToken for the secret secretID (its name or
// ARN). Nothing is read until the token is needed.
func NewSecretToken(client SecretsManagerGetter, secretID string) *SecretToken {
	return &SecretToken{client: client, secretID: secretID, sem: make(chan struct{}, 1)}
}

// Token returns the cached token, reading the secret on the first call.
func (s *SecretToken) Token(ctx context.Context) (sensitive.String, error) {
	sec, err := s.secret(ctx)
	if err != nil {
		return sensitive.String{}, err
	}
	return s.bearer(sec)
}

// Refresh reads the secret again, unless the cached token already differs
// from stale: then another caller has refreshed it, and that is returned.
func (s *SecretToken) Refresh(ctx context.Context,
	stale sensitive.String) (sensitive.String, error) {
	sec := s.current.Load()
	if sec == nil || sec.token.Equal(stale) {
		var err error
		if sec, err = s.reread(ctx, sec); err != nil {
			return sensitive.String{}, err
		}
	}
	return s.bearer(sec)
}

// Format prints the secret's id, never the token, whatever the verb.
func (s *SecretToken) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apinizer.SecretToken(%s)", s.secretID)
}

// secret returns the secret's value, reading it on the first call.
func (s *SecretToken) secret(ctx context.Context) (*tokenSecret, error) {
	if sec := s.current.Load(); sec != nil {
		return sec, nil
	}
	return s.reread(ctx, nil)
}

// reread reads the secret again, unless the cached value is no longer
// stale: then another caller has read it meanwhile, and that is returned.
// With stale nil, it reads only when nothing is cached yet.
func (s *SecretToken) reread(ctx context.Context, stale *tokenSecret) (*tokenSecret, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()

	if sec := s.current.Load(); sec != nil && sec != stale {
		return sec, nil
	}
	return s.read(ctx)
}

// bearer is the token sec holds, or an error if it holds client credentials,
// which a SecretToken cannot exchange on its own.
func (s *SecretToken) bearer(sec *tokenSecret) (sensitive.String, error) {
	if sec.exchanges() {
		return sensitive.String{}, &Error{Op: s.op(), Class: ClassToken,
			Message: "the secret holds client credentials, " +
				"which only a Client made by New exchanges for a token"}
	}
	return sec.token, nil
}

func (s *SecretToken) lock(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &Error{Op: s.op(), Class: ClassToken,
			Message: "gave up waiting for another read of the secret", Err: ctx.Err()}
	}
}

func (s *SecretToken) unlock() { <-s.sem }

func (s *SecretToken) op() string { return "read token secret " + s.secretID }

// read gets the secret's current value and caches it. A failed read leaves
// the cache as it was, so the next call tries again.
func (s *SecretToken) read(ctx context.Context) (*tokenSecret, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(s.secretID),
		VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return nil, &Error{Op: s.op(), Class: ClassToken, Err: err}
	}
	if out == nil || out.SecretString == nil {
		return nil, &Error{Op: s.op(), Class: ClassToken,
			Message: "the secret has no SecretString (binary secrets are not supported)"}
	}
	sec, problem := parseTokenSecret(*out.SecretString)
	if problem != "" {
		return nil, &Error{Op: s.op(), Class: ClassToken, Message: problem}
	}
	s.current.Store(sec)
	return sec, nil
}

// parseTokenSecret reads a token secret's string: the token itself, JSON
// {"token": "..."} or JSON {"clientId": "...", "clientSecret": "..."}. On
// failure it returns what is wrong, in words that name the field at fault
// but never quote a value (JSON syntax errors would quote a character of
// it).
func parseTokenSecret(secret string) (*tokenSecret, string) {
	t := strings.TrimSpace(secret)
	if t == "" {
		return nil, "the secret string is empty"
	}
	if !strings.HasPrefix(t, "{") {
		return staticSecret(t)
	}

	var fields map[string]json.RawMessage
	if json.Unmarshal([]byte(t), &fields) != nil {
		return nil, "the secret string starts with '{' but is not valid JSON"
	}
	_, hasToken := fields["token"]
	_, hasID := fields["clientId"]
	_, hasSecret := fields["clientSecret"]
	switch {
	case hasToken && (hasID || hasSecret):
		return nil, `the JSON secret holds both "token" and client credentials ` +
			`("clientId", "clientSecret"): keep one kind`
	case hasID || hasSecret:
		id, problem := stringField(fields, "clientId")
		if problem != "" {
			return nil, problem
		}
		secret, problem := stringField(fields, "clientSecret")
		if problem != "" {
			return nil, problem
		}
		return &tokenSecret{clientID: id, clientSecret: sensitive.New(secret)}, ""
	case !hasToken:
		return nil, `the JSON secret has no string field "token", nor "clientId" and "clientSecret"`
	}
	token, problem := stringField(fields, "token")
	if problem != "" {
		return nil, problem
	}
	return staticSecret(strings.TrimSpace(token))
}

// stringField reads the field key of a JSON secret: a string that is not
// empty or white space alone. It is returned exactly as written.
func stringField(fields map[string]json.RawMessage, key string) (string, string) {
	var v string
	raw, ok := fields[key]
	if !ok || json.Unmarshal(raw, &v) != nil {
		return "", fmt.Sprintf("the JSON secret has no string field %q", key)
	}
	if strings.TrimSpace(v) == "" {
		return "", fmt.Sprintf("the JSON secret's %q field is empty", key)
	}
	return v, ""
}

// staticSecret is a secret holding the token t, if a header can carry it.
func staticSecret(t string) (*tokenSecret, string) {
	if !validToken(t) {
		return nil, "the token holds spaces or characters an HTTP header cannot carry"
	}
	return &tokenSecret{token: sensitive.New(t)}, ""
}

// validToken reports whether t can go into an Authorization header: one or
// more visible ASCII characters, no spaces.
func validToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7F {
			return false
		}
	}
	return true
}

// StaticToken is a fixed token, for tests and local tools:
// apinizer.StaticToken(sensitive.New(token)). Refresh cannot change it.
type StaticToken sensitive.String

// Token returns the token; an empty one is an *Error of ClassToken.
func (t StaticToken) Token(context.Context) (sensitive.String, error) {
	s := sensitive.String(t)
	if s.Empty() {
		return s, &Error{Op: "static token", Class: ClassToken, Message: "the token is empty"}
	}
	return s, nil
}

// Refresh returns the same token: a fixed token has nothing to re-read.
func (t StaticToken) Refresh(ctx context.Context, _ sensitive.String) (sensitive.String, error) {
	return t.Token(ctx)
}

// Format prints sensitive.Placeholder, whatever the verb.
func (t StaticToken) Format(f fmt.State, verb rune) { sensitive.String(t).Format(f, verb) }

// LogValue implements slog.LogValuer.
func (t StaticToken) LogValue() slog.Value { return sensitive.String(t).LogValue() }

// MarshalJSON implements json.Marshaler: the placeholder, never the token.
func (t StaticToken) MarshalJSON() ([]byte, error) { return sensitive.String(t).MarshalJSON() }
