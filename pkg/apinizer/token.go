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
	// Refresh re-reads the token after a 401. stale is the token that was
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
// The secret's SecretString (stage AWSCURRENT) is either the token itself,
// trimmed of surrounding white space, or JSON {"token": "..."}. An empty or
// invalid value, or a failed read, is an *Error of ClassToken with Op
// "read token secret <id>"; it never holds the value.
type SecretToken struct {
	client   SecretsManagerGetter
	secretID string
	// sem has one slot, held while the secret is read; waiting for it ends
	// with ctx, which a sync.Mutex could not do.
	sem   chan struct{}
	token atomic.Pointer[sensitive.String] // nil until the first good read
}

// NewSecretToken returns a SecretToken for the secret secretID (its name or
// ARN). Nothing is read until the token is needed.
func NewSecretToken(client SecretsManagerGetter, secretID string) *SecretToken {
	return &SecretToken{client: client, secretID: secretID, sem: make(chan struct{}, 1)}
}

// Token returns the cached token, reading the secret on the first call.
func (s *SecretToken) Token(ctx context.Context) (sensitive.String, error) {
	if t := s.token.Load(); t != nil {
		return *t, nil
	}
	if err := s.lock(ctx); err != nil {
		return sensitive.String{}, err
	}
	defer s.unlock()

	// another goroutine may have read it while this one waited
	if t := s.token.Load(); t != nil {
		return *t, nil
	}
	return s.read(ctx)
}

// Refresh reads the secret again, unless the cached token already differs
// from stale: then another caller has refreshed it, and that is returned.
func (s *SecretToken) Refresh(ctx context.Context,
	stale sensitive.String) (sensitive.String, error) {
	if err := s.lock(ctx); err != nil {
		return sensitive.String{}, err
	}
	defer s.unlock()

	if t := s.token.Load(); t != nil && !t.Equal(stale) {
		return *t, nil
	}
	return s.read(ctx)
}

// Format prints the secret's id, never the token, whatever the verb.
func (s *SecretToken) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apinizer.SecretToken(%s)", s.secretID)
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

// read gets the secret's current value and caches the token in it. A failed
// read leaves the cache as it was, so the next call tries again.
func (s *SecretToken) read(ctx context.Context) (sensitive.String, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(s.secretID),
		VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return sensitive.String{}, &Error{Op: s.op(), Class: ClassToken, Err: err}
	}
	if out == nil || out.SecretString == nil {
		return sensitive.String{}, &Error{Op: s.op(), Class: ClassToken,
			Message: "the secret has no SecretString (binary secrets are not supported)"}
	}
	token, problem := parseTokenSecret(*out.SecretString)
	if problem != "" {
		return sensitive.String{}, &Error{Op: s.op(), Class: ClassToken, Message: problem}
	}
	s.token.Store(&token)
	return token, nil
}

// parseTokenSecret reads a token secret's string: the token itself, or JSON
// {"token": "..."}. On failure it returns what is wrong, in words that never
// quote the value (JSON syntax errors would quote a character of it).
func parseTokenSecret(secret string) (sensitive.String, string) {
	t := strings.TrimSpace(secret)
	if t == "" {
		return sensitive.String{}, "the secret string is empty"
	}
	if strings.HasPrefix(t, "{") {
		var fields map[string]json.RawMessage
		if json.Unmarshal([]byte(t), &fields) != nil {
			return sensitive.String{}, "the secret string starts with '{' but is not valid JSON"
		}
		var token string
		raw, ok := fields["token"]
		if !ok || json.Unmarshal(raw, &token) != nil {
			return sensitive.String{}, `the JSON secret has no string field "token"`
		}
		if t = strings.TrimSpace(token); t == "" {
			return sensitive.String{}, `the JSON secret's "token" field is empty`
		}
	}
	if !validToken(t) {
		return sensitive.String{}, "the token holds spaces or characters an HTTP header cannot carry"
	}
	return sensitive.New(t), ""
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
