package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apinizer-rotation/rotator/internal/faultproxy"
	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// The reference Python rotation template's Secrets Manager calls for one
// scheduled rotation: a DescribeSecret per step, four in createSecret,
// three in setSecret, one in testSecret, two in finishSecret.
const pythonCalls, pythonWrites = 14, 2

// calls counts the Secrets Manager calls of one bulk job and of one
// scheduled rotation, on warm functions and with every step on a new
// instance.
func (b *bench) calls(ctx context.Context, out io.Writer) error {
	st := b.stack
	b.setLatency(0, 0)
	count := func() [2]int {
		writes := st.Proxy.Count("secretsmanager", "PutSecretValue") +
			st.Proxy.Count("secretsmanager", "UpdateSecretVersionStage")
		return [2]int{st.Proxy.Count("secretsmanager", ""), writes}
	}
	arn, err := st.SeedCredential(ctx, "apinizer/bench/calls", "Bench", "calls", "Seed-Bench-1")
	if err != nil {
		return err
	}

	// a bulk job on the warm function
	if err := st.Enqueue(ctx, fmt.Sprintf(`{"secretId":%q}`, arn)); err != nil {
		return err
	}
	st.Proxy.ResetCalls()
	if _, err := st.DeliverBatch(ctx); err != nil {
		return err
	}
	job := count()

	// a scheduled rotation, warm: the rotation function is warmed by one
	// rotation of another secret first
	other, err := st.SeedCredential(ctx, "apinizer/bench/calls-warm-up", "Bench", "calls-warm-up", "Seed-Bench-1")
	if err != nil {
		return err
	}
	if _, err := b.rotation(ctx, other, false); err != nil {
		return err
	}
	st.Proxy.ResetCalls()
	warm, err := b.rotation(ctx, arn, false)
	if err != nil {
		return err
	}
	cold, err := b.rotation(ctx, arn, true)
	if err != nil {
		return err
	}

	fmt.Fprintln(out, "2. Secrets Manager calls, counted at the proxy (writes: PutSecretValue, UpdateSecretVersionStage)")
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "   \tcalls\twrites\t")
	fmt.Fprintf(w, "   bulk job\t%d\t%d\t\n", job[0], job[1])
	fmt.Fprintf(w, "   scheduled rotation, four steps on a warm function\t%d\t%d\t\n", warm[0], warm[1])
	fmt.Fprintf(w, "   scheduled rotation, each step on a new instance (incl. the token read)\t%d\t%d\t\n", cold[0], cold[1])
	fmt.Fprintf(w, "   Python rotation template (baseline)\t%d\t%d\t\n", pythonCalls, pythonWrites)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return nil
}

// rotation runs the four steps of a scheduled rotation of arn and returns
// the calls and writes they made; cold restarts the rotation function
// before each step.
func (b *bench) rotation(ctx context.Context, arn string, cold bool) ([2]int, error) {
	st := b.stack
	token, err := st.BeginRotation(ctx, arn)
	if err != nil {
		return [2]int{}, err
	}
	st.Proxy.ResetCalls() // the placeholder version is Secrets Manager's own write
	for _, step := range localrun.Steps {
		if cold {
			if err := st.Rotate.Restart(ctx); err != nil {
				return [2]int{}, err
			}
		}
		if err := st.InvokeStep(ctx, step, arn, token); err != nil {
			return [2]int{}, fmt.Errorf("%s: %w", step, err)
		}
	}
	writes := st.Proxy.Count("secretsmanager", "PutSecretValue") +
		st.Proxy.Count("secretsmanager", "UpdateSecretVersionStage")
	return [2]int{st.Proxy.Count("secretsmanager", ""), writes}, nil
}

// throttleWrites makes the proxy answer ThrottlingException to every third
// Secrets Manager write until total were throttled, so that no call is
// throttled on every attempt. It returns a count of those answered so far.
func throttleWrites(p *faultproxy.Proxy, total int) func() int {
	ops := []string{"PutSecretValue", "UpdateSecretVersionStage"}
	for i := range total {
		p.Add(faultproxy.Rule{Service: "secretsmanager", Operation: ops[i%2], Skip: 3 * (i / 2), Times: 1,
			Action: faultproxy.Fail, Status: 400, Code: "ThrottlingException", Message: "Rate exceeded"})
	}
	return func() int {
		n := 0
		for _, c := range p.Calls() {
			if strings.Contains(c.Fault, "ThrottlingException") {
				n++
			}
		}
		return n
	}
}

// coldStarts prints each function's cold start beside Python's import of
// boto3, and the arm64 binary sizes.
func (b *bench) coldStarts(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "3. Cold start: from starting the process to its first request for an event (median)")
	fmt.Fprintln(out)
	python, err := pythonImport(ctx, max(1, b.s.coldRuns/2))
	if err != nil {
		return err
	}
	pyMedian := median(python)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "   python3 -c 'import boto3' (baseline)\t%s\t\t\n", round(pyMedian))
	for _, f := range []struct{ name, bootstrap string }{
		{"rotate", b.stack.RotateBootstrap}, {"bulk", b.stack.BulkBootstrap},
	} {
		runs, err := coldStart(ctx, f.bootstrap, b.stack.FunctionEnv, b.s.coldRuns)
		if err != nil {
			return err
		}
		m := median(runs)
		fmt.Fprintf(w, "   %s bootstrap\t%s\t%.1f %% of the import\t\n", f.name, m.Round(100*time.Microsecond),
			100*m.Seconds()/pyMedian.Seconds())
	}
	if err := w.Flush(); err != nil {
		return err
	}
	sizes, err := binarySizes(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(out, "\n   arm64 binaries (linux, -s -w, lambda.norpc):")
	for _, s := range sizes {
		fmt.Fprintf(out, "  %s %.1f MiB", s.Function, float64(s.Bytes)/(1<<20))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out)
	return nil
}

// memory prints the bulk function's peak resident memory per batch.
func (b *bench) memory(out io.Writer) {
	fmt.Fprintf(out, "4. Peak memory of the bulk function (VmHWM of a fresh process: start, a warm-up and one batch; C = %d)\n\n",
		b.s.concurrency)
	for _, p := range b.peaks {
		fmt.Fprintf(out, "   N = %-5d %5.1f MiB\n", p.n, float64(p.bytes)/(1<<20))
	}
}

func functionPeak(fn *standin.Function) (int64, error) {
	pid, err := fn.FunctionPID()
	if err != nil {
		return 0, err
	}
	return peakRSS(pid)
}

// machine describes where the bench ran.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model,
		runtime.Version())
}
