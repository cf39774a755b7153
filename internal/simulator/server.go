package simulator

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxRequests is how many requests the log keeps; older ones are dropped
// first, so a long-running simulator does not grow without bound.
const MaxRequests = 10000

// statusClientGone is recorded when the client went away before the answer
// (nginx's "client closed request").
const statusClientGone = 499

// Request is what the simulator records about one request to the Apinizer
// API or to the gateway endpoints (requests to the /_sim/ control API are
// not recorded). It holds no password, no token and no Authorization value.
type Request struct {
	// Time is when the request arrived, Done when its answer was written
	// or it ended without one.
	Time time.Time `json:"time"`
	Done time.Time `json:"done"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the decoded URL path; RawPath is the path as sent, escaped.
	// Neither includes the query string.
	Path    string `json:"path"`
	RawPath string `json:"rawPath"`
	// Project and Username are the decoded path parameters, when the path
	// has them; for the token endpoints Username is the client_id, for the
	// gateway probe the Basic authentication username.
	Project  string `json:"project,omitempty"`
	Username string `json:"username,omitempty"`
	// Status is the HTTP status answered, 499 when the client went away
	// before the answer, or 444 when a Fault with Drop closed the
	// connection without one.
	Status int `json:"status"`
	// HasAuthorization reports whether an Authorization header was sent.
	HasAuthorization bool `json:"hasAuthorization"`
	// TokenAccepted reports whether its bearer token was accepted.
	TokenAccepted bool `json:"tokenAccepted"`
	// PasswordLength is the length in bytes of the password a password
	// change carried (0 if none).
	PasswordLength int `json:"passwordLength"`
}

// credential is one stored credential: its password in the Manager, and
// what each gateway pod holds (see gateway.go).
type credential struct {
	password string
	changes  int
	// seeded is the password SetCredential deployed to every pod at once;
	// a pod with no rollouts holds it.
	seeded string
	// rollouts are, per pod (podKey), the passwords deployed to it after
	// seeded, oldest first; the first one has always taken effect.
	rollouts map[string][]rollout
}

// Server is an in-memory Apinizer management API and an http.Handler. Make
// one with New (or Start); every method is safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	cfg      Config
	projects map[string]map[string]*credential // project → username → credential
	faults   []Fault                           // pending, in order
	requests []Request
	issued   map[string]time.Time // access token → expiry
	now      func() time.Time     // the clock for token expiry
}

// New returns a Server answering as cfg says, with no projects. It panics if
// cfg does not pass Config.Validate; Start returns the error instead.
func New(cfg Config) *Server {
	s := &Server{now: time.Now}
	s.SetConfig(cfg)
	s.Reset()
	return s
}

// SetConfig replaces the configuration; requests already being answered
// finish under the old one. It panics if cfg does not pass Config.Validate.
func (s *Server) SetConfig(cfg Config) {
	if err := cfg.Validate(); err != nil {
		panic("simulator: invalid config: " + err.Error())
	}
	cfg = cfg.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
}

// Config returns a copy of the configuration in use, defaults filled in.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.withDefaults()
}

// AddProject creates an empty project; an existing one is left as it is.
func (s *Server) AddProject(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.project(name)
}

// project returns the named project's credentials, creating the project.
// The caller holds s.mu.
func (s *Server) project(name string) map[string]*credential {
	creds, ok := s.projects[name]
	if !ok {
		creds = make(map[string]*credential)
		s.projects[name] = creds
	}
	return creds
}

// SetCredential creates or overwrites a credential, and its project, with
// the given password, which every gateway pod accepts at once (no
// GatewayLagMS, no DeployFailures). It does not count as a password change.
func (s *Server) SetCredential(project, username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	creds := s.project(project)
	c, ok := creds[username]
	if !ok {
		c = &credential{}
		creds[username] = c
	}
	c.password = password
	c.seeded = password
	c.rollouts = nil
}

// Password returns a credential's current password, and whether it exists.
func (s *Server) Password(project, username string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.projects[project][username]
	if !ok {
		return "", false
	}
	return c.password, true
}

// PasswordChanges returns how many password changes (PATCH requests,
// including faults with Apply) stored a password for the credential.
func (s *Server) PasswordChanges(project, username string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.projects[project][username]; ok {
		return c.changes
	}
	return 0
}

// MostAtOnce returns the most of reqs that were being answered at the same
// instant: the load a client put on the server, from a part of the log.
func MostAtOnce(reqs []Request) int {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(reqs))
	for _, r := range reqs {
		edges = append(edges, edge{r.Time, 1}, edge{r.Done, -1})
	}
	// at one instant an answer ends before the next request counts
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets every project, credential, pending fault, issued token and
// recorded request. The configuration stays.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects = make(map[string]map[string]*credential)
	s.faults = nil
	s.requests = nil
	s.issued = make(map[string]time.Time)
}

// record appends one entry to the request log.
func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= MaxRequests {
		n := copy(s.requests, s.requests[len(s.requests)-MaxRequests+1:])
		s.requests = s.requests[:n]
	}
	s.requests = append(s.requests, r)
}

// ServeHTTP answers one request to the Apinizer API or to the control API.
//
// Paths are matched on their escaped form, segment by segment, and each
// segment is unescaped on its own: "a%2Fb" is the one name "a/b". Matching
// is case-sensitive, and the trailing slash of the credential paths is
// required, as on Apinizer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if segs[0] == "_sim" {
		s.serveControl(w, r, segs[1:])
		return
	}

	sw := &statusWriter{ResponseWriter: w}
	entry := Request{
		Time:             time.Now(),
		Method:           r.Method,
		Path:             r.URL.Path,
		RawPath:          r.URL.EscapedPath(),
		HasAuthorization: r.Header.Get("Authorization") != "",
	}
	// recorded even when the answer is aborted (see dropConnection)
	defer func() {
		if sw.recorded {
			return
		}
		entry.Done = time.Now()
		entry.Status = sw.status
		if entry.Status == 0 {
			entry.Status = statusClientGone
		}
		s.record(entry)
	}()
	s.serveAPI(sw, r, segs, &entry)
}

// serveAPI routes a request to the Apinizer endpoints.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, segs []string, entry *Request) {
	if p, ok := matchPath(segs, "apiops", "projects", "*", "credentials", "*", ""); ok {
		entry.Project, entry.Username = p[0], p[1]
		if allowMethod(w, r, http.MethodPatch) {
			s.changePassword(w, r, p[0], p[1], entry)
		}
		return
	}
	if p, ok := matchPath(segs, "apiops", "projects", "*", "credentials", ""); ok {
		entry.Project = p[0]
		if allowMethod(w, r, http.MethodGet) {
			s.listCredentials(w, r, p[0], entry)
		}
		return
	}
	if _, ok := matchPath(segs, "apiops", "auth", "token"); ok {
		if allowMethod(w, r, http.MethodPost) {
			s.issueToken(w, r, entry)
		}
		return
	}
	if p, ok := matchPath(segs, "apiops", "test", "hello", "*"); ok {
		if allowMethod(w, r, http.MethodGet) {
			s.hello(w, r, p[0], entry)
		}
		return
	}
	if _, ok := matchPath(segs, "apiops", "test", "healthcheck"); ok {
		if allowMethod(w, r, http.MethodGet) {
			writeText(w, http.StatusOK, "OK")
		}
		return
	}
	if s.serveGateway(w, r, segs, entry) {
		return
	}
	writeText(w, http.StatusNotFound, "Not Found")
}

// matchPath reports whether the escaped path segments segs fit pattern,
// where "*" stands for one non-empty segment, and returns those segments
// unescaped, in order.
func matchPath(segs []string, pattern ...string) ([]string, bool) {
	if len(segs) != len(pattern) {
		return nil, false
	}
	var params []string
	for i, want := range pattern {
		if want != "*" {
			if segs[i] != want {
				return nil, false
			}
			continue
		}
		p, err := url.PathUnescape(segs[i])
		if err != nil || p == "" {
			return nil, false
		}
		params = append(params, p)
	}
	return params, true
}

// allowMethod answers 405 unless r uses method.
func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	return false
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	// recorded is set when the request is already in the log.
	recorded bool
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
