// Command demo runs the whole product locally on its embedded defaults:
// moto for Secrets Manager and SQS, the Apinizer simulator, and both
// function binaries under the Lambda Runtime Interface Emulator. It runs a
// scheduled rotation and a batch of bulk jobs (one bound to fail its
// deployment, one naming a secret that does not exist), then prints what
// happened to each secret. It exits 0 only if every outcome was the right
// one. It never prints a password.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

func main() {
	verbose := flag.Bool("v", false, "show the functions' and stand-ins' logs")
	envelope := flag.String("envelope", "current", "simulator answer style: current or seed")
	flag.Parse()
	if *envelope != string(simulator.EnvelopeCurrent) && *envelope != string(simulator.EnvelopeSeed) {
		fmt.Fprintln(os.Stderr, "demo: -envelope must be current or seed")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	var logs bytes.Buffer
	var logw io.Writer = &logs
	if *verbose {
		logw = io.MultiWriter(&logs, os.Stderr)
	}
	ok, err := run(ctx, os.Stdout, logw, simulator.Envelope(*envelope))
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		if !*verbose && logs.Len() > 0 {
			fmt.Fprintln(os.Stderr, "last log lines:")
			fmt.Fprintln(os.Stderr, tail(logs.String(), 30))
		}
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
