// Command apinizer-sim serves a local simulator of Apinizer's management API
// (see package internal/simulator) for demos and manual testing.
//
//	apinizer-sim -seed MyProject/api-user=Initial-Passw0rd
//	apinizer-sim -envelope seed -shape detailList -latency 800ms -config sim.json
//
// It prints "apinizer-sim listening on http://ADDR" once it accepts
// connections, logs one line per request to stderr (never a password or a
// token), and stops on SIGINT or SIGTERM.
//
// Flags given explicitly win over the -config file, a JSON simulator.Config
// (latency in "latencyMs" and "jitterMs"). Without any -token, the token
// "local-dev-token" is accepted. Scripts drive a running simulator through
// its control API, which needs no token:
//
//	curl -X PUT  $URL/_sim/credentials/MyProject/api-user/ -d '{"password":"p"}'
//	curl         $URL/_sim/credentials/MyProject/api-user/   # {"password","changes"}
//	curl -X PUT  $URL/_sim/config -d '{"envelope":"seed","latencyMs":800}'
//	curl -X POST $URL/_sim/faults -d '[{"status":429,"retryAfter":"2","count":3}]'
//	curl         $URL/_sim/requests
//	curl -X POST $URL/_sim/reset
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

// shutdownTimeout bounds the wait for open connections on exit.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "apinizer-sim:", err)
		}
		os.Exit(2)
	}
}

// run serves the simulator until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	sim := simulator.New(opts.config)
	for _, s := range opts.seeds {
		sim.SetCredential(s.project, s.username, s.password)
	}

	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", opts.addr, err)
	}

	// cancelling the base context ends the latency waits of open requests
	baseCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	var handler http.Handler = sim
	if !opts.quiet {
		handler = logRequests(logger, sim)
	}
	srv := &http.Server{
		Handler:           handler,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ReadHeaderTimeout: 10 * time.Second,
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	cfg := sim.Config()
	logger.Info("simulator ready", "envelope", cfg.Envelope, "shape", cfg.Shape,
		"environments", cfg.Environments, "tokens", len(cfg.Tokens),
		"credentials", len(opts.seeds), "latencyMs", cfg.LatencyMS)
	fmt.Fprintf(stdout, "apinizer-sim listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	// stop: end the waits, then let the open answers go out
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), shutdownTimeout)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	logger.Info("simulator stopped")
	return nil
}
