package simulator

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// TokenLifetime is how long an access token from the token endpoint is
// accepted.
const TokenLifetime = time.Hour

// tokenState is what the simulator knows about a bearer token.
type tokenState int

const (
	tokenUnknown tokenState = iota
	tokenAccepted
	tokenExpired
)

// authorize checks the request's bearer token, notes in entry whether it was
// accepted, and returns the 401 to answer otherwise.
func (s *Server) authorize(r *http.Request, env Envelope, entry *Request) *apiError {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	switch {
	case scheme == "" || (strings.EqualFold(scheme, "Bearer") && token == ""):
		return errUnauthorized(env, msgEmptyKey)
	case !strings.EqualFold(scheme, "Bearer"):
		return errUnauthorized(env, msgInvalidToken)
	}

	switch s.checkToken(token) {
	case tokenAccepted:
		entry.TokenAccepted = true
		return nil
	case tokenExpired:
		return errUnauthorized(env, msgExpiredToken)
	default:
		return errUnauthorized(env, msgInvalidToken)
	}
}

// checkToken looks a token up among the configured ones and the issued ones,
// forgetting an issued token once it has expired (and been reported so).
func (s *Server) checkToken(token string) tokenState {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return tokenAccepted
		}
	}
	expiry, ok := s.issued[token]
	switch {
	case !ok:
		return tokenUnknown
	case s.now().Before(expiry):
		return tokenAccepted
	default:
		delete(s.issued, token)
		return tokenExpired
	}
}

// tokenResponse is the token endpoint's answer, success or failure.
type tokenResponse struct {
	AccessToken      string `json:"access_token,omitempty"`
	TokenType        string `json:"token_type,omitempty"`
	ExpiresIn        int64  `json:"expires_in,omitempty"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// issueToken answers POST /apiops/auth/token: a form with
// grant_type=client_credentials, and the username and password of any
// stored credential as client_id and client_secret.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, entry *Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, tokenResponse{
			Error: codeInvalidRequest, ErrorDescription: "Malformed form body"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, tokenResponse{Error: "unsupported_grant_type",
			ErrorDescription: "Only the client_credentials grant type is supported"})
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	entry.Username = id

	token, ok := s.issue(id, secret)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, tokenResponse{
			Error: codeInvalidClient, ErrorDescription: "Bad client credentials"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: token, TokenType: "Bearer",
		ExpiresIn: int64(TokenLifetime / time.Second)})
}

// issue returns a new access token if id and secret are the username and
// password of a credential in any project.
func (s *Server) issue(id, secret string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" || secret == "" {
		return "", false
	}
	found := false
	for _, creds := range s.projects {
		c, ok := creds[id]
		if ok && subtle.ConstantTimeCompare([]byte(c.password), []byte(secret)) == 1 {
			found = true
			break
		}
	}
	if !found {
		return "", false
	}
	token := rand.Text()
	s.issued[token] = s.now().Add(TokenLifetime)
	return token, true
}

// hello answers GET /apiops/test/hello/{name}, the cheap token check.
func (s *Server) hello(w http.ResponseWriter, r *http.Request, name string, entry *Request) {
	env := s.Config().Envelope
	if apiErr := s.authorize(r, env, entry); apiErr != nil {
		writeError(w, env, apiErr)
		return
	}
	writeText(w, http.StatusOK, "Hello "+name)
}
