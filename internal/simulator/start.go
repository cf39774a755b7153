package simulator

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Running is a Server serving HTTP on a loopback port, made by Start.
type Running struct {
	// URL is the base URL to call, "http://127.0.0.1:PORT", with no
	// trailing slash.
	URL string
	// Server is the simulator served; its methods set it up and inspect it.
	*Server

	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// Start serves a new Server with cfg on 127.0.0.1 at a free port, until
// Close. It returns an error if cfg does not pass Config.Validate or no
// port can be had.
func Start(cfg Config) (*Running, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}

	// cancelling the base context ends the latency waits of open requests
	ctx, cancel := context.WithCancel(context.Background())
	run := &Running{
		URL:    "http://" + ln.Addr().String(),
		Server: New(cfg),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	run.srv = &http.Server{
		Handler:           run.Server,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(run.done)
		_ = run.srv.Serve(ln) // always http.ErrServerClosed, after Close
	}()
	return run, nil
}

// Close stops serving and closes every connection; requests still waiting
// out their latency end at once. It may be called more than once.
func (r *Running) Close() {
	r.cancel()
	_ = r.srv.Close()
	<-r.done
}
