// Command bench measures the bulk function against the same simulator and
// moto in one process, and prints each figure beside its baseline measured
// in the same run: a batch of N jobs through the built bulk function at
// concurrency 1 (the sequential loop) and at the default concurrency, with
// the simulator's latency set to L; and the Secrets Manager calls per bulk
// job and per scheduled rotation, counted at the fault proxy, beside the
// reference Python rotation template's count.
//
// TODO: cold start against `python3 -c 'import boto3'`, arm64 binary sizes
// and peak memory (issue 4, part 3 and 4) are not measured yet.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

func main() {
	latency := flag.Duration("latency", 200*time.Millisecond, "the simulator's latency per password change")
	jitter := flag.Duration("jitter", 20*time.Millisecond, "random extra latency, up to this")
	sizes := flag.String("n", "10,100", "batch sizes N, comma-separated (1000 takes minutes at concurrency 1)")
	concurrency := flag.Int("c", 10, "the default concurrency C (BULK_MAX_CONCURRENCY)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *latency, *jitter, *sizes, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, latency, jitter time.Duration, sizes string, c int) error {
	stack, err := localrun.Start(ctx, localrun.Options{FaultProxy: true, FunctionTimeout: 120 * time.Second,
		Env: []string{fmt.Sprintf("BULK_MAX_CONCURRENCY=%d", c)}})
	if err != nil {
		return err
	}
	defer stack.Close()
	sequential, err := standin.StartFunction(ctx, stack.RIE, standin.FunctionOptions{
		Name: "apinizer-bulk-sequential", Bootstrap: stack.BulkBootstrap, Timeout: 120 * time.Second,
		Env: append(append([]string{}, stack.FunctionEnv...), "BULK_MAX_CONCURRENCY=1"),
	})
	if err != nil {
		return err
	}
	defer sequential.Stop()
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token},
		LatencyMS: int(latency / time.Millisecond), JitterMS: int(jitter / time.Millisecond)})

	fmt.Fprintf(out, "Bulk batches: latency L = %v (+ up to %v jitter), default concurrency C = %d\n", latency, jitter, c)
	fmt.Fprintf(out, "%6s  %-14s %10s %10s %16s\n", "N", "concurrency", "wall", "jobs/s", "ratio to ideal")
	var n int
	for _, field := range strings.Split(sizes, ",") {
		if _, err := fmt.Sscan(field, &n); err != nil || n <= 0 {
			return fmt.Errorf("bad N %q", field)
		}
		var walls [2]time.Duration
		for i, fn := range []*standin.Function{sequential, stack.Bulk} {
			conc := []int{1, c}[i]
			wall, err := batch(ctx, stack, fn, n, fmt.Sprintf("n%d-c%d", n, conc))
			if err != nil {
				return err
			}
			walls[i] = wall
			ideal := time.Duration(math.Ceil(float64(n)/float64(conc))) * latency
			fmt.Fprintf(out, "%6d  %-14s %10s %10.1f %16.2f\n", n, fmt.Sprint(conc, map[int]string{0: " (baseline)", 1: ""}[i]),
				wall.Round(time.Millisecond), float64(n)/wall.Seconds(), wall.Seconds()/ideal.Seconds())
		}
		fmt.Fprintf(out, "%6s  speed-up at C = %d: %.1f x\n", "", c, walls[0].Seconds()/walls[1].Seconds())
	}

	// Secrets Manager calls, counted at the proxy
	stack.Sim.SetConfig(simulator.Config{Tokens: []string{stack.Token}})
	job, rotation, err := calls(ctx, stack)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nSecrets Manager calls (writes = PutSecretValue + UpdateSecretVersionStage)")
	fmt.Fprintf(out, "  %-34s %5s %7s\n", "", "calls", "writes")
	fmt.Fprintf(out, "  %-34s %5d %7d\n", "bulk job", job[0], job[1])
	fmt.Fprintf(out, "  %-34s %5d %7d\n", "scheduled rotation (four steps)", rotation[0], rotation[1])
	fmt.Fprintf(out, "  %-34s %5d %7d\n", "Python rotation template (baseline)", 14, 2)
	return nil
}

// batch enqueues n jobs for n new secrets and delivers them to fn in
// batches of ten, one batch at a time, until the queue is empty.
func batch(ctx context.Context, stack *localrun.Stack, fn *standin.Function, n int, tag string) (time.Duration, error) {
	var bodies []string
	for i := range n {
		name := fmt.Sprintf("apinizer/bench/%s-%d", tag, i)
		arn, err := stack.SeedCredential(ctx, name, "Bench", fmt.Sprintf("%s-%d", tag, i), "Seed-Bench-1")
		if err != nil {
			return 0, err
		}
		bodies = append(bodies, fmt.Sprintf(`{"secretId":%q}`, arn))
	}
	if err := stack.Enqueue(ctx, bodies...); err != nil {
		return 0, err
	}
	start := time.Now()
	for done := 0; done < n; {
		b, err := stack.DeliverBatchTo(ctx, fn)
		if err != nil {
			return 0, err
		}
		if len(b.Event.Records) == 0 {
			return 0, fmt.Errorf("%s: the queue ran dry after %d of %d jobs", tag, done, n)
		}
		if len(b.Response.BatchItemFailures) > 0 {
			return 0, fmt.Errorf("%s: %d jobs failed", tag, len(b.Response.BatchItemFailures))
		}
		done += len(b.Deleted)
	}
	return time.Since(start), nil
}

// calls counts the Secrets Manager calls of one bulk job and of one
// scheduled rotation on warm functions.
func calls(ctx context.Context, stack *localrun.Stack) (job, rotation [2]int, err error) {
	count := func() [2]int {
		writes := stack.Proxy.Count("secretsmanager", "PutSecretValue") +
			stack.Proxy.Count("secretsmanager", "UpdateSecretVersionStage")
		return [2]int{stack.Proxy.Count("secretsmanager", ""), writes}
	}
	arn, err := stack.SeedCredential(ctx, "apinizer/bench/calls", "Bench", "calls", "Seed-Bench-1")
	if err != nil {
		return job, rotation, err
	}
	stack.Proxy.ResetCalls()
	if err := stack.Enqueue(ctx, fmt.Sprintf(`{"secretId":%q}`, arn)); err != nil {
		return job, rotation, err
	}
	if _, err := stack.DeliverBatch(ctx); err != nil {
		return job, rotation, err
	}
	job = count()

	token, err := stack.BeginRotation(ctx, arn)
	if err != nil {
		return job, rotation, err
	}
	stack.Proxy.ResetCalls()
	steps, err := stack.ResumeRotation(ctx, arn, token)
	if err != nil {
		return job, rotation, err
	}
	for _, s := range steps {
		if s.Err != nil {
			return job, rotation, fmt.Errorf("%s: %w", s.Step, s.Err)
		}
	}
	return job, count(), nil
}
