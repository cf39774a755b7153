package simulator

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"time"
)

// maxBodyBytes bounds a password change's body.
const maxBodyBytes = 1 << 20

// changePassword answers PATCH /apiops/projects/{project}/credentials/{username}/.
//
// A pending fault that matches answers first; with Apply, the password is
// stored before it, when the request is otherwise valid, and with Drop the
// connection is closed instead of answered. Otherwise the token, the body,
// the project and the credential are checked in that order, the password is
// stored and deployed to the gateway pods, and the deployment is reported.
// Every answer waits for the configured latency first, after the store: a
// client that gives up early leaves the new password saved, as it would on
// Apinizer.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request,
	project, username string, entry *Request) {
	cfg := s.Config()

	// read the body first, so that the log notes the password's length
	password, bodyErr := readPassword(w, r)
	entry.PasswordLength = len(password)

	// a scripted fault answers before the normal handling
	fault, faulted := s.takeFault(project, username)

	// check the token, then what was sent, then store
	apiErr := s.authorize(r, cfg.Envelope, entry)
	if apiErr == nil {
		apiErr = bodyErr
	}
	if apiErr == nil && (!faulted || fault.Apply) {
		apiErr = s.store(cfg, project, username, password)
	}

	// the deploy takes time; nobody is left to answer if the client gave up
	took, ok := wait(r.Context(), cfg)
	if !ok {
		return
	}

	switch {
	case faulted && fault.Drop:
		s.dropConnection(w, entry)
	case faulted:
		writeFault(w, cfg.Envelope, fault)
	case apiErr != nil:
		writeError(w, cfg.Envelope, apiErr)
	default:
		writeJSON(w, http.StatusOK, changed(cfg, project, username, took))
	}
}

// readPassword reads the password from a JSON body. The error, if any, is
// the one Apinizer answers; it is reported only once the token is checked.
func readPassword(w http.ResponseWriter, r *http.Request) (string, *apiError) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBodyBytes))
		return "", errBadRequest(msgContentType)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return "", errBadRequest(msgMalformedBody)
	}
	var in struct {
		Password *string `json:"password"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return "", errBadRequest(msgMalformedBody)
	}
	if in.Password == nil || *in.Password == "" {
		return "", errBadRequest(msgEmptyPassword)
	}
	return *in.Password, nil
}

// store saves a changed password, if the project and the credential exist,
// and deploys it to the gateway pods (see credential.deploy).
func (s *Server) store(cfg Config, project, username, password string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	creds, ok := s.projects[project]
	if !ok {
		return errProjectNotFound(cfg.Envelope, project)
	}
	c, ok := creds[username]
	if !ok {
		return errCredentialNotFound(username)
	}
	c.password = password
	c.changes++
	c.deploy(cfg, project, username, password, s.now(), cfg.gatewayLag())
	return nil
}

// wait sleeps for the configured latency plus jitter, and reports how long
// that was and whether the client is still there.
func wait(ctx context.Context, cfg Config) (time.Duration, bool) {
	d := time.Duration(cfg.LatencyMS) * time.Millisecond
	if cfg.JitterMS > 0 {
		d += time.Duration(rand.IntN(cfg.JitterMS+1)) * time.Millisecond
	}
	if d == 0 {
		return 0, ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, true
	case <-ctx.Done():
		return d, false
	}
}
