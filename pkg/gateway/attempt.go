package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// verdict is what one attempt tells about the password.
type verdict int

const (
	// notYet: the gateway, or one of its pods, does not take the password
	// yet, or did not answer; another attempt may tell otherwise.
	notYet verdict = iota
	// accepted: the gateway took the password.
	accepted
	// refused: an answer another attempt will not change.
	refused
)

// outcome is the result of one attempt.
type outcome struct {
	verdict    verdict
	status     int    // 0 when no answer came
	reason     string // for errors and logs, free of secrets
	retryAfter string // the Retry-After header
	err        error  // the transport error, when no answer came
}

// attempt sends one request, bounded by AttemptTimeout, and judges the
// answer.
func (c *Checker) attempt(ctx context.Context, username string, password sensitive.String,
	scrub scrubber) outcome {
	ctx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, username, password)
	if err != nil {
		return outcome{verdict: refused, reason: "cannot build the request"}
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return c.noAnswer(err, scrub)
	}
	defer resp.Body.Close()

	body, tooLarge, err := readBody(resp.Body, c.maxBodyBytes)
	if err != nil {
		out := c.noAnswer(err, scrub)
		out.status = resp.StatusCode
		out.reason = fmt.Sprintf("HTTP %d, then %s", resp.StatusCode, out.reason)
		return out
	}
	return c.judge(resp, body, tooLarge, scrub)
}

// newRequest builds the request of one attempt: the token endpoint's form,
// or the probe with Basic authentication.
func (c *Checker) newRequest(ctx context.Context, username string,
	password sensitive.String) (*http.Request, error) {
	if c.probe {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.target, http.NoBody)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(username, password.Reveal())
		req.Header.Set("Accept", "*/*")
		req.Header.Set("User-Agent", userAgent)
		return req, nil
	}

	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {username},
		"client_secret": {password.Reveal()},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.target,
		strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	return req, nil
}

// judge decides what an answer means. Only the status, and from a JSON
// body the presence of an access_token or an OAuth error code, are read:
// nothing else of the body reaches an error.
func (c *Checker) judge(resp *http.Response, body []byte, tooLarge bool,
	scrub scrubber) outcome {
	status := resp.StatusCode
	out := outcome{verdict: refused, status: status, reason: fmt.Sprintf("HTTP %d", status),
		retryAfter: resp.Header.Get("Retry-After")}

	switch {
	case status >= 200 && status <= 299 && c.probe:
		out.verdict = accepted
	case status >= 200 && status <= 299:
		switch {
		case status != http.StatusOK:
			out.reason += " without an access_token"
		case tooLarge:
			out.reason += fmt.Sprintf(" with a body over %d bytes", c.maxBodyBytes)
		case !hasAccessToken(body):
			out.reason += " without an access_token"
		default:
			out.verdict = accepted
		}
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusRequestTimeout, status == http.StatusTooManyRequests,
		status >= 500 && status <= 599:
		out.verdict = notYet
	case status >= 300 && status <= 399:
		out.reason += ", a redirect, not followed"
	default:
		// RFC 6749 lets a token endpoint answer bad client credentials with
		// 400 invalid_client: the password may not have arrived yet
		code := ""
		if !c.probe && !tooLarge {
			code = scrub.clean(oauthError(body))
		}
		if code != "" {
			out.reason += " " + code
		}
		if status == http.StatusBadRequest && code == "invalid_client" {
			out.verdict = notYet
		}
	}
	return out
}

// noAnswer is the outcome of a request that got no whole answer.
func (c *Checker) noAnswer(err error, scrub scrubber) outcome {
	// the URL in a *url.Error is known; keep the cause only
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	reason := "no answer: " + scrub.clean(err.Error())
	if errors.Is(err, context.DeadlineExceeded) {
		reason = fmt.Sprintf("no answer within %s", c.attemptTimeout)
	}
	return outcome{verdict: notYet, reason: reason, err: err}
}

// logAttrs describe a failed attempt for a log line.
func (out outcome) logAttrs(username string, attempt int) []any {
	attrs := []any{"username", username, "attempt", attempt}
	if out.status != 0 {
		attrs = append(attrs, "status", out.status)
	}
	return append(attrs, "reason", out.reason)
}

// readBody reads at most limit bytes of r, and reports whether there was
// more.
func readBody(r io.Reader, limit int64) (body []byte, tooLarge bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return body[:limit], true, nil
	}
	return body, false, nil
}

// hasAccessToken reports whether body is a JSON object with a non-empty
// string access_token.
func hasAccessToken(body []byte) bool {
	var v struct {
		AccessToken string `json:"access_token"`
	}
	return json.Unmarshal(body, &v) == nil && v.AccessToken != ""
}

// oauthError is the "error" code of an OAuth error body, when it looks
// like one (a short word of lowercase letters, digits and '_'), else "".
func oauthError(body []byte) string {
	var v struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == "" || len(v.Error) > 64 {
		return ""
	}
	for _, r := range v.Error {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return ""
		}
	}
	return v.Error
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
