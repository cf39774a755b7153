package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, outW := io.Pipe()
	logs := &syncWriter{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-token", "tok-one,tok-two",
			"-seed", "app/svc=Old=Pass,word", "-envelope", "seed"}, outW, logs)
		outW.Close()
	}()

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ready line: %v", err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "apinizer-sim listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("ready line = %q", line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	req, _ := http.NewRequest(http.MethodPatch, base+"/apiops/projects/app/credentials/svc/",
		strings.NewReader(`{"password":"N3w-Secret"}`))
	req.Header.Set("Authorization", "Bearer tok-two")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, secret := range []string{"N3w-Secret", "Old=Pass", "tok-one", "tok-two"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows %q:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "status=200") {
		t.Errorf("the request was not logged:\n%s", logs.String())
	}
}

// syncWriter lets the server's goroutines and the test share a buffer.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sim.json")
	err := os.WriteFile(file, []byte(`{"envelope":"seed","environments":["prod"],`+
		`"tokens":["from-file"],"latencyMs":10}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		args    []string
		want    simulator.Config
		seeds   []seed
		wantErr string
	}{
		{
			name: "defaults",
			want: simulator.Config{Tokens: []string{defaultToken}},
		},
		{
			name: "flags",
			args: []string{"-envelope", "seed", "-shape", "detailList", "-token", "a",
				"-token", "b, c", "-latency", "1.5s", "-jitter", "20ms",
				"-seed", "p/u=x", "-seed", "p/a/b=y=z"},
			want: simulator.Config{Envelope: simulator.EnvelopeSeed,
				Shape: simulator.ShapePods, Tokens: []string{"a", "b", "c"},
				LatencyMS: 1500, JitterMS: 20},
			seeds: []seed{{"p", "u", "x"}, {"p", "a/b", "y=z"}},
		},
		{
			name: "a config file",
			args: []string{"-config", file},
			want: simulator.Config{Envelope: simulator.EnvelopeSeed,
				Environments: []string{"prod"}, Tokens: []string{"from-file"}, LatencyMS: 10},
		},
		{
			name: "flags win over the config file",
			args: []string{"-config", file, "-envelope", "current", "-token", "t"},
			want: simulator.Config{Envelope: simulator.EnvelopeCurrent,
				Environments: []string{"prod"}, Tokens: []string{"t"}, LatencyMS: 10},
		},
		{name: "an unknown envelope", args: []string{"-envelope", "v3"}, wantErr: "envelope"},
		{name: "a seed without a password", args: []string{"-seed", "p/u"},
			wantErr: "-seed #1"},
		{name: "a seed without a project", args: []string{"-seed", "u=secret"},
			wantErr: "-seed #1"},
		{name: "a missing config file", args: []string{"-config", filepath.Join(dir, "no")},
			wantErr: "reading config"},
		{name: "an unknown flag", args: []string{"-nope"}, wantErr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := opts.config
			if got.Envelope != tt.want.Envelope || got.Shape != tt.want.Shape ||
				!slices.Equal(got.Environments, tt.want.Environments) ||
				!slices.Equal(got.Tokens, tt.want.Tokens) ||
				got.LatencyMS != tt.want.LatencyMS || got.JitterMS != tt.want.JitterMS {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(opts.seeds, tt.seeds) {
				t.Errorf("seeds = %+v, want %+v", opts.seeds, tt.seeds)
			}
			if opts.addr != "127.0.0.1:8099" {
				t.Errorf("addr = %q", opts.addr)
			}
		})
	}
}
