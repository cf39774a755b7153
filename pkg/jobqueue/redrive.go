package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// ReasonRaw is the reason a redrive gives a dead-letter message that is a
// job body moved there by the job queue's redrive policy (it has no
// "reason" of its own): the job failed transiently too many times.
const ReasonRaw = "raw"

// Reasons lists the values RedriveOptions.Reason takes.
var Reasons = []string{deadletter.ReasonDeploymentFailed, deadletter.ReasonRejected,
	deadletter.ReasonInvalidJob, deadletter.ReasonInvalidSecret, deadletter.ReasonUnexpected,
	ReasonRaw}

// Defaults of a redrive.
const (
	// DefaultVisibilityTimeout hides a received dead-letter message for
	// this long: enough to send and delete it, short enough that a message
	// a stopped run held comes back soon.
	DefaultVisibilityTimeout = 60 * time.Second
	// receiveWait is the long poll of each receive, in seconds: an empty
	// answer then means the queue has nothing visible left.
	receiveWait = 1
	// staleReceives ends a run after this many receives in a row that
	// brought only messages already seen (held ones whose visibility
	// timeout ran out).
	staleReceives = 3
	// releaseTimeout bounds making the held messages visible again, which
	// is done even after the run's context ended.
	releaseTimeout = 30 * time.Second
)

// RedriveOptions say which dead-letter messages go back to the job queue.
type RedriveOptions struct {
	// DLQURL is the dead-letter queue read; QueueURL the job queue sent to.
	DLQURL   string
	QueueURL string
	// Reason, when not empty, selects the records of this reason, or with
	// ReasonRaw the raw job bodies.
	Reason string
	// SecretID, when not empty, selects the messages about this secret (a
	// name matches the ARN of the same secret).
	SecretID string
	// Max, when positive, stops the run once this many messages are sent.
	Max int
	// DryRun receives and reports, sends and deletes nothing, and makes
	// every received message visible again.
	DryRun bool
	// VisibilityTimeout hides each received message while the run works
	// on it; zero means DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// Progress, when not nil, gets a line of counts about once a second
	// and one at the end.
	Progress io.Writer
}

// State is what a redrive did with one dead-letter message.
type State string

// States of a dead-letter message after a redrive.
const (
	StateRedriven      State = "redriven"       // sent to the job queue, deleted from the DLQ
	StateWouldRedrive  State = "would redrive"  // dry run: would have been
	StateNotDeleted    State = "not deleted"    // sent, but the delete failed: it stays in the DLQ
	StateDuplicate     State = "duplicate"      // the same job as a message sent in this run; deleted
	StateWouldDedupe   State = "would remove"   // dry run: a duplicate that would be deleted
	StateSkipped       State = "skipped"        // no job can be made of it; left in the DLQ
	StateFailed        State = "failed"         // the send failed; left in the DLQ
	StateNotMatching   State = "not matching"   // not selected by the filters; left
	StateOverMax       State = "over max"       // selected after Max was reached; left
	stateSending       State = "sending"        // chosen, not sent yet
	stateSentUndeleted State = "sent undeleted" // sent, delete not done yet
)

// Message is one dead-letter message a redrive received, and what became
// of it.
type Message struct {
	// MessageID is the dead-letter queue's message id.
	MessageID string
	// Reason is the record's reason, or ReasonRaw for a raw job body.
	Reason string
	// SecretID and JobID are the job sent back (SecretID may be set
	// without a job, from a record that names a secret).
	SecretID string
	JobID    string
	State    State
	// Detail says why a message was skipped or failed, or which message it
	// duplicates.
	Detail string

	body    string // the job to send
	receipt string // the latest receipt handle
	key     string // what makes two messages the same job; may be empty
}

// RedriveReport is what a redrive found and did.
type RedriveReport struct {
	DLQURL   string
	QueueURL string
	DryRun   bool
	// Messages are the distinct dead-letter messages received, in order.
	Messages []*Message
	// NotReleased counts the messages left in the DLQ that could not be
	// made visible again; they come back when their visibility timeout
	// ends.
	NotReleased int
}

// Count returns how many messages are in one of the states.
func (r *RedriveReport) Count(states ...State) int {
	n := 0
	for _, m := range r.Messages {
		if slices.Contains(states, m.State) {
			n++
		}
	}
	return n
}

// OK reports whether every selected message that could be redriven was
// sent and deleted.
func (r *RedriveReport) OK() bool {
	return r.Count(StateFailed, StateNotDeleted) == 0
}

// Redrive moves dead-letter messages back to the job queue. It receives
// ten at a time, hiding each for the visibility timeout, and for each
// selected message sends a job:
//
//   - a dead-letter record (JSON with "reason") sends its jobBody when that
//     is a valid job; else, when it names a secret (a scheduled rotation's
//     record), a new job {"secretId": ..., "jobId": "redrive-<DLQ message
//     id>"}, so that a message sent twice after a crash rotates once; else
//     it is skipped;
//   - a raw job body (no "reason": the redrive policy moved it) is sent as
//     it is, when it is a valid job; else it is skipped.
//
// Messages that are the same job as one sent in this run (the same
// original message id, or for a scheduled rotation the same secret and
// version) are duplicates (README: a crash can repeat a record): they are
// deleted once their twin is sent. A message is deleted from the DLQ only
// after SQS accepted its job. Everything left (not selected, skipped,
// failed, and on a dry run everything) is made visible again at the end.
//
// The run ends when the DLQ has nothing visible left, when Max messages
// are sent, or when a call fails as a whole; the error says why it ended
// early, and the report is complete either way.
func Redrive(ctx context.Context, client RedriveAPI, opts RedriveOptions) (*RedriveReport, error) {
	return redrive(ctx, client, newBatchSender(client, opts.QueueURL), opts)
}

// Check reports every problem of the options, and fills in the default
// visibility timeout. Redrive calls it first.
func (o *RedriveOptions) Check() error {
	var errs []error
	if o.DLQURL == "" {
		errs = append(errs, errors.New("no dead-letter queue URL"))
	}
	if o.QueueURL == "" {
		errs = append(errs, errors.New("no job queue URL"))
	}
	if o.DLQURL != "" && o.DLQURL == o.QueueURL {
		errs = append(errs, errors.New("the dead-letter queue and the job queue are the same"))
	}
	if o.Reason != "" && !slices.Contains(Reasons, o.Reason) {
		errs = append(errs, fmt.Errorf("reason %q is none of %s", o.Reason,
			strings.Join(Reasons, ", ")))
	}
	if o.Max < 0 {
		errs = append(errs, errors.New("max is negative"))
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if o.VisibilityTimeout < time.Second || o.VisibilityTimeout > 12*time.Hour {
		errs = append(errs, fmt.Errorf("visibility timeout %s is not between 1s and 12h",
			o.VisibilityTimeout))
	}
	return errors.Join(errs...)
}

// redriveRun is the state of one redrive.
type redriveRun struct {
	client RedriveAPI
	sender *batchSender
	opts   RedriveOptions
	report *RedriveReport
	seen   map[string]*Message // by DLQ message id
	owners map[string]*Message // by key: the message chosen for that job
	taken  int                 // messages chosen and not failed: what Max counts
}

func redrive(ctx context.Context, client RedriveAPI, s *batchSender, opts RedriveOptions) (
	*RedriveReport, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	run := &redriveRun{client: client, sender: s, opts: opts,
		report: &RedriveReport{DLQURL: opts.DLQURL, QueueURL: opts.QueueURL, DryRun: opts.DryRun},
		seen:   map[string]*Message{}, owners: map[string]*Message{}}
	p := newProgress(opts.Progress)
	err := run.loop(ctx, p)

	// whatever is left goes back to the DLQ now rather than at its timeout
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	run.report.NotReleased = release(rctx, client, opts.DLQURL, run.report.Messages)
	p.done(run.counts())
	return run.report, err
}

// loop receives, chooses, sends and deletes until the DLQ has nothing new,
// Max is reached or a call fails.
func (run *redriveRun) loop(ctx context.Context, p *progress) error {
	stale := 0
	for run.opts.Max == 0 || run.taken < run.opts.Max {
		fresh, empty, err := run.receive(ctx)
		switch {
		case err != nil:
			return err
		case empty:
			return nil
		case len(fresh) == 0:
			if stale++; stale >= staleReceives {
				return nil
			}
			continue
		}
		stale = 0

		// choose what to send
		var chosen []*Message
		for _, m := range fresh {
			run.choose(m)
			if m.State == stateSending {
				chosen = append(chosen, m)
			}
		}
		if run.opts.DryRun {
			for _, m := range fresh {
				switch m.State {
				case stateSending:
					m.State = StateWouldRedrive
				case StateDuplicate:
					m.State = StateWouldDedupe
				}
			}
			p.update(run.counts)
			continue
		}

		// send, then delete what was sent and the duplicates of it
		stop := sendChosen(ctx, run.sender, run.opts.QueueURL, chosen)
		for _, m := range chosen {
			if m.State == StateFailed {
				run.taken--
			}
		}
		deleteDone(ctx, run.client, run.opts.DLQURL, fresh, run.owners)
		p.update(run.counts)
		if stop != nil {
			return stop
		}
	}
	return nil
}

// receive gets up to ten messages and returns those not seen before; a
// message seen before only gets its new receipt handle. empty is true
// when the DLQ had nothing visible.
func (run *redriveRun) receive(ctx context.Context) (fresh []*Message, empty bool, err error) {
	out, err := run.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(run.opts.DLQURL),
		MaxNumberOfMessages: MaxBatch,
		VisibilityTimeout:   int32(run.opts.VisibilityTimeout / time.Second),
		WaitTimeSeconds:     receiveWait,
	})
	if err != nil {
		return nil, false, fmt.Errorf("receiving from %s: %w", run.opts.DLQURL, err)
	}
	for _, m := range out.Messages {
		id := aws.ToString(m.MessageId)
		if old, ok := run.seen[id]; ok {
			old.receipt = aws.ToString(m.ReceiptHandle)
			continue
		}
		msg := readDeadLetter(id, aws.ToString(m.Body))
		msg.receipt = aws.ToString(m.ReceiptHandle)
		run.seen[id] = msg
		run.report.Messages = append(run.report.Messages, msg)
		fresh = append(fresh, msg)
	}
	return fresh, len(out.Messages) == 0, nil
}

// choose decides, before any send, what to do with a fresh message.
func (run *redriveRun) choose(m *Message) {
	opts, twin := run.opts, run.owners[m.key]
	switch {
	case opts.Reason != "" && m.Reason != opts.Reason,
		opts.SecretID != "" && !bulk.SameSecret(m.SecretID, opts.SecretID):
		m.State = StateNotMatching
	case m.State == StateSkipped:
	case m.key != "" && twin != nil && twin.State != StateFailed:
		// the twin's job is sent, or about to be; a failed twin is replaced
		m.State, m.Detail = StateDuplicate, "of "+twin.MessageID
	case opts.Max > 0 && run.taken >= opts.Max:
		m.State = StateOverMax
	default:
		m.State = stateSending
		run.taken++
		if m.key != "" {
			run.owners[m.key] = m
		}
	}
}

// counts is the progress line.
func (run *redriveRun) counts() string {
	r := run.report
	return fmt.Sprintf("redrive: received %d, redriven %d, failed %d", len(r.Messages),
		r.Count(StateRedriven, StateWouldRedrive), r.Count(StateFailed, StateNotDeleted))
}

// sendChosen sends the jobs of the chosen messages (at most ten) and marks
// each sent or failed. It returns an error when the run must stop.
func sendChosen(ctx context.Context, s *batchSender, queueURL string, chosen []*Message) error {
	if len(chosen) == 0 {
		return nil
	}
	fifo := isFIFO(queueURL)
	msgs := make([]message, len(chosen))
	for i, m := range chosen {
		msgs[i] = message{body: m.body}
		if fifo {
			msgs[i].groupID, msgs[i].dedupID = groupID(m.SecretID), dedupID("redrive", m.MessageID)
		}
	}
	errs, stop := s.send(ctx, msgs)
	for i, m := range chosen {
		if errs[i] != nil {
			m.State, m.Detail = StateFailed, errs[i].Error()
		} else {
			m.State = stateSentUndeleted
		}
	}
	return stop
}

// Write prints the report: a line per message not left untouched, the
// counts, and a warning for messages not made visible again.
func (r *RedriveReport) Write(w io.Writer) error {
	pw := &printer{w: w}
	kind := "standard"
	if isFIFO(r.QueueURL) {
		kind = "FIFO"
	}
	pw.printf("dead-letter queue: %s\njob queue: %s (%s)\n", r.DLQURL, r.QueueURL, kind)
	for _, m := range r.Messages {
		switch m.State {
		case StateNotMatching, StateOverMax:
			continue
		}
		line := fmt.Sprintf("%-13s %s reason=%s", m.State, m.MessageID, m.Reason)
		if m.SecretID != "" {
			line += " secretId=" + m.SecretID
		}
		if m.JobID != "" {
			line += " jobId=" + m.JobID
		}
		if m.Detail != "" {
			line += ": " + m.Detail
		}
		pw.printf("%s\n", line)
	}
	selected := len(r.Messages) - r.Count(StateNotMatching)
	if r.DryRun {
		pw.printf("summary (dry run, nothing sent or deleted): received %d, selected %d, "+
			"would redrive %d, would remove duplicates %d, skipped %d, not matching %d, "+
			"over max %d\n", len(r.Messages), selected, r.Count(StateWouldRedrive),
			r.Count(StateWouldDedupe), r.Count(StateSkipped), r.Count(StateNotMatching),
			r.Count(StateOverMax))
	} else {
		pw.printf("summary: received %d, selected %d, redriven %d, duplicates removed %d, "+
			"skipped %d, failed %d, sent but not deleted %d, not matching %d, over max %d\n",
			len(r.Messages), selected, r.Count(StateRedriven), r.Count(StateDuplicate),
			r.Count(StateSkipped), r.Count(StateFailed), r.Count(StateNotDeleted),
			r.Count(StateNotMatching), r.Count(StateOverMax))
	}
	if r.NotReleased > 0 {
		pw.printf("warning: %d messages left in the DLQ could not be made visible again; "+
			"they will be once their visibility timeout ends\n", r.NotReleased)
	}
	return pw.err
}
