package main

import (
	"log/slog"
	"net/http"
	"time"
)

// logRequests logs one line per request: method, escaped path, status and
// duration. Never the query string, a header or a body, which may hold a
// password or a token.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = 499 // the client went away before the answer
		}
		logger.Info("request", "method", r.Method, "path", r.URL.EscapedPath(),
			"status", status, "ms", time.Since(began).Milliseconds())
	})
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
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
