// Command bench measures the bulk function against the same simulator and
// moto in one process, and prints each figure beside its baseline measured
// in the same run:
//
//  1. a batch of N jobs, delivered as one SQS event, through the built bulk
//     function at concurrency 1 (the sequential loop) and at the default
//     concurrency C, with the simulator's latency L; the same batch with
//     L = 0 shows what the emulator itself costs; then the largest batch
//     again with throttled Secrets Manager writes;
//  2. the Secrets Manager calls per bulk job and per scheduled rotation,
//     counted at the fault proxy, beside the reference Python rotation
//     template's count;
//  3. the cold start of both functions beside `python3 -c 'import boto3'`,
//     and the arm64 binary sizes;
//  4. the peak memory of the bulk function for each batch.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/internal/localrun"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// settings are the command's flags.
type settings struct {
	latency, jitter time.Duration
	sizes           []int
	concurrency     int
	throttled       int // Secrets Manager writes answered ThrottlingException
	coldRuns        int
}

func main() {
	var s settings
	var sizes string
	flag.DurationVar(&s.latency, "latency", 200*time.Millisecond, "the simulator's mean latency L per password change")
	flag.DurationVar(&s.jitter, "jitter", 20*time.Millisecond, "latency varies uniformly within L ± jitter")
	flag.StringVar(&sizes, "n", "10,100,1000", "batch sizes N, comma-separated")
	flag.IntVar(&s.concurrency, "c", 10, "the default concurrency C (BULK_MAX_CONCURRENCY)")
	flag.IntVar(&s.throttled, "throttle", 50, "writes answered ThrottlingException in the throttled run")
	flag.IntVar(&s.coldRuns, "cold-runs", 20, "cold starts measured per function")
	flag.Parse()

	var err error
	if s.sizes, err = parseSizes(sizes); err == nil && (s.jitter > s.latency || s.concurrency < 1) {
		err = fmt.Errorf("need jitter <= latency and c >= 1")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, s); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseSizes(list string) ([]int, error) {
	var sizes []int
	for _, field := range strings.Split(list, ",") {
		var n int
		if _, err := fmt.Sscan(field, &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("bad N %q", field)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// functionTimeout is Lambda's largest: the sequential baseline at N = 1000
// takes minutes.
const functionTimeout = 900 * time.Second

func run(ctx context.Context, out io.Writer, s settings) error {
	stack, err := localrun.Start(ctx, localrun.Options{FaultProxy: true, FunctionTimeout: functionTimeout,
		Env: []string{fmt.Sprintf("BULK_MAX_CONCURRENCY=%d", s.concurrency)}})
	if err != nil {
		return err
	}
	defer stack.Close()
	sequential, err := standin.StartFunction(ctx, stack.RIE, standin.FunctionOptions{
		Name: "apinizer-bulk-sequential", Bootstrap: stack.BulkBootstrap, Timeout: functionTimeout,
		// the naive loop: one job at a time, nothing prepared ahead
		Env: append(append([]string{}, stack.FunctionEnv...), "BULK_MAX_CONCURRENCY=1",
			"BULK_PREPARE_AHEAD=0"),
	})
	if err != nil {
		return err
	}
	defer sequential.Stop()
	b := &bench{stack: stack, sequential: sequential, s: s}

	fmt.Fprintf(out, "Machine: %s\n\n", machine())
	if err := b.batches(ctx, out); err != nil {
		return err
	}
	if err := b.calls(ctx, out); err != nil {
		return err
	}
	if err := b.coldStarts(ctx, out); err != nil {
		return err
	}
	b.memory(out)
	return nil
}

type bench struct {
	stack      *localrun.Stack
	sequential *standin.Function
	s          settings
	seq        int // names the secrets of each batch apart

	peaks []peak // the concurrent function's peak memory per batch
}

type peak struct {
	n     int
	bytes int64
}

// setLatency makes the simulator take latency ± jitter, uniformly, per
// password change: its mean is latency.
func (b *bench) setLatency(latency, jitter time.Duration) {
	b.stack.Sim.SetConfig(simulator.Config{Tokens: []string{b.stack.Token},
		LatencyMS: int((latency - jitter) / time.Millisecond), JitterMS: int(2 * jitter / time.Millisecond)})
}

func (b *bench) batches(ctx context.Context, out io.Writer) error {
	c, l := b.s.concurrency, b.s.latency
	fmt.Fprintf(out, "1. One SQS event of N jobs through the bulk function; Apinizer latency L = %v ± %v\n",
		l, b.s.jitter)
	fmt.Fprintf(out, "   ideal = ceil(N/C) × L; \"at L = 0\" is the same batch with no latency: the stand-ins' own cost\n")
	perCall, err := b.motoCallCost(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   (moto serves one call at a time: %.1f ms each, timed over 100 DescribeSecret calls now)\n\n",
		float64(perCall.Microseconds())/1000)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "N\tconcurrency\twall\tjobs/s\tideal\tratio to ideal\tat L = 0\tspeed-up\t")
	var last time.Duration
	for _, n := range b.s.sizes {
		var walls [2]time.Duration
		for i, fn := range []*standin.Function{b.sequential, b.stack.Bulk} {
			conc := []int{1, c}[i]
			b.setLatency(0, 0)
			floor, err := b.batch(ctx, fn, n, false)
			if err != nil {
				return err
			}
			if fn == b.stack.Bulk {
				// a fresh process, so that its peak memory is this batch's
				if err := fn.Restart(ctx); err != nil {
					return err
				}
			}
			b.setLatency(l, b.s.jitter)
			wall, err := b.batch(ctx, fn, n, false)
			if err != nil {
				return err
			}
			if fn == b.stack.Bulk {
				if p, err := functionPeak(fn); err == nil {
					b.peaks = append(b.peaks, peak{n, p})
				} else {
					fmt.Fprintf(os.Stderr, "bench: peak memory at N = %d: %v\n", n, err)
				}
			}
			walls[i] = wall
			ideal := time.Duration((n+conc-1)/conc) * l
			speedUp := "(baseline)"
			if i == 1 {
				speedUp = fmt.Sprintf("%.1f×", walls[0].Seconds()/wall.Seconds())
			}
			fmt.Fprintf(w, "%d\t%d\t%s\t%.1f\t%s\t%.2f\t%s\t%s\t\n", n, conc, round(wall),
				float64(n)/wall.Seconds(), round(ideal), wall.Seconds()/ideal.Seconds(), round(floor), speedUp)
		}
		last = walls[1]
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return b.throttledBatch(ctx, out, last)
}

// motoCallCost times sequential DescribeSecret calls on the token secret:
// the cost of one call at moto, which serves one at a time.
func (b *bench) motoCallCost(ctx context.Context) (time.Duration, error) {
	const calls = 100
	start := time.Now()
	for range calls {
		if _, err := b.stack.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
			SecretId: aws.String(localrun.TokenSecretName),
		}); err != nil {
			return 0, fmt.Errorf("timing a moto call: %w", err)
		}
	}
	return time.Since(start) / calls, nil
}

// throttledBatch runs the largest batch again while the proxy answers
// ThrottlingException to some of the writes, and checks that every
// credential still converged: Apinizer holds AWSCURRENT, nothing pending.
func (b *bench) throttledBatch(ctx context.Context, out io.Writer, unthrottled time.Duration) error {
	n := b.s.sizes[len(b.s.sizes)-1]
	b.setLatency(b.s.latency, b.s.jitter)
	b.stack.Proxy.ResetCalls()
	throttles := throttleWrites(b.stack.Proxy, b.s.throttled)
	wall, err := b.batch(ctx, b.stack.Bulk, n, true)
	b.stack.Proxy.Clear()
	if err != nil {
		return fmt.Errorf("throttled batch: %w", err)
	}
	fmt.Fprintf(out, "\n   Throttled: N = %d at C = %d, every third write answered ThrottlingException until %d were (%d seen),\n",
		n, b.s.concurrency, b.s.throttled, throttles())
	fmt.Fprintln(out, "   each retried by the SDK:")
	fmt.Fprintf(out, "   wall %s against %s unthrottled (%.2f×); all %d jobs succeeded and every credential converged.\n\n",
		round(wall), round(unthrottled), wall.Seconds()/unthrottled.Seconds(), n)
	return nil
}

// batch enqueues n jobs for n new secrets, delivers them to fn in one
// event after a warm-up invocation, and returns the invocation's time. Any
// failed job is an error; check also verifies every credential converged.
func (b *bench) batch(ctx context.Context, fn *standin.Function, n int, check bool) (time.Duration, error) {
	b.seq++
	tag := fmt.Sprintf("b%d", b.seq)
	const project, seeded = "Bench", "Seed-Bench-1"
	arns := make([]string, n)
	bodies := make([]string, n)
	for i := range n {
		arn, err := b.stack.SeedCredential(ctx, fmt.Sprintf("apinizer/bench/%s-%d", tag, i), project,
			fmt.Sprintf("%s-%d", tag, i), seeded)
		if err != nil {
			return 0, err
		}
		arns[i], bodies[i] = arn, fmt.Sprintf(`{"secretId":%q}`, arn)
	}
	if err := b.stack.Enqueue(ctx, bodies...); err != nil {
		return 0, err
	}
	if _, err := fn.Invoke(ctx, []byte(`{"Records":[]}`)); err != nil {
		return 0, fmt.Errorf("warming %s up: %w", fn.Name, err)
	}
	res, err := b.stack.DeliverJobs(ctx, fn, n)
	if err != nil {
		return 0, err
	}
	if len(res.Event.Records) != n || len(res.Response.BatchItemFailures) > 0 {
		return 0, fmt.Errorf("%s: %d of %d jobs delivered, %d failed", tag, len(res.Event.Records), n,
			len(res.Response.BatchItemFailures))
	}
	if check {
		for i, arn := range arns {
			c, err := b.stack.CheckCredential(ctx, arn, project, fmt.Sprintf("%s-%d", tag, i), seeded)
			if err != nil {
				return 0, err
			}
			if !c.Converged() || !c.Rotated {
				return 0, fmt.Errorf("%s: credential %d did not converge: %+v", tag, i, c)
			}
		}
	}
	return res.Invocation, nil
}

func round(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
