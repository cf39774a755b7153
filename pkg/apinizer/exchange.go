package apinizer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// renewMargin is the most time before its expiry that an access token is
// renewed; a short-lived one is renewed when a tenth of its lifetime is
// left.
const renewMargin = time.Minute

// formContentType is the type of the token endpoint's request body.
const formContentType = "application/x-www-form-urlencoded"

// exchange obtains an access token for client credentials from
// POST {base}/apiops/auth/token, through the same HTTP client, attempt
// timeout, retries and deadline rules as every other call. It returns the
// token and its lifetime (0 when the answer gives none).
//
// A refused exchange (400, 401 and any other answer that is neither a 2xx
// nor transient) is an *Error of ClassToken carrying the status; a 5xx or
// no answer is ClassTransient. No error holds the client secret, the form
// or the access token.
func (c *Client) exchange(ctx context.Context, clientID string,
	clientSecret sensitive.String) (sensitive.String, time.Duration, error) {
	op := exchangeOp(clientID)
	// no trailing slash: the token path is documented without one
	u := c.origin + c.prefix + "/apiops/auth/token"

	a, err := c.do(ctx, &call{op: op, method: http.MethodPost, url: u,
		accept: "application/json", body: tokenForm(clientID, clientSecret),
		contentType: formContentType, password: clientSecret.Reveal(), anonymous: true})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Class != ClassTransient {
			e.Class = ClassToken
		}
		return sensitive.String{}, 0, err
	}
	return readAccessToken(op, a)
}

// tokenForm encodes the client credentials grant in the documented order.
// url.QueryEscape is the form encoding: a space becomes '+', and '+', '&',
// '=', '%' and every other reserved byte are escaped.
func tokenForm(clientID string, clientSecret sensitive.String) []byte {
	return []byte("grant_type=client_credentials" +
		"&client_id=" + url.QueryEscape(clientID) +
		"&client_secret=" + url.QueryEscape(clientSecret.Reveal()))
}

func exchangeOp(clientID string) string {
	return "get access token for client " + displayName(clientID)
}

// credentialSecret is a TokenSource whose secret may hold client
// credentials instead of a token; SecretToken is one. New puts an exchanger
// in front of it.
type credentialSecret interface {
	TokenSource
	// secret returns the secret's value, read once and then cached.
	secret(ctx context.Context) (*tokenSecret, error)
	// reread reads the secret again, unless the cached value is no longer
	// stale.
	reread(ctx context.Context, stale *tokenSecret) (*tokenSecret, error)
}

var _ credentialSecret = (*SecretToken)(nil)

// exchangeFunc obtains an access token and its lifetime for client
// credentials: Client.exchange, or a fake in tests.
type exchangeFunc func(ctx context.Context, clientID string,
	clientSecret sensitive.String) (sensitive.String, time.Duration, error)

// exchanger is the TokenSource a Client uses in front of a SecretToken. A
// secret holding a token is passed through. Client credentials are
// exchanged for an access token, which is kept until shortly before it
// expires and replaced after a 401.
//
// One exchange runs at a time: callers that need a token meanwhile wait for
// it and share its outcome, a failure included, so a burst of calls makes
// one exchange. Each Client has its own exchanger, as the access token
// belongs to the address it came from; the secret stays read once for all.
type exchanger struct {
	secrets  credentialSecret
	exchange exchangeFunc
	log      *slog.Logger
	now      func() time.Time // tests replace it

	mu      sync.Mutex
	current *accessToken // the latest access token; nil before the first
	flight  *flight      // the exchange under way; nil when none
}

// accessToken is an access token and when to renew it.
type accessToken struct {
	token   sensitive.String
	renewAt time.Time // zero: lifetime unknown, kept until a 401
}

// usable reports whether the token is not yet due for renewal at now.
func (a *accessToken) usable(now time.Time) bool {
	return a.renewAt.IsZero() || now.Before(a.renewAt)
}

// flight is one exchange, with its outcome once done is closed.
type flight struct {
	done  chan struct{}
	token sensitive.String
	err   error
	// abandoned is set when the exchange ended because its caller's ctx
	// did: a waiter whose own ctx is alive tries again.
	abandoned bool
}

func newExchanger(secrets credentialSecret, exchange exchangeFunc, log *slog.Logger) *exchanger {
	return &exchanger{secrets: secrets, exchange: exchange, log: log, now: time.Now}
}

// Token returns the secret's token, or the current access token, obtaining
// one if there is none or it is due for renewal.
func (e *exchanger) Token(ctx context.Context) (sensitive.String, error) {
	sec, err := e.secrets.secret(ctx)
	if err != nil {
		return sensitive.String{}, err
	}
	if !sec.exchanges() {
		return sec.token, nil
	}
	return e.access(ctx, sec, sensitive.String{})
}

// Refresh replaces stale, the token a 401 refused. A token from the secret
// is read again, as SecretToken.Refresh does; an access token is replaced
// by a new exchange. Either way, a replacement another caller already got
// is returned as it is.
func (e *exchanger) Refresh(ctx context.Context,
	stale sensitive.String) (sensitive.String, error) {
	sec, err := e.secrets.secret(ctx)
	if err != nil {
		return sensitive.String{}, err
	}
	if !sec.exchanges() {
		if !sec.token.Equal(stale) {
			return sec.token, nil
		}
		if sec, err = e.secrets.reread(ctx, sec); err != nil {
			return sensitive.String{}, err
		}
		if !sec.exchanges() {
			return sec.token, nil
		}
	}
	return e.access(ctx, sec, stale)
}

// access returns the current access token while it is usable and is not
// stale; otherwise it exchanges sec for a new one, or waits for the
// exchange under way and takes its outcome.
func (e *exchanger) access(ctx context.Context, sec *tokenSecret,
	stale sensitive.String) (sensitive.String, error) {
	for {
		e.mu.Lock()
		if a := e.current; a != nil && a.usable(e.now()) && !a.token.Equal(stale) {
			e.mu.Unlock()
			return a.token, nil
		}
		f, lead := e.flight, e.flight == nil
		if lead {
			f = &flight{done: make(chan struct{})}
			e.flight = f
		}
		e.mu.Unlock()

		if lead {
			e.lead(ctx, f, sec)
			return f.token, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return sensitive.String{}, &Error{Op: exchangeOp(sec.clientID), Class: ClassTransient,
				Message: "gave up waiting for the token exchange under way", Err: ctx.Err()}
		}
		if f.err != nil && f.abandoned && ctx.Err() == nil {
			continue // the exchange ended with its caller's ctx, not this one's
		}
		return f.token, f.err
	}
}

// lead runs the exchange of flight f and then lets its waiters go.
func (e *exchanger) lead(ctx context.Context, f *flight, sec *tokenSecret) {
	defer func() {
		e.mu.Lock()
		e.flight = nil
		e.mu.Unlock()
		close(f.done)
	}()
	f.token, f.err = e.renew(ctx, sec)
	f.abandoned = ctx.Err() != nil
}

// renew exchanges sec for a new access token. When the exchange is refused
// with a 401 or 400, the client secret may have been rotated since the
// secret was read: it is read again, once, and new credentials are
// exchanged in their turn; unchanged ones get the refusal.
func (e *exchanger) renew(ctx context.Context, sec *tokenSecret) (sensitive.String, error) {
	token, err := e.obtain(ctx, sec)
	if !refused(err) {
		return token, err
	}

	e.log.InfoContext(ctx, "apinizer: token exchange refused, reading the secret again",
		"clientId", sec.clientID)
	fresh, readErr := e.secrets.reread(ctx, sec)
	switch {
	case readErr != nil:
		return sensitive.String{}, readErr
	case !fresh.exchanges():
		return fresh.token, nil // the secret holds a token now
	case fresh.sameCredentials(sec):
		return sensitive.String{}, err
	}
	return e.obtain(ctx, fresh)
}

// obtain makes one exchange and keeps its token as the current one. The
// renewal time counts from before the request, so it errs early.
func (e *exchanger) obtain(ctx context.Context, sec *tokenSecret) (sensitive.String, error) {
	start := e.now()
	token, lifetime, err := e.exchange(ctx, sec.clientID, sec.clientSecret)
	if err != nil {
		return sensitive.String{}, err
	}
	a := &accessToken{token: token}
	if lifetime > 0 {
		a.renewAt = start.Add(lifetime - min(renewMargin, lifetime/10))
	}
	e.mu.Lock()
	e.current = a
	e.mu.Unlock()
	e.log.DebugContext(ctx, "apinizer: access token obtained",
		"clientId", sec.clientID, "lifetime", lifetime)
	return token, nil
}

// refused reports whether err is the token endpoint turning the client
// credentials down (401 or 400), as opposed to failing to answer.
func refused(err error) bool {
	var e *Error
	return errors.As(err, &e) &&
		(e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusBadRequest)
}
