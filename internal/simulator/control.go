package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// controlCredential is the body of the control API's credential endpoints.
type controlCredential struct {
	Password string `json:"password"`
	Changes  int    `json:"changes"`
}

// controlError is the body of a failed control API call.
type controlError struct {
	Error string `json:"error"`
}

// serveControl answers the control API; segs is the escaped path after
// "/_sim/".
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, segs []string) {
	if _, ok := matchPath(segs, "config"); ok {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.Config())
		case http.MethodPut:
			var cfg Config
			if !decodeControl(w, r, &cfg) {
				return
			}
			if err := cfg.Validate(); err != nil {
				writeJSON(w, http.StatusBadRequest, controlError{err.Error()})
				return
			}
			s.SetConfig(cfg)
			writeJSON(w, http.StatusOK, s.Config())
		default:
			controlMethods(w, "GET, PUT")
		}
		return
	}

	if p, ok := matchPath(segs, "credentials", "*", "*", ""); ok {
		switch r.Method {
		case http.MethodGet:
			password, found := s.Password(p[0], p[1])
			if !found {
				writeJSON(w, http.StatusNotFound, controlError{"no such credential"})
				return
			}
			writeJSON(w, http.StatusOK, controlCredential{password,
				s.PasswordChanges(p[0], p[1])})
		case http.MethodPut:
			var in controlCredential
			if !decodeControl(w, r, &in) {
				return
			}
			if in.Password == "" {
				writeJSON(w, http.StatusBadRequest, controlError{"password is empty"})
				return
			}
			s.SetCredential(p[0], p[1], in.Password)
			w.WriteHeader(http.StatusNoContent)
		default:
			controlMethods(w, "GET, PUT")
		}
		return
	}

	if _, ok := matchPath(segs, "faults"); ok {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.pendingFaults())
		case http.MethodPost:
			var faults []Fault
			if !decodeControl(w, r, &faults) {
				return
			}
			for i, f := range faults {
				if err := f.validate(); err != nil {
					writeJSON(w, http.StatusBadRequest,
						controlError{fmt.Sprintf("faults[%d]: %v", i, err)})
					return
				}
			}
			s.AddFaults(faults...)
			w.WriteHeader(http.StatusNoContent)
		default:
			controlMethods(w, "GET, POST")
		}
		return
	}

	if _, ok := matchPath(segs, "requests"); ok {
		if r.Method != http.MethodGet {
			controlMethods(w, "GET")
			return
		}
		writeJSON(w, http.StatusOK, s.Requests())
		return
	}

	if _, ok := matchPath(segs, "reset"); ok {
		if r.Method != http.MethodPost {
			controlMethods(w, "POST")
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
		return
	}

	writeJSON(w, http.StatusNotFound, controlError{"no such control endpoint"})
}

// decodeControl reads a JSON body strictly (unknown fields are refused, to
// catch typos) and answers 400 if it cannot.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{"invalid JSON body: " + err.Error()})
		return false
	}
	return true
}

// controlMethods answers 405 naming the allowed methods.
func controlMethods(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, controlError{"method not allowed"})
}
