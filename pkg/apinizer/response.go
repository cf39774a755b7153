package apinizer

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// This file is the one place that turns an Apinizer answer into a Go value
// or a typed error.

// answer is one HTTP response, read (up to the limit) and closed.
type answer struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool     // the body went past Options.MaxBodyBytes; body is its start
	red      redactor // the secrets of the request this answers
}

// succeeded reports a 2xx status. Apinizer documents 200 only; any 2xx is
// read the same way, and its body decides.
func (a *answer) succeeded() bool { return a.status >= 200 && a.status <= 299 }

// readBody reads r up to limit bytes. A longer body is reported, not read
// further: the caller treats it as unreadable.
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

// envelope is the top level of a JSON answer in either shape: the older
// {"success", "error", "error_description"} and the newer {"status",
// "resultMessage"}.
type envelope struct {
	success          *bool
	status           string
	errorCode        string
	errorDescription string
	resultMessage    string
	deploymentResult json.RawMessage
	resultList       json.RawMessage
	// malformed is set when one of the fields above has a type that does
	// not fit: the answer is then no readable success.
	malformed bool
}

// readEnvelope reads body as a JSON object; false if it is none.
func readEnvelope(body []byte) (envelope, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return envelope{}, false
	}
	var e envelope
	known := map[string]any{
		"success":           &e.success,
		"status":            &e.status,
		"error":             &e.errorCode,
		"error_description": &e.errorDescription,
		"resultMessage":     &e.resultMessage,
	}
	for key, dst := range known {
		if raw, ok := fields[key]; ok && json.Unmarshal(raw, dst) != nil {
			e.malformed = true
		}
	}
	e.deploymentResult = fields["deploymentResult"]
	e.resultList = fields["resultList"]
	return e, true
}

// verdict is what an envelope says about the operation itself.
type verdict int

const (
	verdictUnknown verdict = iota // no readable, consistent status
	verdictSuccess
	verdictFailure
)

func (e envelope) verdict() verdict {
	if e.malformed {
		return verdictUnknown
	}
	ok := (e.success != nil && *e.success) || strings.EqualFold(e.status, "SUCCESS")
	failed := (e.success != nil && !*e.success) || strings.EqualFold(e.status, "FAILURE") ||
		e.errorCode != ""
	switch {
	case ok && !failed:
		return verdictSuccess
	case failed && !ok:
		return verdictFailure
	}
	return verdictUnknown
}

// code is "error" of the older shape or "status" of the newer one.
func (e envelope) code() string { return cmp.Or(e.errorCode, e.status) }

// message is "error_description" of the older shape or "resultMessage".
func (e envelope) message() string { return cmp.Or(e.errorDescription, e.resultMessage) }

// statusError turns a non-2xx answer into an *Error: the status, its class,
// and Apinizer's code and message, or an excerpt of a body that is no JSON
// envelope (an HTML page from a proxy, an empty body).
func statusError(op string, a *answer) *Error {
	e := &Error{Op: op, StatusCode: a.status, Class: classifyStatus(a.status)}
	switch {
	case a.status >= 300 && a.status <= 399:
		e.Message = "redirect not followed"
		if to := redirectTarget(a); to != "" {
			e.Message = "redirect to " + to + " not followed"
		}
	case a.tooLarge:
		e.Message = fmt.Sprintf("answer over %d bytes: %s", len(a.body), a.red.excerpt(a.body, true))
	default:
		env, ok := readEnvelope(a.body)
		if ok && (env.code() != "" || env.message() != "") {
			e.Code = a.red.clean(env.code(), maxCodeBytes)
			e.Message = a.red.clean(env.message(), maxMessageBytes)
		} else {
			e.Message = a.red.excerpt(a.body, false)
		}
	}
	return e
}

// redirectTarget is the Location of a redirect without user information,
// query or fragment, or "".
func redirectTarget(a *answer) string {
	u, err := url.Parse(a.header.Get("Location"))
	if err != nil || u.String() == "" {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return a.red.clean(u.String(), maxExcerptBytes)
}

// readChange reads the 2xx answer to a password change.
//
// A success envelope yields the Deployment, and a *DeploymentError unless it
// reached every gateway. A body that is no readable envelope also yields a
// *DeploymentError, with Reported false: the server took the request but
// what it did is unknown, which must not count as deployed.
//
// A 2xx carrying a failure envelope ({"success": false} or {"status":
// "FAILURE"}) is an *Error of ClassRejected: Apinizer refused the operation
// itself, in the envelope it uses for its 400 answers, so sending the same
// request again gets the same answer. It is not a ClassDeploymentFailed,
// which would tell the caller the password was saved.
func readChange(op string, a *answer) (*Deployment, error) {
	dep := &Deployment{}
	if a.tooLarge {
		return dep, &DeploymentError{Op: op, Deployment: *dep,
			Reason: fmt.Sprintf("answer over %d bytes could not be read", len(a.body))}
	}
	env, ok := readEnvelope(a.body)
	v := env.verdict()
	if !ok || v == verdictUnknown {
		return dep, &DeploymentError{Op: op, Deployment: *dep,
			Reason: "unreadable answer: " + quoteExcerpt(a.red.excerpt(a.body, false))}
	}

	var reason string
	*dep, reason = a.red.deployment(env.deploymentResult, env.resultMessage)
	if v == verdictFailure {
		return dep, &Error{Op: op, StatusCode: a.status, Class: ClassRejected,
			Code:    a.red.clean(env.code(), maxCodeBytes),
			Message: a.red.clean(env.message(), maxMessageBytes)}
	}
	if !dep.Deployed() {
		return dep, &DeploymentError{Op: op, Deployment: *dep, Reason: reason}
	}
	return dep, nil
}

// readUsernames reads the 2xx answer listing a project's credentials.
func readUsernames(op string, a *answer) ([]string, error) {
	unreadable := &Error{Op: op, StatusCode: a.status, Class: ClassRejected}
	if a.tooLarge {
		unreadable.Message = fmt.Sprintf("answer over %d bytes could not be read", len(a.body))
		return nil, unreadable
	}
	unreadable.Message = "unreadable answer: " + quoteExcerpt(a.red.excerpt(a.body, false))
	env, ok := readEnvelope(a.body)
	if !ok {
		return nil, unreadable
	}
	switch env.verdict() {
	case verdictFailure:
		return nil, &Error{Op: op, StatusCode: a.status, Class: ClassRejected,
			Code:    a.red.clean(env.code(), maxCodeBytes),
			Message: a.red.clean(env.message(), maxMessageBytes)}
	case verdictUnknown:
		return nil, unreadable
	}

	var list []struct {
		Username string `json:"username"`
	}
	if len(env.resultList) > 0 && json.Unmarshal(env.resultList, &list) != nil {
		return nil, unreadable
	}
	names := make([]string, 0, len(list))
	for _, c := range list {
		if c.Username != "" {
			names = append(names, c.Username)
		}
	}
	return names, nil
}

// quoteExcerpt marks an empty excerpt as such.
func quoteExcerpt(s string) string {
	if s == "" {
		return "empty body"
	}
	return s
}

// maxTokenLifetime caps the expires_in of an access token, so the sum of a
// time and the lifetime cannot overflow.
const maxTokenLifetime = 365 * 24 * time.Hour

// readAccessToken reads the 2xx answer of the token endpoint:
// {"access_token", "token_type": "Bearer", "expires_in": <seconds>}. The
// lifetime is 0 when expires_in is absent or 0: unknown, so the token is
// kept until a 401 says it expired.
//
// An answer it cannot use is an *Error of ClassToken. Its text never quotes
// the body, which may hold the token.
func readAccessToken(op string, a *answer) (sensitive.String, time.Duration, error) {
	fail := func(msg string) (sensitive.String, time.Duration, error) {
		return sensitive.String{}, 0, &Error{Op: op, StatusCode: a.status, Class: ClassToken,
			Message: msg}
	}
	if a.tooLarge {
		return fail(fmt.Sprintf("answer over %d bytes could not be read", len(a.body)))
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(a.body, &fields) != nil || fields == nil {
		return fail("the answer is not a JSON object")
	}

	var token, tokenType string
	raw, ok := fields["access_token"]
	if !ok || json.Unmarshal(raw, &token) != nil || token == "" {
		// a failure envelope inside a 2xx says why; it quotes no token
		if env, ok := readEnvelope(a.body); ok && env.code() != "" {
			return sensitive.String{}, 0, &Error{Op: op, StatusCode: a.status, Class: ClassToken,
				Code:    a.red.clean(env.code(), maxCodeBytes),
				Message: a.red.clean(env.message(), maxMessageBytes)}
		}
		return fail(`the answer has no string "access_token"`)
	}
	if !validToken(token) {
		return fail(`the answer's "access_token" holds characters a header cannot carry`)
	}
	if raw, ok := fields["token_type"]; ok {
		if json.Unmarshal(raw, &tokenType) != nil || !strings.EqualFold(tokenType, "Bearer") {
			return fail(`the answer's "token_type" is not "Bearer"`)
		}
	}

	var seconds float64
	if raw, ok := fields["expires_in"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &seconds) != nil || seconds < 0 {
			return fail(`the answer's "expires_in" is not a number of seconds`)
		}
	}
	lifetime := maxTokenLifetime
	if seconds < maxTokenLifetime.Seconds() {
		lifetime = time.Duration(seconds * float64(time.Second))
	}
	return sensitive.New(token), lifetime, nil
}
