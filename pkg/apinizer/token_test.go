package apinizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// fakeSecrets is a SecretsManagerGetter that counts its calls. Each call
// takes the next of values (the last one repeats); a value of nil answers
// without a SecretString. gate, when set, holds every call until closed.
type fakeSecrets struct {
	mu     sync.Mutex
	values []*string
	err    error
	calls  int
	inputs []secretsmanager.GetSecretValueInput
	gate   chan struct{}
}

func (f *fakeSecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.inputs = append(f.inputs, *in)
	if f.err != nil {
		return nil, f.err
	}
	v := f.values[min(f.calls, len(f.values))-1]
	return &secretsmanager.GetSecretValueOutput{SecretString: v}, nil
}

func (f *fakeSecrets) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestSecretTokenReadsTheSecretString(t *testing.T) {
	tests := []struct {
		name    string
		secret  *string
		want    string
		wantErr string
	}{
		{name: "a raw token is used", secret: aws.String(testToken), want: testToken},
		{name: "a raw token is trimmed of white space", secret: aws.String("\n  " + testToken + " \r\n"),
			want: testToken},
		{name: "JSON with a token field is read", secret: aws.String(`{"token": "` + testToken + `"}`),
			want: testToken},
		{name: "JSON with other fields and spaces around is read",
			secret: aws.String(` {"user": "ops", "token": " ` + testToken + ` "} `), want: testToken},
		{name: "an empty string is refused", secret: aws.String(""), wantErr: "the secret string is empty"},
		{name: "white space alone is refused", secret: aws.String(" \n\t"), wantErr: "the secret string is empty"},
		{name: "a binary secret is refused", secret: nil, wantErr: "no SecretString"},
		{name: "invalid JSON is refused", secret: aws.String(`{"token": "` + testToken),
			wantErr: "not valid JSON"},
		{name: "JSON without a token field is refused", secret: aws.String(`{"accessToken": "x"}`),
			wantErr: `no string field "token"`},
		{name: "a token field of the wrong type is refused", secret: aws.String(`{"token": 42}`),
			wantErr: `no string field "token"`},
		{name: "an empty token field is refused", secret: aws.String(`{"token": "  "}`),
			wantErr: `"token" field is empty`},
		{name: "a token with a space inside is refused", secret: aws.String("tok " + testToken),
			wantErr: "characters an HTTP header cannot carry"},
		{name: "a token with a line break inside is refused", secret: aws.String(testToken + "\nX: y"),
			wantErr: "characters an HTTP header cannot carry"},
		{name: "a token with non-ASCII letters is refused", secret: aws.String("tök" + testToken),
			wantErr: "characters an HTTP header cannot carry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := &fakeSecrets{values: []*string{tt.secret}}
			st := NewSecretToken(sm, "apinizer/token")
			got, err := st.Token(t.Context())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if got.Reveal() != tt.want {
					t.Errorf("token %q, want %q", got.Reveal(), tt.want)
				}
				return
			}
			e := asError(t, err)
			if e.Class != ClassToken || e.Op != "read token secret apinizer/token" {
				t.Errorf("class %v op %q, want token and the secret's id", e.Class, e.Op)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			assertNoSecret(t, err)
			if !got.Empty() {
				t.Errorf("a token came back beside the error")
			}
		})
	}
}

func TestSecretTokenAsksForTheCurrentVersion(t *testing.T) {
	sm := &fakeSecrets{values: []*string{aws.String(testToken)}}
	const arn = "arn:aws:secretsmanager:eu-west-1:1:secret:tok"
	if _, err := NewSecretToken(sm, arn).Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	in := sm.inputs[0]
	if aws.ToString(in.SecretId) != arn ||
		aws.ToString(in.VersionStage) != "AWSCURRENT" || in.VersionId != nil {
		t.Errorf("input %+v, want the id and stage AWSCURRENT", in)
	}
}

func TestSecretTokenReadsOnceAndCaches(t *testing.T) {
	sm := &fakeSecrets{values: []*string{aws.String(testToken)}}
	st := NewSecretToken(sm, "s")
	if sm.count() != 0 {
		t.Fatalf("read before the token was needed")
	}
	for range 3 {
		if _, err := st.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
}

func TestSecretTokenReadsOnceForConcurrentCallers(t *testing.T) {
	sm := &fakeSecrets{values: []*string{aws.String(testToken)}, gate: make(chan struct{})}
	st := NewSecretToken(sm, "s")

	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			tok, err := st.Token(t.Context())
			if err == nil && tok.Reveal() != testToken {
				err = errors.New("wrong token")
			}
			errs <- err
		})
	}
	time.Sleep(20 * time.Millisecond) // let them all queue behind the first read
	close(sm.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := sm.count(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
}

func TestSecretTokenRefresh(t *testing.T) {
	t.Run("refreshing the rejected token reads the secret again", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String("old"), aws.String("new")}}
		st := NewSecretToken(sm, "s")
		old, _ := st.Token(t.Context())
		got, err := st.Refresh(t.Context(), old)
		if err != nil || got.Reveal() != "new" {
			t.Fatalf("Refresh = %q, %v; want new", got.Reveal(), err)
		}
		if again, _ := st.Token(t.Context()); again.Reveal() != "new" {
			t.Errorf("Token after Refresh = %q, want the new one cached", again.Reveal())
		}
		if n := sm.count(); n != 2 {
			t.Errorf("%d reads, want 2", n)
		}
	})

	t.Run("a stale token already replaced is not read again", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String("old"), aws.String("new")}}
		st := NewSecretToken(sm, "s")
		old, _ := st.Token(t.Context())
		_, _ = st.Refresh(t.Context(), old)
		got, err := st.Refresh(t.Context(), old)
		if err != nil || got.Reveal() != "new" {
			t.Fatalf("Refresh = %q, %v; want the cached new one", got.Reveal(), err)
		}
		if n := sm.count(); n != 2 {
			t.Errorf("%d reads, want 2", n)
		}
	})

	t.Run("concurrent refreshes of one stale token read once", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String("old"), aws.String("new")}}
		st := NewSecretToken(sm, "s")
		old, _ := st.Token(t.Context())
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if got, err := st.Refresh(t.Context(), old); err != nil || got.Reveal() != "new" {
					t.Errorf("Refresh = %q, %v", got.Reveal(), err)
				}
			})
		}
		wg.Wait()
		if n := sm.count(); n != 2 {
			t.Errorf("%d reads, want 2", n)
		}
	})

	t.Run("a refresh before any Token reads the secret", func(t *testing.T) {
		sm := &fakeSecrets{values: []*string{aws.String("tok")}}
		got, err := NewSecretToken(sm, "s").Refresh(t.Context(), sensitive.String{})
		if err != nil || got.Reveal() != "tok" {
			t.Fatalf("Refresh = %q, %v", got.Reveal(), err)
		}
	})
}

func TestSecretTokenDoesNotCacheAFailure(t *testing.T) {
	awsErr := errors.New("AccessDeniedException: not allowed")
	sm := &fakeSecrets{values: []*string{aws.String(testToken)}, err: awsErr}
	st := NewSecretToken(sm, "s")

	_, err := st.Token(t.Context())
	if !errors.Is(err, awsErr) || ClassOf(err) != ClassToken {
		t.Fatalf("got %v, want a token error wrapping the AWS error", err)
	}
	if !strings.Contains(err.Error(), "read token secret s") {
		t.Errorf("error %q does not name the secret", err)
	}

	sm.mu.Lock()
	sm.err = nil
	sm.mu.Unlock()
	if tok, err := st.Token(t.Context()); err != nil || tok.Reveal() != testToken {
		t.Errorf("second Token = %v, want the token", err)
	}
	if n := sm.count(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

func TestSecretTokenStopsWaitingWhenTheContextEnds(t *testing.T) {
	sm := &fakeSecrets{values: []*string{aws.String(testToken)}, gate: make(chan struct{})}
	defer close(sm.gate)
	st := NewSecretToken(sm, "s")
	go func() { _, _ = st.Token(context.Background()) }() // holds the read
	time.Sleep(10 * time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := st.Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || ClassOf(err) != ClassToken {
		t.Errorf("got %v, want a token error wrapping the deadline", err)
	}
}

func TestTokensNeverPrint(t *testing.T) {
	sm := &fakeSecrets{values: []*string{aws.String(testToken)}}
	st := NewSecretToken(sm, "s")
	_, _ = st.Token(t.Context())
	static := StaticToken(sensitive.New(testToken))
	c, err := New("https://h.example", st, Options{})
	if err != nil {
		t.Fatal(err)
	}

	for _, v := range []any{st, static, c, &static} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
			assertNoSecretIn(t, fmt.Sprintf("%T with %s", v, format), fmt.Sprintf(format, v))
		}
	}
	var logs lockedBuffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("tokens", "static", static, "secret", st, "client", c)
	assertNoSecretIn(t, "log", logs.String())
	if b, _ := json.Marshal(static); strings.Contains(string(b), testToken) {
		t.Errorf("JSON %s shows the token", b)
	}
}

func TestStaticToken(t *testing.T) {
	tok, err := StaticToken(sensitive.New(testToken)).Token(t.Context())
	if err != nil || tok.Reveal() != testToken {
		t.Errorf("Token = %v", err)
	}
	tok, err = StaticToken(sensitive.New(testToken)).Refresh(t.Context(), tok)
	if err != nil || tok.Reveal() != testToken {
		t.Errorf("Refresh = %v", err)
	}
	if _, err := (StaticToken{}).Token(t.Context()); ClassOf(err) != ClassToken {
		t.Errorf("empty token: %v, want a token error", err)
	}
}
