package apinizer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxAttempts    = 4
	DefaultAttemptTimeout = 15 * time.Second
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultMaxBodyBytes   = 1 << 20
)

// helloName is the name sent to the token check endpoint.
const helloName = "rotator"

// Options tune a Client. The zero value of each field means its default.
type Options struct {
	// HTTPClient sends the requests; default: a client with dial, TLS and
	// idle timeouts. The Client uses a copy that never follows a redirect
	// (a redirect could carry the token to another host): a 3xx answer is
	// an *Error of ClassRejected.
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts made while failures are transient;
	// default DefaultMaxAttempts. The one retry after a 401 is not counted.
	MaxAttempts int
	// AttemptTimeout bounds each HTTP attempt, within the caller's deadline;
	// default DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// InitialBackoff is the first wait between attempts, before jitter;
	// default DefaultInitialBackoff.
	InitialBackoff time.Duration
	// MaxBackoff caps a wait; default DefaultMaxBackoff. A Retry-After may
	// ask for up to four times as much.
	MaxBackoff time.Duration
	// MaxBodyBytes is the most of a response body read; a longer one is
	// unreadable. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger gets a line for each retry, token refresh and token exchange,
	// never a password, token, client secret or body. Default: no logging.
	Logger *slog.Logger
	// MaxRequestsPerSecond, when above zero, spaces out the requests this
	// Client sends (every attempt counts), so that one warm function never
	// asks Apinizer more often. Waiting for a turn is bounded by the
	// caller's deadline.
	MaxRequestsPerSecond float64
	// MaxConcurrentRequests, when above zero, bounds the requests this
	// Client has in flight at once (every attempt counts; waiting for a
	// rate-limit turn counts as in flight). A caller waits for a free slot
	// until its ctx ends.
	MaxConcurrentRequests int
}

// Client calls Apinizer's management API at one base URL. It is safe for
// concurrent use.
type Client struct {
	origin         string // scheme://host[:port]
	prefix         string // escaped path prefix: "" or "/prefix"
	tokens         TokenSource
	httpClient     *http.Client
	maxAttempts    int
	attemptTimeout time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration
	maxBodyBytes   int64
	log            *slog.Logger
	limiter        *rate.Limiter // nil: no limit
	inFlight       chan struct{} // a slot per request in flight; nil: no bound

	// wait sleeps for d or until ctx ends; tests replace it to see waits.
	wait func(ctx context.Context, d time.Duration) error
	// now tells the time for Retry-After dates and deadline checks.
	now func() time.Time
}

// New returns a Client for the Apinizer management API at baseURL, such as
// https://apinizer.example.com or https://example.com/apinizer (a path
// prefix and a trailing slash are kept). baseURL must be https, or http
// when its host is a loopback address (127.0.0.0/8, ::1, localhost), and
// carry no user information, query or fragment.
//
// When tokens is a *SecretToken whose secret holds client credentials, the
// Client exchanges them for access tokens at POST {base}/apiops/auth/token
// itself, through its own HTTP client and rules, and keeps each token until
// shortly before it expires (see SecretToken).
func New(baseURL string, tokens TokenSource, opts Options) (*Client, error) {
	origin, prefix, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	if tokens == nil {
		return nil, errors.New("apinizer: no token source")
	}
	if opts.MaxAttempts < 0 || opts.AttemptTimeout < 0 || opts.InitialBackoff < 0 ||
		opts.MaxBackoff < 0 || opts.MaxBodyBytes < 0 || opts.MaxConcurrentRequests < 0 {
		return nil, errors.New("apinizer: options must not be negative")
	}

	c := &Client{
		origin:         origin,
		prefix:         prefix,
		tokens:         tokens,
		httpClient:     NoRedirectClient(opts.HTTPClient, true),
		maxAttempts:    orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		attemptTimeout: orDefault(opts.AttemptTimeout, DefaultAttemptTimeout),
		initialBackoff: orDefault(opts.InitialBackoff, DefaultInitialBackoff),
		maxBackoff:     orDefault(opts.MaxBackoff, DefaultMaxBackoff),
		maxBodyBytes:   orDefault(opts.MaxBodyBytes, DefaultMaxBodyBytes),
		log:            opts.Logger,
		wait:           sleep,
		now:            time.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRequestsPerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(opts.MaxRequestsPerSecond), 1)
	}
	if opts.MaxConcurrentRequests > 0 {
		c.inFlight = make(chan struct{}, opts.MaxConcurrentRequests)
	}
	if secrets, ok := tokens.(credentialSecret); ok {
		c.tokens = newExchanger(secrets, c.exchange, c.log)
	}
	return c, nil
}

// ChangePassword sends PATCH {base}/apiops/projects/{projectName}/credentials/{username}/
// with body {"password": "..."}.
//
// It succeeds (nil error) only on a 200 with a success envelope whose
// deployment reached every environment and pod. A 200 whose deployment
// failed anywhere, or is missing or unreadable, or whose body is no
// readable envelope, gives a *DeploymentError (ClassDeploymentFailed): the
// password is most likely saved in the Manager. Anything else is an *Error
// with its Class. Whenever a 200 arrived, the Deployment read from it is
// returned too, also beside an error.
//
// An empty project name, username or password, "." or ".." as a name, or a
// password that is not valid UTF-8 is refused before any request
// (ClassRejected). Sending the same password again is harmless, which is
// why transient failures, 500 included, are retried.
func (c *Client) ChangePassword(ctx context.Context, projectName, username string,
	password sensitive.String) (*Deployment, error) {
	op := credentialOp("change password of", projectName, username)
	if err := checkName(op, "project name", projectName); err != nil {
		return nil, err
	}
	if err := checkName(op, "username", username); err != nil {
		return nil, err
	}
	body, err := passwordBody(op, password)
	if err != nil {
		return nil, err
	}
	u, err := c.endpoint(op, "apiops/projects/{}/credentials/{}", projectName, username)
	if err != nil {
		return nil, err
	}

	a, err := c.do(ctx, &call{op: op, method: http.MethodPatch, url: u,
		accept: "application/json", body: body, password: password.Reveal()})
	if err != nil {
		return nil, err
	}
	return readChange(op, a)
}

// CheckToken calls GET {base}/apiops/test/hello/rotator, which Apinizer
// answers only for a valid token: a cheap check of the token and of the
// address. It returns nil on a 2xx answer, an *Error otherwise, with the
// same retries and 401 handling as ChangePassword.
func (c *Client) CheckToken(ctx context.Context) error {
	const op = "check token"
	u, err := c.endpoint(op, "apiops/test/hello/{}", helloName)
	if err != nil {
		return err
	}
	// the answer is text/plain, its errors JSON
	_, err = c.do(ctx, &call{op: op, method: http.MethodGet, url: u,
		accept: "text/plain, application/json"})
	return err
}

// ListCredentials returns the usernames of a project's credentials, from
// GET {base}/apiops/projects/{projectName}/credentials/ (project "admin"
// lists every credential). It is meant for tools, not for the rotation.
func (c *Client) ListCredentials(ctx context.Context, projectName string) ([]string, error) {
	op := "list credentials of project " + displayName(projectName)
	if err := checkName(op, "project name", projectName); err != nil {
		return nil, err
	}
	u, err := c.endpoint(op, "apiops/projects/{}/credentials", projectName)
	if err != nil {
		return nil, err
	}

	a, err := c.do(ctx, &call{op: op, method: http.MethodGet, url: u, accept: "application/json"})
	if err != nil {
		return nil, err
	}
	return readUsernames(op, a)
}

// Format prints the Client's address only: never its token source.
func (c *Client) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apinizer.Client(%s%s)", c.origin, c.prefix)
}

// NoRedirectClient returns a copy of hc, or of a default client with
// dial, TLS and idle timeouts, that returns a redirect as the answer instead
// of following it: a redirect could carry a token or a password to another
// host. hc itself is not changed. With reuseConnections false the default
// client opens a new connection for every request.
func NoRedirectClient(hc *http.Client, reuseConnections bool) *http.Client {
	var out http.Client
	if hc != nil {
		out = *hc
	} else {
		dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		out.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16, // a bulk batch runs up to ten calls at once
			DisableKeepAlives:     !reuseConnections,
			ForceAttemptHTTP2:     true,
		}
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
