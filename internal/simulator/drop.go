package simulator

import (
	"net/http"
	"time"
)

// statusDropped is recorded for a request whose connection a Fault with
// Drop closed without an answer (nginx's 444, "no response").
const statusDropped = 444

// dropConnection closes the client's connection without writing anything,
// so the client sees the connection end (EOF or a reset) instead of an
// answer. The request is recorded first, with status 444, so that a client
// that sees the connection end finds it in the log.
//
// It takes the connection over with http.Hijacker, through any wrapper
// that offers Unwrap, and closes it. Where that cannot be done (HTTP/2, or
// a wrapping handler that hides the connection) it aborts the handler with
// http.ErrAbortHandler, which makes net/http drop the connection or stream
// unanswered just the same.
func (s *Server) dropConnection(w http.ResponseWriter, entry *Request) {
	entry.Status, entry.Done = statusDropped, time.Now()
	s.record(*entry)
	if sw, ok := w.(*statusWriter); ok {
		sw.status = statusDropped
		sw.recorded = true
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// Unwrap gives http.ResponseController the ResponseWriter beneath, for
// Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
