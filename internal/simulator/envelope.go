package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// contentTypeJSON is the Content-Type of every JSON answer, as Apinizer
// writes it.
const contentTypeJSON = "application/json;charset=UTF-8"

// The texts Apinizer answers with (in the current envelope, unless named
// seed), and the simulator's own where Apinizer's are not documented.
const (
	msgEmptyKey      = "Empty Key! Client must be authenticated to access this resource."
	msgInvalidToken  = "Token is not valid!"
	msgExpiredToken  = "Token was expired!"
	msgSeedInvalid   = "Invalid token"
	msgEmptyPassword = "Credential password can not be empty!"
	msgDeployFailed  = "Credential saved successfully but deployment to environments failed"
	msgDeployed      = "Deployment completed successfully"
	msgSomeFailed    = "Deployment failed for one or more environments"
	msgNoEnvironment = "No environment to deploy to"
	msgEnvDeployed   = "Deployed successfully"
	msgContentType   = "Content type must be application/json"
	msgMalformedBody = "Malformed JSON request body"
)

// The current envelope's "status" values.
const (
	statusSuccess = "SUCCESS"
	statusFailure = "FAILURE"
)

// The seed envelope's and the token endpoint's "error" codes.
const (
	codeBadRequest     = "bad_request"
	codeUnauthorized   = "unauthorized_client"
	codeNotFound       = "not_found"
	codeInvalidClient  = "invalid_client"
	codeInvalidRequest = "invalid_request"
)

// apiError is a failure answered in the configured envelope: Code is the
// seed envelope's "error", Message its "error_description" or the current
// envelope's "resultMessage".
type apiError struct {
	Status  int
	Code    string
	Message string
}

// seedError is the seed envelope's failure body.
type seedError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// currentFailure is the current envelope's failure body.
type currentFailure struct {
	Status        string `json:"status"`
	ResultMessage string `json:"resultMessage"`
}

// errUnauthorized is a 401 with the current envelope's message msg.
func errUnauthorized(env Envelope, msg string) *apiError {
	if env == EnvelopeSeed {
		msg = msgSeedInvalid
	}
	return &apiError{http.StatusUnauthorized, codeUnauthorized, msg}
}

// errBadRequest is a 400 with msg.
func errBadRequest(msg string) *apiError {
	return &apiError{http.StatusBadRequest, codeBadRequest, msg}
}

// errProjectNotFound is 404 in the seed envelope and 400 in the current one,
// each with its own wording.
func errProjectNotFound(env Envelope, project string) *apiError {
	if env == EnvelopeSeed {
		return &apiError{http.StatusNotFound, codeNotFound, fmt.Sprintf(
			"Project(%s) was not found or user does not have privilege to access it!",
			project)}
	}
	return errBadRequest(fmt.Sprintf(
		"Project (%s) is not found or user does not have privilege to access it!", project))
}

// errCredentialNotFound is the 400 for an unknown username.
func errCredentialNotFound(username string) *apiError {
	return errBadRequest(fmt.Sprintf("Credential (username: %s) was not found!", username))
}

// writeError answers e in the envelope env.
func writeError(w http.ResponseWriter, env Envelope, e *apiError) {
	if env == EnvelopeSeed {
		writeJSON(w, e.Status, seedError{e.Code, e.Message})
		return
	}
	writeJSON(w, e.Status, currentFailure{statusFailure, e.Message})
}

// writeJSON answers v as JSON. The values written are the package's own
// types, which always marshal.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"status":"FAILURE","resultMessage":"simulator: cannot encode answer"}`)
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeText answers a plain-text body.
func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// seedCode is the seed envelope's "error" value for an HTTP status.
func seedCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return codeBadRequest
	case http.StatusUnauthorized:
		return codeUnauthorized
	case http.StatusForbidden:
		return "access_denied"
	case http.StatusNotFound:
		return codeNotFound
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusInternalServerError:
		return "server_error"
	case http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	}
	text := http.StatusText(status)
	if text == "" {
		return "error"
	}
	return strings.ReplaceAll(strings.ToLower(text), " ", "_")
}
