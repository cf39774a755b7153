package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apinizer-rotation/rotator/internal/standin"
)

// fakeBootstrapEnv, when set, makes the test binary play a function binary
// for the coldStart tests instead of running the tests.
const fakeBootstrapEnv = "BENCH_FAKE_BOOTSTRAP"

// strayEnv is set in the tests' own environment; a fake bootstrap that
// sees it fails, since coldStart must not pass it on.
const strayEnv = "BENCH_STRAY_VARIABLE"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(fakeBootstrapEnv); ok {
		os.Exit(fakeBootstrap(mode))
	}
	os.Exit(m.Run())
}

// fakeBootstrap asks the Runtime API for an invocation, as a Lambda runtime
// does once its init is done ("next"), or fails at start-up as a
// misconfigured function would ("fail"). It returns the exit code.
func fakeBootstrap(mode string) int {
	if v, ok := os.LookupEnv(strayEnv); ok {
		fmt.Fprintf(os.Stderr, "%s=%s leaked into the function's environment\n", strayEnv, v)
		return 3
	}
	switch mode {
	case "next":
		resp, err := http.Get("http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + nextPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		// the stand-in holds the request until the process is killed
		resp.Body.Close()
		fmt.Fprintln(os.Stderr, "the Runtime API stand-in answered:", resp.Status)
		return 2
	case "fail":
		fmt.Fprintln(os.Stderr, "configuration: APINIZER_BASE_URL is not set")
		return 1
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		return 2
	}
}

func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	return exe
}

func TestColdStartTimesEachRunToTheFirstRequestForAnInvocation(t *testing.T) {
	t.Setenv(strayEnv, "from the parent")
	ds, err := coldStart(context.Background(), testBinary(t), []string{fakeBootstrapEnv + "=next"}, 3)
	if err != nil {
		t.Fatalf("coldStart: %v", err)
	}
	if len(ds) != 3 {
		t.Fatalf("expect 3 durations, got %v", ds)
	}
	for i, d := range ds {
		if d <= 0 || d >= coldStartTimeout {
			t.Errorf("run %d: expect a duration between 0 and %s, got %s", i+1, coldStartTimeout, d)
		}
	}
	t.Logf("cold starts of the test binary: %v, median %v", ds, median(ds))
}

func TestColdStartQuotesTheOutputOfAProcessThatExitsEarly(t *testing.T) {
	_, err := coldStart(context.Background(), testBinary(t), []string{fakeBootstrapEnv + "=fail"}, 1)
	if err == nil {
		t.Fatal("expect an error, got nil")
	}
	for _, want := range []string{"warm-up run", "exited", "configuration: APINIZER_BASE_URL is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("expect %q in the error, got %v", want, err)
		}
	}
}

func TestColdStartNeedsARun(t *testing.T) {
	if _, err := coldStart(context.Background(), testBinary(t), nil, 0); err == nil {
		t.Error("runs 0: expect an error, got nil")
	}
}

func TestPythonImport(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH")
	}
	ds, err := pythonImport(context.Background(), 2)
	if errors.Is(err, errNoBoto3) {
		t.Skipf("boto3 is not installed: %v", err)
	}
	if err != nil {
		t.Fatalf("pythonImport: %v", err)
	}
	if len(ds) != 2 || ds[0] <= 0 || ds[1] <= 0 {
		t.Errorf("expect 2 positive durations, got %v", ds)
	}
	t.Logf("python3 -c 'import boto3': %v", ds)
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"none", nil, 0},
		{"one", []time.Duration{7}, 7},
		{"an odd number, unsorted", []time.Duration{9, 1, 5}, 5},
		{"an even number takes the mean of the middle two", []time.Duration{4, 1, 10, 2}, 3},
		{"the mean rounds down", []time.Duration{1, 2}, 1},
		{"no overflow near the maximum", []time.Duration{1<<63 - 1, 1<<63 - 3}, 1<<63 - 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			if got := median(in); got != tt.want {
				t.Errorf("median(%v): expect %v, got %v", tt.in, tt.want, got)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("median changed its input from %v to %v", tt.in, in)
			}
		})
	}
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	n, err := peakRSS(os.Getpid())
	if err != nil {
		t.Fatalf("peakRSS: %v", err)
	}
	if n <= 1<<20 {
		t.Errorf("expect more than 1 MiB, got %d bytes", n)
	}
	t.Logf("peak RSS of the test binary: %.1f MiB", float64(n)/(1<<20))
}

func TestPeakRSSOfNoProcess(t *testing.T) {
	if _, err := peakRSS(-1); err == nil {
		t.Error("pid -1: expect an error, got nil")
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"kB are KiB", "Name:\tbootstrap\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n", 1234 * 1024, false},
		{"the last line without a newline", "VmHWM:\t5 kB", 5 * 1024, false},
		{"no VmHWM, as for a zombie", "Name:\tbootstrap\nState:\tZ (zombie)\n", 0, true},
		{"another unit", "VmHWM:\t5 MB\n", 0, true},
		{"not a number", "VmHWM:\tlots kB\n", 0, true},
		{"too large", "VmHWM:\t9223372036854775807 kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmHWM(tt.status)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("expect %d (error %v), got %d, %v", tt.want, tt.wantErr, got, err)
			}
		})
	}
}

// The Lambda build must stay the one `sam build` runs through the Makefile.
func TestLambdaBuildMirrorsMakefile(t *testing.T) {
	root, err := standin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string][]string{}
	for line := range strings.Lines(string(makefile)) {
		if name, value, ok := strings.Cut(line, ":="); ok {
			vars[strings.TrimSpace(name)] = shellWords(value)
		}
	}
	if got := vars["LAMBDA_ENV"]; !slices.Equal(got, lambdaEnv) {
		t.Errorf("LAMBDA_ENV in the Makefile is %q, lambdaEnv is %q", got, lambdaEnv)
	}
	if got := vars["LAMBDA_FLAGS"]; !slices.Equal(got, lambdaFlags) {
		t.Errorf("LAMBDA_FLAGS in the Makefile is %q, lambdaFlags is %q", got, lambdaFlags)
	}
}

// shellWords splits s into words as a shell would, for the single quotes
// the Makefile uses.
func shellWords(s string) []string {
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

func TestBinarySizes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both functions for linux/arm64")
	}
	sizes, err := binarySizes(context.Background())
	if err != nil {
		t.Fatalf("binarySizes: %v", err)
	}
	if len(sizes) != 2 || sizes[0].Function != "rotate" || sizes[1].Function != "bulk" {
		t.Fatalf("expect rotate and bulk, got %+v", sizes)
	}
	for _, s := range sizes {
		if s.Bytes <= 1<<20 {
			t.Errorf("%s: expect more than 1 MiB, got %d bytes", s.Function, s.Bytes)
		}
	}
	t.Logf("linux/arm64 sizes: %+v", sizes)
}
