package jobqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
)

// EnqueueOptions say where jobs go and how.
type EnqueueOptions struct {
	// QueueURL is the job queue; a URL ending in ".fifo" is a FIFO queue.
	QueueURL string
	// JobID is the jobId of every job sent; RunJobID makes one per run.
	JobID string
	// DryRun builds and checks every job and sends none.
	DryRun bool
	// Progress, when not nil, gets a line of counts about once a second
	// and one at the end.
	Progress io.Writer
	// Exclude names secrets (names or ARNs) that get no job even when an
	// id names them, by name or by ARN: the secret holding the Apinizer
	// token, when a prefix or tag covers it.
	Exclude []string
}

// Job is one job to send: its secret and its message.
type Job struct {
	SecretID string
	// Body is the message body, {"secretId": ..., "jobId": ...}.
	Body string
	// GroupID and DedupID are the FIFO MessageGroupId and
	// MessageDeduplicationId; empty on a standard queue.
	GroupID string
	DedupID string
}

// Failure is a secret, or a dead-letter message, that was not handled,
// and why.
type Failure struct {
	ID     string
	Reason string
}

// EnqueueReport is what an enqueue run found and did.
type EnqueueReport struct {
	QueueURL string
	JobID    string
	DryRun   bool
	// Found counts the secret ids given, repeats included.
	Found int
	// Duplicates counts the repeats dropped: ids naming a secret, by name
	// or by ARN, that an earlier id named.
	Duplicates int
	// Excluded counts the distinct secrets dropped because Exclude names
	// them.
	Excluded int
	// Jobs are the valid jobs, in order: those sent, or on a dry run those
	// that would have been.
	Jobs []Job
	// Enqueued counts the jobs SQS accepted.
	Enqueued int
	// Failed lists the ids that are no valid job, and the jobs SQS did not
	// accept, with the reason.
	Failed []Failure
}

// OK reports whether every id found was enqueued (or, on a dry run, is a
// valid job).
func (r *EnqueueReport) OK() bool {
	return len(r.Failed) == 0
}

// Enqueue sends one job per distinct secret (see Dedupe) to the queue, ten
// per SendMessageBatch call, retrying the entries SQS failed to take. Each
// job is {"secretId": id, "jobId": opts.JobID}, checked with
// bulk.ParseJob first; an id that makes no valid job is reported and not
// sent. On a FIFO queue a job's message group is its secret (see
// groupID) and its deduplication id the hash of the job id and the secret,
// so the same job sent twice within SQS's five minutes is kept once.
//
// The error is for options that make every job invalid; anything that
// happens to one job is in the report.
func Enqueue(ctx context.Context, client SendAPI, ids []string, opts EnqueueOptions) (
	*EnqueueReport, error) {
	return enqueue(ctx, newBatchSender(client, opts.QueueURL), ids, opts)
}

func enqueue(ctx context.Context, s *batchSender, ids []string, opts EnqueueOptions) (
	*EnqueueReport, error) {
	if opts.QueueURL == "" {
		return nil, errors.New("no job queue URL")
	}
	if err := CheckJobID(opts.JobID); err != nil {
		return nil, err
	}
	r := &EnqueueReport{QueueURL: opts.QueueURL, JobID: opts.JobID, DryRun: opts.DryRun,
		Found: len(ids)}
	unique, dups := Dedupe(ids)
	r.Duplicates = dups

	// build and check every job
	fifo := isFIFO(opts.QueueURL)
	for _, id := range unique {
		if excluded(id, opts.Exclude) {
			r.Excluded++
			continue
		}
		body := jobBody(id, opts.JobID)
		job, err := bulk.ParseJob(body)
		if err == nil && job.SecretID != id {
			err = errors.New("the secret id does not survive JSON encoding")
		}
		if err != nil {
			r.Failed = append(r.Failed, Failure{ID: id, Reason: err.Error()})
			continue
		}
		j := Job{SecretID: id, Body: body}
		if fifo {
			// the secret counts by name, as in the job's token
			j.GroupID, j.DedupID = groupID(id), dedupID(opts.JobID, bulk.SecretName(id))
		}
		r.Jobs = append(r.Jobs, j)
	}
	if opts.DryRun {
		return r, nil
	}

	// send, ten per call, with a progress line now and then
	msgs := make([]message, len(r.Jobs))
	for i, j := range r.Jobs {
		msgs[i] = message{body: j.Body, groupID: j.GroupID, dedupID: j.DedupID}
	}
	p := newProgress(opts.Progress)
	failed := 0
	s.sent = func(accepted, notAccepted int) {
		r.Enqueued += accepted
		failed += notAccepted
		p.update(func() string {
			return fmt.Sprintf("enqueue: %d/%d sent, %d failed", r.Enqueued, len(msgs), failed)
		})
	}
	errs, _ := s.send(ctx, msgs)
	for i, err := range errs {
		if err != nil {
			r.Failed = append(r.Failed, Failure{ID: r.Jobs[i].SecretID, Reason: err.Error()})
		}
	}
	p.done(fmt.Sprintf("enqueue: %d/%d sent, %d failed", r.Enqueued, len(msgs),
		len(msgs)-r.Enqueued))
	return r, nil
}

// excluded reports whether id names one of the secrets in exclude.
func excluded(id string, exclude []string) bool {
	for _, x := range exclude {
		if bulk.SameSecret(id, x) {
			return true
		}
	}
	return false
}

// CheckJobID accepts a job id the bulk function takes: 1 to 128 printable
// ASCII characters without spaces.
func CheckJobID(id string) error {
	if _, err := bulk.ParseJob(jobBody("x", id)); err != nil || id == "" {
		return fmt.Errorf("job id %q cannot be used: it must be 1 to 128 printable "+
			"ASCII characters without spaces", id)
	}
	return nil
}

// jobBody encodes a job the way the bulk function reads it.
func jobBody(secretID, jobID string) string {
	b, _ := json.Marshal(bulk.Job{SecretID: secretID, JobID: jobID}) // strings only: never fails
	return string(b)
}

// Write prints the report: on a dry run every job that would be sent,
// then the counts, then each failure.
func (r *EnqueueReport) Write(w io.Writer) error {
	pw := &printer{w: w}
	kind := "standard"
	if isFIFO(r.QueueURL) {
		kind = "FIFO"
	}
	pw.printf("queue: %s (%s)\njob id: %s\n", r.QueueURL, kind, r.JobID)
	if r.DryRun {
		for _, j := range r.Jobs {
			if j.GroupID != "" {
				pw.printf("would send %s group=%s dedup=%s\n", j.Body, j.GroupID, j.DedupID)
			} else {
				pw.printf("would send %s\n", j.Body)
			}
		}
		pw.printf("summary (dry run, nothing sent): found %d, would enqueue %d, "+
			"failed %d, skipped duplicates %d, excluded %d\n", r.Found, len(r.Jobs), len(r.Failed),
			r.Duplicates, r.Excluded)
	} else {
		pw.printf("summary: found %d, enqueued %d, failed %d, skipped duplicates %d, excluded %d\n",
			r.Found, r.Enqueued, len(r.Failed), r.Duplicates, r.Excluded)
	}
	for _, f := range r.Failed {
		pw.printf("failed %s: %s\n", f.ID, f.Reason)
	}
	return pw.err
}

// printer keeps the first write error, so that a report is printed
// without checking every line.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
