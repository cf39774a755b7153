package simulator

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"time"
)

// The gateway side of the simulator.
//
// A password change stores the password in the Manager at once and deploys
// it to every pod of every configured environment, except the pods a
// DeployFailure names, which keep the password they had. A pod starts to
// accept a deployed password GatewayLagMS after the change (the one it held
// before keeps working until then). The gateway accepts a username and
// password only when every pod of every environment accepts it: a check
// that passes means no request can still meet a pod with the old password.
// With no environment configured there is no gateway, and nothing is
// accepted.
//
// The pods exist whatever the deploymentResult shape: PodsPerEnv of them in
// each environment, named by PodName.

// gatewayTokenLifetime is the expires_in of a gateway access token, in
// seconds.
const gatewayTokenLifetime = 3600

// rollout is one password deployed to one pod, and when it was deployed.
type rollout struct {
	password string
	at       time.Time
}

// podKey names one pod of one environment in credential.rollouts.
func podKey(env, pod string) string { return env + "\x00" + pod }

// gatewayLag is GatewayLagMS as a duration.
func (c Config) gatewayLag() time.Duration {
	return time.Duration(c.GatewayLagMS) * time.Millisecond
}

// deploy records that password was deployed at "at" to every pod of cfg
// that DeployFailures lets it reach, and forgets the rollouts that a newer
// one has replaced for good. The caller holds s.mu.
func (c *credential) deploy(cfg Config, project, username, password string,
	at time.Time, lag time.Duration) {
	if c.rollouts == nil {
		c.rollouts = make(map[string][]rollout)
	}
	for _, env := range cfg.Environments {
		for n := range cfg.PodsPerEnv {
			pod := PodName(env, n)
			if _, ok := deployTo(cfg, project, username, env, pod); !ok {
				continue
			}
			key := podKey(env, pod)
			hist := c.rollouts[key]
			if len(hist) == 0 {
				hist = []rollout{{password: c.seeded}}
			}
			hist = append(hist, rollout{password: password, at: at})
			c.rollouts[key] = hist[live(hist, at, lag):]
		}
	}
}

// live is the index of the rollout a pod serves at now: the newest one
// that is at least lag old, or the first one, which has always taken
// effect.
func live(hist []rollout, now time.Time, lag time.Duration) int {
	i := 0
	for j, r := range hist {
		if !now.Before(r.at.Add(lag)) {
			i = j
		}
	}
	return i
}

// accepts reports whether every pod of cfg serves password for c at now;
// false when there is no pod at all. The caller holds s.mu.
func (c *credential) accepts(cfg Config, password string, now time.Time) bool {
	if password == "" {
		return false
	}
	pods := 0
	for _, env := range cfg.Environments {
		for n := range cfg.PodsPerEnv {
			pods++
			served := c.seeded
			if hist := c.rollouts[podKey(env, PodName(env, n))]; len(hist) > 0 {
				served = hist[live(hist, now, cfg.gatewayLag())].password
			}
			if subtle.ConstantTimeCompare([]byte(served), []byte(password)) != 1 {
				return false
			}
		}
	}
	return pods > 0
}

// GatewayAccepts reports whether the gateway accepts username and password
// now: whether every pod of every environment serves that password for the
// credential, GatewayLagMS having passed since it was deployed. The
// username is looked up in every project, as usernames are unique on
// Apinizer; if the simulator holds it in more than one, any of them will
// do.
func (s *Server) GatewayAccepts(username, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, creds := range s.projects {
		if c, ok := creds[username]; ok && c.accepts(s.cfg, password, now) {
			return true
		}
	}
	return false
}

// serveGateway answers the gateway's endpoints, which the simulator serves
// beside the management API, and reports whether the path was one of them:
//
//	POST /credential/token   client_credentials form → access token or 401
//	ANY  /gateway/...        Basic authentication → 200 "OK" or 401
//
// They answer the same in either envelope: the gateway is not APIOps.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request, segs []string,
	entry *Request) bool {
	if _, ok := matchPath(segs, "credential", "token"); ok {
		if allowMethod(w, r, http.MethodPost) {
			s.gatewayToken(w, r, entry)
		}
		return true
	}
	if len(segs) > 1 && segs[0] == "gateway" {
		s.gatewayProbe(w, r, entry)
		return true
	}
	return false
}

// gatewayToken answers POST /credential/token: a form with
// grant_type=client_credentials and a credential's username and password as
// client_id and client_secret. The access token it gives is for the
// gateway's APIs; the management API does not accept it.
func (s *Server) gatewayToken(w http.ResponseWriter, r *http.Request, entry *Request) {
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

	if !s.GatewayAccepts(id, secret) {
		writeJSON(w, http.StatusUnauthorized, tokenResponse{
			Error: codeInvalidClient, ErrorDescription: "Bad client credentials"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: rand.Text(), TokenType: "Bearer",
		ExpiresIn: gatewayTokenLifetime})
}

// gatewayProbe answers any request under /gateway/, an API proxy guarded by
// a Basic authentication policy on Apinizer's identity store.
func (s *Server) gatewayProbe(w http.ResponseWriter, r *http.Request, entry *Request) {
	username, password, ok := r.BasicAuth()
	if ok {
		entry.Username = username
	}
	if !ok || !s.GatewayAccepts(username, password) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Apinizer", charset="UTF-8"`)
		writeText(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	writeText(w, http.StatusOK, "OK")
}
