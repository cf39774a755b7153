package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/jobqueue"
)

const enqueueUsage = `Usage: apinizer-jobs enqueue --queue-url URL [flags] [secret-id ... | -]

Sends one bulk rotation job {"secretId": ..., "jobId": ...} per secret to the
job queue, ten per SendMessageBatch call, retrying the entries SQS failed to
take. Secret ids (names or ARNs) come from any of these, added together; a
secret found twice, by name or by ARN, is sent once, as first found:

  secret-id ...          the arguments; "-" reads ids from stdin
  --file FILE            one id per line; blank lines and '#' lines skipped
                         (repeatable)
  --prefix P             every secret whose name starts with P
  --tag Key=Value        every secret carrying this tag (with --prefix: both)
  --project NAME         every credential of an Apinizer project, mapped to a
                         secret name by --name-template; needs --apinizer-url
                         and --token-secret-id

Flags:
  --queue-url URL        the job queue (required); a URL ending in .fifo is a
                         FIFO queue: group = secret id, deduplication id =
                         hash(jobId, secret id)
  --job-id ID            jobId of every job (default: enqueue-<UTC time of
                         the run>); the bulk function rotates a secret once
                         per job id
  --dry-run              print the jobs; send nothing
  --progress             print progress to stderr about once a second
  --apinizer-url URL     Apinizer Manager base URL (https; http on loopback)
  --token-secret-id ID   the secret holding the Apinizer token
  --name-template T      secret name of a credential, from {project} and
                         {username} (default "apinizer/{project}/{username}")
  --exclude ID           never enqueue this secret, by name or ARN
                         (repeatable); --token-secret-id is always excluded

Prints every failure and a summary (found, enqueued, failed, skipped
duplicates, excluded); exits 1 if any id was not enqueued.
`

// enqueueFlags are the parsed flags of "enqueue".
type enqueueFlags struct {
	queueURL, jobID                     string
	dryRun, progress                    bool
	files, exclude                      listFlag
	prefix, tag                         string
	project, apinizerURL, tokenSecretID string
	nameTemplate                        string
	ids                                 []string
	stdin                               bool
	tagKey, tagValue                    string
}

func runEnqueue(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, code, ok := parseEnqueue(args, stderr)
	if !ok {
		return code
	}

	// gather the ids: arguments, stdin, files, then what AWS and Apinizer list
	ids := f.ids
	if f.stdin {
		more, err := jobqueue.ReadIDs(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "apinizer-jobs enqueue: stdin: %v\n", err)
			return exitFailed
		}
		ids = append(ids, more...)
	}
	for _, name := range f.files {
		more, err := readIDFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "apinizer-jobs enqueue: %v\n", err)
			return exitFailed
		}
		ids = append(ids, more...)
	}
	var cfg aws.Config
	needAWS := !f.dryRun || f.prefix != "" || f.tag != "" || f.project != ""
	if needAWS {
		var err error
		if cfg, err = loadAWS(ctx); err != nil {
			fmt.Fprintf(stderr, "apinizer-jobs enqueue: %v\n", err)
			return exitFailed
		}
		if err := checkQueueRegion("--queue-url", f.queueURL, cfg.Region); err != nil {
			return usageError(stderr, "enqueue", err)
		}
	}
	listed, err := listedIDs(ctx, cfg, f)
	if err != nil {
		fmt.Fprintf(stderr, "apinizer-jobs enqueue: %v\n", err)
		return exitFailed
	}
	ids = append(ids, listed...)

	// send, or on a dry run only check
	opts := jobqueue.EnqueueOptions{QueueURL: f.queueURL, JobID: f.jobID, DryRun: f.dryRun,
		Exclude: f.exclude}
	if f.tokenSecretID != "" {
		// the token is no credential: a job for it could only fail
		opts.Exclude = append(opts.Exclude, f.tokenSecretID)
	}
	if f.progress {
		opts.Progress = stderr
	}
	var client jobqueue.SendAPI = noSend{}
	if !f.dryRun {
		client = sqs.NewFromConfig(cfg)
	}
	report, err := jobqueue.Enqueue(ctx, client, ids, opts)
	if err != nil {
		return usageError(stderr, "enqueue", err)
	}
	if err := report.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "apinizer-jobs enqueue: writing the report: %v\n", err)
		return exitFailed
	}
	if report.Found == 0 {
		fmt.Fprintln(stderr, "apinizer-jobs enqueue: no secret found: nothing enqueued")
	}
	if !report.OK() {
		return exitFailed
	}
	return exitOK
}

// parseEnqueue parses and checks the flags of "enqueue".
func parseEnqueue(args []string, stderr io.Writer) (*enqueueFlags, int, bool) {
	f := &enqueueFlags{}
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, enqueueUsage) }
	fs.StringVar(&f.queueURL, "queue-url", "", "the job queue URL")
	fs.StringVar(&f.jobID, "job-id", "", "jobId of every job")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the jobs; send nothing")
	fs.BoolVar(&f.progress, "progress", false, "print progress to stderr")
	fs.Var(&f.files, "file", "a file of secret ids")
	fs.Var(&f.exclude, "exclude", "a secret never to enqueue")
	fs.StringVar(&f.prefix, "prefix", "", "secret name prefix")
	fs.StringVar(&f.tag, "tag", "", "secret tag Key=Value")
	fs.StringVar(&f.project, "project", "", "Apinizer project")
	fs.StringVar(&f.apinizerURL, "apinizer-url", "", "Apinizer Manager base URL")
	fs.StringVar(&f.tokenSecretID, "token-secret-id", "", "secret holding the Apinizer token")
	fs.StringVar(&f.nameTemplate, "name-template", jobqueue.DefaultNameTemplate,
		"secret name template")
	positional, code, ok := parseFlags(fs, args)
	if !ok {
		return nil, code, false
	}

	var errs []error
	for _, a := range positional {
		if a == "-" {
			f.stdin = true
		} else {
			f.ids = append(f.ids, a)
		}
	}
	if f.queueURL == "" {
		errs = append(errs, errors.New("--queue-url is required"))
	} else if err := checkQueueURL("--queue-url", f.queueURL); err != nil {
		errs = append(errs, err)
	}
	if len(f.ids) == 0 && !f.stdin && len(f.files) == 0 && f.prefix == "" && f.tag == "" &&
		f.project == "" {
		errs = append(errs, errors.New("no secrets given: name them, or use -, --file, "+
			"--prefix, --tag or --project"))
	}
	if f.tag != "" {
		var err error
		if f.tagKey, f.tagValue, err = jobqueue.ParseTag(f.tag); err != nil {
			errs = append(errs, fmt.Errorf("--tag: %w", err))
		}
	}
	if f.project != "" {
		if f.apinizerURL == "" || f.tokenSecretID == "" {
			errs = append(errs, errors.New("--project needs --apinizer-url and --token-secret-id"))
		} else if err := apinizer.CheckBaseURL(f.apinizerURL); err != nil {
			errs = append(errs, fmt.Errorf("--apinizer-url: %s", strings.TrimPrefix(err.Error(), "apinizer: ")))
		}
		if err := jobqueue.CheckNameTemplate(f.nameTemplate); err != nil {
			errs = append(errs, fmt.Errorf("--name-template: %w", err))
		}
	} else if f.apinizerURL != "" || f.tokenSecretID != "" ||
		f.nameTemplate != jobqueue.DefaultNameTemplate {
		errs = append(errs, errors.New("--apinizer-url, --token-secret-id and --name-template "+
			"go with --project"))
	}
	if f.jobID == "" {
		f.jobID = jobqueue.RunJobID(time.Now())
	} else if err := jobqueue.CheckJobID(f.jobID); err != nil {
		errs = append(errs, fmt.Errorf("--job-id: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, usageError(stderr, "enqueue", err), false
	}
	return f, 0, true
}

// listedIDs returns the secrets --prefix, --tag and --project select.
func listedIDs(ctx context.Context, cfg aws.Config, f *enqueueFlags) ([]string, error) {
	var ids []string
	var sm *secretsmanager.Client
	if f.prefix != "" || f.tag != "" || f.project != "" {
		sm = secretsmanager.NewFromConfig(cfg)
	}
	if f.prefix != "" || f.tag != "" {
		more, err := jobqueue.ListSecretIDs(ctx, sm, jobqueue.SecretFilter{Prefix: f.prefix,
			TagKey: f.tagKey, TagValue: f.tagValue})
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	if f.project != "" {
		client, err := apinizer.New(f.apinizerURL,
			apinizer.NewSecretToken(sm, f.tokenSecretID), apinizer.Options{})
		if err != nil {
			return nil, fmt.Errorf("--apinizer-url: %w", err)
		}
		more, err := jobqueue.ProjectSecretIDs(ctx, client, f.project, f.nameTemplate)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	return ids, nil
}

// readIDFile reads a file of secret ids.
func readIDFile(name string) ([]string, error) {
	file, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	ids, err := jobqueue.ReadIDs(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ids, nil
}

// noSend stands in for SQS on a dry run that needs no AWS at all; a dry
// run never sends.
type noSend struct{}

func (noSend) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput,
	...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return nil, errors.New("a dry run sends nothing")
}
