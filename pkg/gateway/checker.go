package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// Defaults for the zero fields of Options.
const (
	DefaultAttemptTimeout = 5 * time.Second
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultMaxBodyBytes   = 64 << 10
)

// DefaultCheckTimeout bounds a Check whose ctx has no deadline.
const DefaultCheckTimeout = time.Minute

// TokenPath is the gateway's token endpoint, after the base URL.
const TokenPath = "/credential/token"

const (
	// minAttemptTime is the least time left before the deadline worth
	// starting another attempt with (less if AttemptTimeout is less).
	minAttemptTime = time.Second
	// jitter is the backoff's randomization factor: each wait is drawn
	// from ±50% of the exponential interval.
	jitter = 0.5
	// userAgent names this client in the gateway's access logs.
	userAgent = "apinizer-rotation/rotator"
)

// Options configure a Checker. The zero value of each optional field means
// its default.
type Options struct {
	// BaseURL is the gateway's address, such as https://gw.example.com or
	// https://example.com/gw: https, or http to a loopback host, with no
	// user information, query or fragment (apinizer.CheckBaseURL).
	BaseURL string
	// ProbePath, when set, is the path and optional query after BaseURL of
	// an API proxy guarded by Basic authentication on Apinizer's identity
	// store: the check is GET {BaseURL}{ProbePath} with the username and
	// password, accepted on any 2xx. Empty means the token endpoint:
	// POST {BaseURL}/credential/token, accepted on a 200 with an
	// access_token.
	ProbePath string
	// HTTPClient sends the requests; default: a client with dial and TLS
	// timeouts and no keep-alive, so that attempts spread over the
	// gateway's pods. The Checker uses a copy that never follows a
	// redirect, so the password never goes to another host.
	HTTPClient *http.Client
	// AttemptTimeout bounds each request, within ctx; default
	// DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// InitialBackoff is the first wait between attempts, before jitter;
	// default DefaultInitialBackoff. MaxBackoff caps every wait, a
	// Retry-After included; default DefaultMaxBackoff.
	InitialBackoff, MaxBackoff time.Duration
	// MaxBodyBytes is the most of an answer read; default
	// DefaultMaxBodyBytes. A token answer that is longer is not accepted.
	MaxBodyBytes int64
	// Logger gets a line for each retry and for the outcome, never a
	// password. Default: no logging.
	Logger *slog.Logger
}

// Checker verifies a username and password against the gateway. It is
// safe for concurrent use.
type Checker struct {
	target         string // the full URL asked, path escaped
	shown          string // target without its query, for Describe and logs
	probe          bool   // Basic authentication on ProbePath, not the token endpoint
	httpClient     *http.Client
	attemptTimeout time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration
	maxBodyBytes   int64
	log            *slog.Logger
}

// New returns a Checker for the gateway opts describe, or an error naming
// what is wrong with opts.
func New(opts Options) (*Checker, error) {
	if err := apinizer.CheckBaseURL(opts.BaseURL); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if opts.AttemptTimeout < 0 || opts.InitialBackoff < 0 || opts.MaxBackoff < 0 ||
		opts.MaxBodyBytes < 0 {
		return nil, errors.New("gateway: options must not be negative")
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil {
		return nil, errors.New("gateway: base URL is not a valid URL")
	}
	path := TokenPath
	if opts.ProbePath != "" {
		if err := checkProbePath(opts.ProbePath); err != nil {
			return nil, err
		}
		path = opts.ProbePath
	}

	// the password goes to the base URL's host and nowhere else
	target := base.Scheme + "://" + base.Host + strings.TrimRight(base.EscapedPath(), "/") + path
	u, err := url.Parse(target)
	if err != nil || u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil {
		return nil, errors.New("gateway: base URL and probe path do not make a URL on the gateway")
	}
	u.RawQuery, u.ForceQuery = "", false

	c := &Checker{
		target: target,
		shown:  u.String(),
		probe:  opts.ProbePath != "",
		// a new connection per attempt, which a load balancer may send
		// to another pod
		httpClient:     apinizer.NoRedirectClient(opts.HTTPClient, false),
		attemptTimeout: orDefault(opts.AttemptTimeout, DefaultAttemptTimeout),
		initialBackoff: orDefault(opts.InitialBackoff, DefaultInitialBackoff),
		maxBackoff:     orDefault(opts.MaxBackoff, DefaultMaxBackoff),
		maxBodyBytes:   orDefault(opts.MaxBodyBytes, DefaultMaxBodyBytes),
		log:            opts.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// checkProbePath accepts a path, with an optional query, that stays on the
// gateway: it starts with one '/', and has no fragment.
func checkProbePath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//"):
		return errors.New(`gateway: probe path must start with a single "/"`)
	case strings.Contains(p, "#"):
		return errors.New("gateway: probe path must not carry a fragment")
	case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("gateway: probe path must not hold spaces or control characters")
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" {
		return errors.New("gateway: probe path is not a valid path")
	}
	return nil
}

// Describe says what Check verifies, for logs; it holds no secret.
func (c *Checker) Describe() string {
	if c.probe {
		return fmt.Sprintf("gateway %s accepts the password (GET with Basic authentication)",
			c.shown)
	}
	return fmt.Sprintf("gateway %s accepts the password (client_credentials)", c.shown)
}

// Check returns nil once the gateway accepts username and password, and an
// *Error otherwise.
//
// While the answer means the password has not reached every pod yet (401,
// 403, 408, 429, 5xx, no answer, and from the token endpoint a 400
// invalid_client), it tries again after a jittered exponential wait, or
// after a 429's or 503's Retry-After, never more than MaxBackoff. No wait
// starts that would leave less than a second (or AttemptTimeout, if less)
// before ctx's deadline: the check then ends with the last failure. A ctx
// without a deadline gets DefaultCheckTimeout. Any other answer ends the
// check at once.
//
// Check sends nothing but the check itself: it changes nothing, and a
// token it is given is dropped.
func (c *Checker) Check(ctx context.Context, username string, password sensitive.String) error {
	switch {
	case username == "":
		return &Error{Message: "username is empty"}
	case password.Empty():
		return &Error{Message: "password is empty"}
	case c.probe && strings.Contains(username, ":"):
		return &Error{Message: `the username holds ":", which Basic authentication cannot carry`}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCheckTimeout)
		defer cancel()
	}
	scrub := newScrubber(username, password.Reveal())
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.initialBackoff
	bo.MaxInterval = c.maxBackoff
	bo.RandomizationFactor = jitter
	bo.Reset()

	var last *outcome // the latest failure
	for attempts := 0; ; {
		if callerDone(ctx) {
			return c.stopped(ctx, username, attempts, last)
		}

		// one attempt
		attempts++
		out := c.attempt(ctx, username, password, scrub)
		if out.verdict == accepted {
			c.log.DebugContext(ctx, "gateway: password accepted",
				"username", username, "attempt", attempts)
			return nil
		}
		if out.err != nil && callerDone(ctx) {
			return c.stopped(ctx, username, attempts, last)
		}
		last = &out

		// an answer a retry cannot change is final
		if out.verdict == refused {
			return c.giveUp(ctx, username, attempts, out, "not retried")
		}

		// wait, if the deadline leaves room for one more attempt
		wait := c.nextWait(bo, out)
		if !c.fits(ctx, wait) {
			return c.giveUp(ctx, username, attempts, out,
				"no time left before the deadline for another attempt")
		}
		c.log.InfoContext(ctx, "gateway: password not accepted yet, retrying",
			append(out.logAttrs(username, attempts), "wait", wait)...)
		if sleep(ctx, wait) != nil {
			return c.stopped(ctx, username, attempts, last)
		}
	}
}

// giveUp logs and returns the error for a check that ends on out.
func (c *Checker) giveUp(ctx context.Context, username string, attempts int, out outcome,
	why string) error {
	c.log.WarnContext(ctx, "gateway: password not accepted, giving up",
		append(out.logAttrs(username, attempts), "why", why)...)
	return &Error{Attempts: attempts, LastStatus: out.status, Message: out.reason,
		Err: out.err, stop: why}
}

// stopped is the error for a check whose ctx ended, with the last failure
// seen, if any.
func (c *Checker) stopped(ctx context.Context, username string, attempts int,
	last *outcome) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	e := &Error{Attempts: attempts, Err: cause, stop: "deadline reached"}
	if errors.Is(cause, context.Canceled) {
		e.stop = "cancelled"
	}
	if last != nil {
		e.LastStatus, e.Message = last.status, last.reason
	}
	c.log.WarnContext(ctx, "gateway: check stopped", "username", username,
		"attempts", attempts, "status", e.LastStatus, "why", e.stop)
	return e
}

// nextWait is the backoff's next interval, or what a 429 or 503 asks for
// in Retry-After, capped at MaxBackoff either way.
func (c *Checker) nextWait(bo *backoff.ExponentialBackOff, out outcome) time.Duration {
	wait := bo.NextBackOff()
	if out.status == http.StatusTooManyRequests || out.status == http.StatusServiceUnavailable {
		if d, ok := retryAfter(out.retryAfter, time.Now()); ok {
			wait = d
		}
	}
	return max(0, min(wait, c.maxBackoff))
}

// fits reports whether waiting d still leaves time for an attempt before
// ctx's deadline.
func (c *Checker) fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return true
	}
	return time.Now().Add(d + min(minAttemptTime, c.attemptTimeout)).Before(deadline)
}

// callerDone reports whether ctx has ended or its deadline has passed.
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// sleep waits for d, or until ctx ends, and then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
