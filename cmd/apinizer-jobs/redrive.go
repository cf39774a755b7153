package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/apinizer-rotation/rotator/pkg/jobqueue"
)

const redriveUsage = `Usage: apinizer-jobs redrive --dlq-url URL --queue-url URL [flags]

Moves dead-letter messages back to the job queue, after the cause of their
failure is fixed. Receives ten at a time; for a dead-letter record it sends
the job it came from (jobBody), or a new job for the secret it names (a
scheduled rotation's record); a raw job body (no "reason": it failed
transiently too often) is sent as it is. A message is deleted from the
dead-letter queue only once SQS took its job; a repeated record of a job
already sent is deleted too. Everything else is made visible again at the
end.

Flags:
  --dlq-url URL          the dead-letter queue (required)
  --queue-url URL        the job queue (required)
  --reason R             only records of this reason: deployment_failed,
                         rejected, invalid_job, invalid_secret, unexpected;
                         or raw for the raw job bodies
  --secret S             only messages about this secret (name or ARN)
  --max N                stop after N messages sent (default, or 0: all)
  --dry-run              receive and print; send and delete nothing, and
                         make every message visible again
  --progress             print progress to stderr about once a second
  --visibility-timeout D how long a received message stays hidden while it
                         is handled (default 60s)

Prints a line per message selected and a summary; exits 1 if a send or a
delete failed, or the run stopped early.
`

func runRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var opts jobqueue.RedriveOptions
	var progress bool
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, redriveUsage) }
	fs.StringVar(&opts.DLQURL, "dlq-url", "", "the dead-letter queue URL")
	fs.StringVar(&opts.QueueURL, "queue-url", "", "the job queue URL")
	fs.StringVar(&opts.Reason, "reason", "", "only records of this reason")
	fs.StringVar(&opts.SecretID, "secret", "", "only messages about this secret")
	fs.IntVar(&opts.Max, "max", 0, "stop after this many messages sent")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "send and delete nothing")
	fs.BoolVar(&progress, "progress", false, "print progress to stderr")
	fs.DurationVar(&opts.VisibilityTimeout, "visibility-timeout",
		jobqueue.DefaultVisibilityTimeout, "how long a received message stays hidden")
	positional, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, "redrive", fmt.Errorf("unexpected argument %q", positional[0]))
	}
	if opts.DLQURL == "" || opts.QueueURL == "" {
		return usageError(stderr, "redrive", errors.New("--dlq-url and --queue-url are required"))
	}
	if opts.VisibilityTimeout%time.Second != 0 || opts.VisibilityTimeout <= 0 {
		return usageError(stderr, "redrive", errors.New("--visibility-timeout must be whole seconds, "+
			"from 1s to 12h"))
	}
	queues := []struct{ flag, url string }{{"--dlq-url", opts.DLQURL}, {"--queue-url", opts.QueueURL}}
	for _, q := range queues {
		if err := checkQueueURL(q.flag, q.url); err != nil {
			return usageError(stderr, "redrive", err)
		}
	}
	if err := opts.Check(); err != nil {
		return usageError(stderr, "redrive", err)
	}
	if progress {
		opts.Progress = stderr
	}

	cfg, err := loadAWS(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "apinizer-jobs redrive: %v\n", err)
		return exitFailed
	}
	for _, q := range queues {
		if err := checkQueueRegion(q.flag, q.url, cfg.Region); err != nil {
			return usageError(stderr, "redrive", err)
		}
	}
	report, err := jobqueue.Redrive(ctx, sqs.NewFromConfig(cfg), opts)
	if report == nil {
		fmt.Fprintf(stderr, "apinizer-jobs redrive: %v\n", err)
		return exitFailed
	}
	if werr := report.Write(stdout); werr != nil {
		fmt.Fprintf(stderr, "apinizer-jobs redrive: writing the report: %v\n", werr)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(stderr, "apinizer-jobs redrive: stopped early: %v\n", err)
		return exitFailed
	}
	if !report.OK() {
		return exitFailed
	}
	return exitOK
}
