// Package standin starts and stops the real local stand-ins for AWS that the
// integration tests and `make demo` run against: moto_server for Secrets
// Manager and SQS, and the Lambda Runtime Interface Emulator (RIE) for the
// functions themselves.
//
// Every stand-in listens on a free loopback port chosen when it starts, runs
// in its own session so that Stop can kill it and everything it spawned, and
// writes its output to the io.Writer the caller gives. It does not fake any
// AWS behaviour: what the stand-ins do differently from AWS is listed in
// shared/reference/local-standins.md.
package standin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// startAttempts bounds how often a stand-in is started again on new ports
// when another program took its port between FreePort and the bind.
const startAttempts = 5

// RepoRoot finds the module root: the nearest directory, walking up from the
// working directory, that holds a go.mod.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("finding the module root: no go.mod in %s or above", wd)
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment
// ago. Another program may take it before the caller binds it, so callers
// start again on a new port when the bind fails.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	return port, nil
}

// errPortTaken reports that a stand-in exited because its port was in use.
var errPortTaken = errors.New("port already in use")
