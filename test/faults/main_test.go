package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/localrun"
)

// Function timeouts of the stack under test: short, so that a stop by
// timeout costs seconds. The bulk function must leave room for a job
// (bulk.DefaultJobTimeLeft) after its reserve.
const functionTimeout = 8 * time.Second

var (
	stack *localrun.Stack
	logs  lockedBuffer
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	stack, err = localrun.Start(ctx, localrun.Options{
		Log: &logs, FunctionTimeout: functionTimeout, FaultProxy: true,
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	stack.Close()
	os.Exit(code)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
