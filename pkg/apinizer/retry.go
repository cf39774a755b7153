package apinizer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

const (
	// minAttemptTime is the least time left before the caller's deadline
	// worth starting another attempt with (less if AttemptTimeout is less).
	minAttemptTime = time.Second
	// retryAfterCap bounds a Retry-After, as a multiple of MaxBackoff.
	retryAfterCap = 4
	// jitter is the backoff's randomization factor: each wait is drawn
	// from ±50% of the exponential interval.
	jitter = 0.5
)

// do sends rq until it gets a 2xx answer or a final failure, and returns
// that answer or an *Error (or the token source's error).
//
// Only ClassTransient failures are tried again, at most MaxAttempts times in
// all, after a jittered exponential wait, or after the wait a 429 or 503
// asks for in Retry-After. A wait ends when ctx ends, and none starts that
// would leave too little time before ctx's deadline for another attempt:
// then the last failure is returned. A 401 makes the token source refresh
// the token once per call, and the request is sent again at once; a
// second 401 is final. An anonymous call (the token exchange) asks the
// token source for nothing, and its 401 is final at once.
func (c *Client) do(ctx context.Context, rq *call) (*answer, error) {
	if ctx.Err() != nil {
		return nil, stopped(ctx, rq.op, 0, nil)
	}
	var token sensitive.String
	if !rq.anonymous {
		var err error
		if token, err = c.tokens.Token(ctx); err != nil {
			return nil, tokenError(rq.op, err)
		}
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.initialBackoff
	bo.MaxInterval = c.maxBackoff
	bo.RandomizationFactor = jitter
	bo.Reset()

	attempts, transient, refreshed := 0, 0, false
	var last *Error // the latest failure, for the error if ctx ends
	for {
		if !rq.anonymous && !validToken(token.Reveal()) {
			return nil, &Error{Op: rq.op, Class: ClassToken, Attempts: attempts,
				Message: "the token source gave an empty token or one a header cannot carry"}
		}

		// one attempt
		attempts++
		a, err := c.attempt(ctx, rq, token)
		if err == nil && a.succeeded() {
			return a, nil
		}
		if err != nil && callerDone(ctx, c.now()) {
			return nil, stopped(ctx, rq.op, attempts, last)
		}
		fail := c.failure(rq, a, err)
		fail.Attempts = attempts
		last = fail

		// a rejected token: refresh it once and send again at once
		if fail.StatusCode == http.StatusUnauthorized && !refreshed && !rq.anonymous {
			refreshed = true
			c.log.DebugContext(ctx, "apinizer: token rejected, refreshing it",
				"op", rq.op, "attempt", attempts)
			if token, err = c.tokens.Refresh(ctx, token); err != nil {
				return nil, tokenError(rq.op, err)
			}
			continue
		}

		// anything but a transient failure is final, and so is the last try
		if fail.Class != ClassTransient {
			return nil, fail
		}
		if transient++; transient >= c.maxAttempts {
			c.log.WarnContext(ctx, "apinizer: giving up", logAttrs(rq, fail)...)
			return nil, fail
		}

		// wait, if the caller's deadline leaves room for one more attempt
		wait := c.nextWait(bo, a)
		if callerDone(ctx, c.now()) {
			return nil, stopped(ctx, rq.op, attempts, fail)
		}
		if !c.fits(ctx, wait) {
			c.log.WarnContext(ctx, "apinizer: giving up, no time left before the deadline",
				append(logAttrs(rq, fail), "wait", wait)...)
			return nil, noTimeLeft(fail)
		}
		c.log.WarnContext(ctx, "apinizer: retrying", append(logAttrs(rq, fail), "wait", wait)...)
		if err := c.wait(ctx, wait); err != nil {
			return nil, stopped(ctx, rq.op, attempts, fail)
		}
	}
}

// attempt sends one request, bounded by AttemptTimeout, and reads its
// answer, holding one of the MaxConcurrentRequests slots meanwhile. An
// error is a failure to get a whole answer.
func (c *Client) attempt(ctx context.Context, rq *call, token sensitive.String) (*answer, error) {
	if c.inFlight != nil {
		// a free slot first: the wait is the caller's, not the attempt's
		release, err := c.takeSlot(ctx, rq)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	req, err := newRequest(ctx, rq, token)
	if err != nil {
		return nil, &Error{Op: rq.op, Class: ClassRejected, Message: "cannot build the request", Err: err}
	}
	if c.limiter != nil {
		// wait for a turn; a turn that would come after the deadline is a
		// transient failure now
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("waiting for a turn under the request rate limit: %w", err)
		}
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	body, tooLarge, err := readBody(resp.Body, c.maxBodyBytes)
	if err != nil {
		return nil, err
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body, tooLarge: tooLarge,
		red: newRedactor(rq.password, token.Reveal())}, nil
}

// takeSlot waits for one of the MaxConcurrentRequests slots, until ctx
// ends. A slot that comes free with less than an attempt's time left
// before ctx's deadline is not taken: the request would be cut off midway,
// with nobody to learn whether Apinizer saved the password.
func (c *Client) takeSlot(ctx context.Context, rq *call) (release func(), err error) {
	release = func() { <-c.inFlight }
	select {
	case c.inFlight <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case c.inFlight <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free request slot: %w", ctx.Err())
	}
	if !c.fits(ctx, 0) {
		release()
		return nil, &Error{Op: rq.op, Class: ClassTransient,
			Message: "a request slot came free too close to the deadline; nothing was sent"}
	}
	return release, nil
}

// failure turns an attempt that did not succeed into an *Error: a non-2xx
// answer by its status, no answer (refused, reset, EOF, attempt timeout) as
// ClassTransient.
func (c *Client) failure(rq *call, a *answer, err error) *Error {
	if a != nil {
		return statusError(rq.op, a)
	}
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	// the URL in a *url.Error is known to the caller; keep the cause only
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	e := &Error{Op: rq.op, Class: ClassTransient, Message: "no answer", Err: err}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Message = fmt.Sprintf("no answer within %s", c.attemptTimeout)
	}
	return e
}

// nextWait is the wait before the next attempt: the backoff's next
// interval, capped at MaxBackoff, or what a 429 or 503 asks for in
// Retry-After, capped at retryAfterCap times MaxBackoff.
func (c *Client) nextWait(bo *backoff.ExponentialBackOff, a *answer) time.Duration {
	wait := max(0, min(bo.NextBackOff(), c.maxBackoff))
	if a != nil &&
		(a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(a.header.Get("Retry-After"), c.now()); ok {
			wait = min(d, retryAfterCap*c.maxBackoff)
		}
	}
	return wait
}

// fits reports whether waiting d still leaves time for an attempt before
// ctx's deadline.
func (c *Client) fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return true
	}
	return c.now().Add(d + min(minAttemptTime, c.attemptTimeout)).Before(deadline)
}

// retryAfter reads a Retry-After value: whole seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
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

// callerDone reports whether the caller's ctx has ended or its deadline
// has passed (an attempt's own timeout may fire a moment before ctx's).
func callerDone(ctx context.Context, now time.Time) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !now.Before(deadline)
}

// stopped is the error for a call whose ctx ended: ClassTransient, wrapping
// ctx's error, with the last failure seen, if any, in its message.
func stopped(ctx context.Context, op string, attempts int, last *Error) *Error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	e := &Error{Op: op, Class: ClassTransient, Attempts: attempts, Err: cause,
		Message: "deadline reached before a usable answer"}
	if errors.Is(cause, context.Canceled) {
		e.Message = "cancelled before a usable answer"
	}
	if last != nil {
		e.StatusCode, e.Code = last.StatusCode, last.Code
		if d := last.describe(); d != "" {
			e.Message += "; last: " + d
		}
	}
	return e
}

// noTimeLeft marks a transient failure that was not tried again because
// the caller's deadline was too near. It stays an *Error of the same class.
func noTimeLeft(fail *Error) *Error {
	const why = "no time left before the deadline for another attempt"
	if fail.Err == nil {
		fail.Err = errors.New(why)
	} else {
		fail.Err = fmt.Errorf("%w (%s)", fail.Err, why)
	}
	return fail
}

// describe is e's message and cause, without the operation.
func (e *Error) describe() string {
	switch {
	case e.Err == nil:
		return e.Message
	case e.Message == "":
		return e.Err.Error()
	}
	return e.Message + ": " + e.Err.Error()
}

// tokenError passes on a token source's error; one that is not an *Error
// becomes one of ClassToken, so ClassOf sorts it.
func tokenError(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: op, Class: ClassToken, Message: "cannot get the token", Err: err}
}

// logAttrs describes a failure for a log line: never a body or message,
// which may quote what was sent.
func logAttrs(rq *call, fail *Error) []any {
	attrs := []any{"op", rq.op, "attempt", fail.Attempts, "class", fail.Class.String()}
	if fail.StatusCode != 0 {
		attrs = append(attrs, "status", fail.StatusCode)
	}
	if fail.Err != nil {
		attrs = append(attrs, "error", fail.Err.Error())
	}
	return attrs
}
