// Command apinizer-jobs is the operators' side of the bulk rotation queue:
// "enqueue" sends bulk rotation jobs, "redrive" moves dead-letter messages
// back to the job queue once the cause of their failure is fixed. The
// logic is in pkg/jobqueue; this file parses flags and wires clients.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // something was not done
	exitUsage  = 2
)

const usage = `apinizer-jobs: enqueue bulk rotation jobs; move dead-letter messages back

Usage:
  apinizer-jobs enqueue --queue-url URL [flags] [secret-id ... | -]
  apinizer-jobs redrive --dlq-url URL --queue-url URL [flags]

"apinizer-jobs enqueue -h" and "apinizer-jobs redrive -h" list the flags.
AWS access comes from the SDK's default configuration (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL, ...). No secret value is ever printed.
Exit status: 0 all done, 1 something failed, 2 bad usage.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command with its arguments (without the program name) and
// returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, os.Stdin, stdout, stderr)
}

// runWith is run with stdin given, for the tests.
func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "enqueue":
		return runEnqueue(ctx, args[1:], stdin, stdout, stderr)
	case "redrive":
		return runRedrive(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "apinizer-jobs: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseInterleaved parses flags that may come before, between and after
// the positional arguments, and returns those. Everything after "--" is
// positional; so is "-".
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseFlags parses a subcommand's flags. It returns the exit code to end
// with when parsing does not go on: 0 after -h, 2 after a usage error.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	positional, err := parseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, exitOK, false
	case err != nil:
		return nil, exitUsage, false // the flag package printed why, and the usage
	}
	// a flag given an empty value ("--job-id $UNSET") is a mistake, not a
	// request for the default: the default may do something else entirely
	var empty []string
	fs.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			return
		}
		blank := strings.TrimSpace(f.Value.String()) == ""
		if l, ok := f.Value.(*listFlag); ok {
			blank = slices.ContainsFunc(*l, func(v string) bool { return strings.TrimSpace(v) == "" })
		}
		if blank {
			empty = append(empty, "--"+f.Name)
		}
	})
	if len(empty) > 0 {
		return nil, usageError(fs.Output(), fs.Name(), fmt.Errorf("%s given an empty value; "+
			"leave a flag out for its default", strings.Join(empty, ", "))), false
	}
	return positional, 0, true
}

// checkQueueURL tells whether v, given as flag, looks like a queue URL:
// http or https with a host. A dry run sends nothing, so this is the only
// check it gets.
func checkQueueURL(flag, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%s %q is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
			flag, v)
	}
	return nil
}

// checkQueueRegion refuses an AWS queue URL of another region than the
// SDK's: the SDK sends to its own region's endpoint, whatever the URL's
// host says. A URL that is not an AWS host (a local emulator) is not
// checked.
func checkQueueRegion(flag, v, region string) error {
	u, err := url.Parse(v)
	if err != nil {
		return nil // checkQueueURL has refused it already
	}
	host := strings.ToLower(u.Hostname())
	var queueRegion string
	if rest, ok := strings.CutPrefix(host, "sqs."); ok {
		queueRegion, _, _ = strings.Cut(rest, ".")
	} else if r, ok := strings.CutSuffix(host, ".queue.amazonaws.com"); ok {
		queueRegion = r
	}
	if !strings.Contains(host, ".amazonaws.com") || queueRegion == "" || queueRegion == region {
		return nil
	}
	return fmt.Errorf("%s is a queue in %s, but the AWS configuration's region is %s "+
		"(set AWS_REGION or the profile's region to the queue's)", flag, queueRegion, region)
}

// usageError prints a usage problem of a subcommand and returns exitUsage.
func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "apinizer-jobs %s: %v\n(\"apinizer-jobs %s -h\" lists the flags)\n",
		cmd, err, cmd)
	return exitUsage
}

// loadAWS loads the SDK's default configuration and insists on a region.
func loadAWS(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION or a profile's region")
	}
	return cfg, nil
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string { return fmt.Sprint([]string(*l)) }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
