package simulator

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Fault is a scripted failure for the next password changes that match it.
// Pending faults are tried in the order they were added, before any normal
// handling (and so before the token is checked); the first that matches
// answers and is used up once.
type Fault struct {
	// Status is the HTTP status to answer, such as 429, 500, 502, 503 or
	// 504; zero or anything outside 200..999 means 500.
	Status int `json:"status"`
	// Count is how many requests the fault answers; zero means 1.
	Count int `json:"count"`
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string `json:"retryAfter,omitempty"`
	// Body is the raw body to send, its Content-Type guessed from its first
	// character ('{' or '[' JSON, '<' HTML, else plain text). Empty means a
	// failure in the configured envelope, or a proxy's HTML page for 502 and
	// 504.
	Body string `json:"body,omitempty"`
	// EmptyBody sends no body at all, whatever Body says.
	EmptyBody bool `json:"emptyBody,omitempty"`
	// Project and Username limit the fault to one project or credential;
	// empty matches any password change.
	Project  string `json:"project,omitempty"`
	Username string `json:"username,omitempty"`
	// Apply stores the password before answering with the fault, when the
	// request is otherwise valid: Apinizer took the change, but the client
	// is told it failed.
	Apply bool `json:"apply,omitempty"`
	// Drop closes the connection without any answer instead of answering
	// with Status (Body, EmptyBody and RetryAfter are then unused). With
	// Apply, the password is stored and deployed first: Apinizer applied
	// the change, then the connection dropped. The request log records the
	// status 444.
	Drop bool `json:"drop,omitempty"`
}

// validate reports what is wrong with a fault sent to the control API.
func (f Fault) validate() error {
	if f.Status != 0 && (f.Status < 200 || f.Status > 999) {
		return fmt.Errorf("fault status %d is not an HTTP status", f.Status)
	}
	if f.Count < 0 {
		return errors.New("fault count is negative")
	}
	return nil
}

// matches reports whether f applies to a password change.
func (f Fault) matches(project, username string) bool {
	return (f.Project == "" || f.Project == project) &&
		(f.Username == "" || f.Username == username)
}

// AddFaults queues faults behind those already pending.
func (s *Server) AddFaults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fault := range f {
		if fault.Status < 200 || fault.Status > 999 {
			fault.Status = http.StatusInternalServerError
		}
		if fault.Count <= 0 {
			fault.Count = 1
		}
		s.faults = append(s.faults, fault)
	}
}

// pendingFaults returns a copy of the pending faults, Count being what is
// left of each.
func (s *Server) pendingFaults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Fault{}, s.faults...)
}

// takeFault uses up the first pending fault that matches, if any.
func (s *Server) takeFault(project, username string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if !f.matches(project, username) {
			continue
		}
		taken := *f
		if f.Count--; f.Count == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return taken, true
	}
	return Fault{}, false
}

// writeFault answers with a fault.
func writeFault(w http.ResponseWriter, env Envelope, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	switch {
	case f.EmptyBody:
		w.WriteHeader(f.Status)
	case f.Body != "":
		w.Header().Set("Content-Type", sniff(f.Body))
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
	case f.Status == http.StatusBadGateway || f.Status == http.StatusGatewayTimeout:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(proxyPage(f.Status)))
	default:
		writeError(w, env, &apiError{f.Status, seedCode(f.Status), statusText(f.Status)})
	}
}

// sniff guesses the Content-Type of a scripted body.
func sniff(body string) string {
	trimmed := strings.TrimSpace(body)
	switch {
	case strings.HasPrefix(trimmed, "{"), strings.HasPrefix(trimmed, "["):
		return contentTypeJSON
	case strings.HasPrefix(trimmed, "<"):
		return "text/html"
	}
	return "text/plain;charset=UTF-8"
}

// proxyPage is the HTML error page a load balancer in front of Apinizer
// sends.
func proxyPage(status int) string {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" +
		title + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// statusText is the reason phrase for a status, or a generic one.
func statusText(status int) string {
	if text := http.StatusText(status); text != "" {
		return text
	}
	return fmt.Sprintf("HTTP %d", status)
}
