package jobqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
)

// MaxBatch is the most entries one SQS batch call takes.
const MaxBatch = 10

// Defaults for retrying the entries of a batch that SQS did not accept.
const (
	// DefaultSendAttempts bounds the calls made for one batch: the first
	// and the retries of its entries that failed through no fault of the
	// sender.
	DefaultSendAttempts = 4
	// DefaultSendBackoff is the wait before the first retry; it doubles
	// for each later one, with jitter.
	DefaultSendBackoff = 200 * time.Millisecond
)

// maxGroupID is the longest MessageGroupId SQS takes.
const maxGroupID = 128

// EntryError is SQS's answer for one entry of a batch that it did not
// accept, read from the Failed list of a 200 answer.
type EntryError struct {
	Code    string
	Message string
	// SenderFault is true when the entry itself is at fault (resending it
	// as it is cannot succeed); false when SQS failed and a retry may.
	SenderFault bool
}

func (e *EntryError) Error() string {
	who := "SQS failed"
	if e.SenderFault {
		who = "SQS refused the message"
	}
	if e.Message == "" {
		return fmt.Sprintf("%s: %s", who, e.Code)
	}
	return fmt.Sprintf("%s: %s: %s", who, e.Code, e.Message)
}

// errUnconfirmed is an entry that a 200 answer listed neither as
// successful nor as failed.
var errUnconfirmed = errors.New("SQS did not confirm the message")

// message is one SQS message to send.
type message struct {
	body string
	// groupID and dedupID are set on a FIFO queue only.
	groupID string
	dedupID string
}

// batchSender sends messages to one queue, ten per call.
type batchSender struct {
	client   SendAPI
	queueURL string
	attempts int
	backoff  time.Duration
	// wait sleeps for d or until ctx ends; tests replace it.
	wait func(ctx context.Context, d time.Duration) error
	// sent is told after each batch how many of its messages were accepted
	// and how many were not; it may be nil.
	sent func(accepted, failed int)
}

func newBatchSender(client SendAPI, queueURL string) *batchSender {
	return &batchSender{client: client, queueURL: queueURL, attempts: DefaultSendAttempts,
		backoff: DefaultSendBackoff, wait: sleep}
}

// send sends msgs in batches of ten and returns, for each, nil if SQS
// accepted it or why not. The entries of a batch that failed through no
// fault of the sender (SenderFault false, or not confirmed) are sent again
// with backoff, up to the attempts; those at fault are not.
//
// A call that fails as a whole (after the SDK's own retries), or a context
// that ends, stops the run: the messages after it are not sent, and that
// error is returned beside the per-message errors.
func (s *batchSender) send(ctx context.Context, msgs []message) ([]error, error) {
	errs := make([]error, len(msgs))
	for start := 0; start < len(msgs); start += MaxBatch {
		end := min(start+MaxBatch, len(msgs))
		stop := s.sendBatch(ctx, msgs, start, end, errs)
		if s.sent != nil {
			accepted := 0
			for _, err := range errs[start:end] {
				if err == nil {
					accepted++
				}
			}
			s.sent(accepted, end-start-accepted)
		}
		if stop != nil {
			for i := end; i < len(msgs); i++ {
				errs[i] = fmt.Errorf("not sent: the run stopped: %w", stop)
			}
			return errs, stop
		}
	}
	return errs, nil
}

// sendBatch sends msgs[start:end] and retries its entries that may succeed
// on another try. It fills errs and returns an error only when the run
// must stop.
func (s *batchSender) sendBatch(ctx context.Context, msgs []message, start, end int,
	errs []error) error {
	fifo := isFIFO(s.queueURL)
	pending := make([]int, 0, end-start)
	for i := start; i < end; i++ {
		pending = append(pending, i)
	}
	for attempt := 1; ; attempt++ {

		// the entry id is the message's index: unique, and [0-9]{1,80}
		entries := make([]types.SendMessageBatchRequestEntry, 0, len(pending))
		for _, i := range pending {
			e := types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(i)),
				MessageBody: aws.String(msgs[i].body),
			}
			if fifo {
				e.MessageGroupId = aws.String(msgs[i].groupID)
				e.MessageDeduplicationId = aws.String(msgs[i].dedupID)
			}
			entries = append(entries, e)
		}
		out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
			QueueUrl: aws.String(s.queueURL),
			Entries:  entries,
		})
		if err != nil {
			err = fmt.Errorf("SendMessageBatch to %s: %w", s.queueURL, err)
			for _, i := range pending {
				errs[i] = err
			}
			return err
		}

		// read every entry's fate from the 200 answer
		accepted := map[string]bool{}
		for _, ok := range out.Successful {
			accepted[aws.ToString(ok.Id)] = true
		}
		refused := map[string]*EntryError{}
		for _, f := range out.Failed {
			refused[aws.ToString(f.Id)] = &EntryError{Code: aws.ToString(f.Code),
				Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
		}
		var again []int
		for _, i := range pending {
			id := strconv.Itoa(i)
			entryErr, failed := refused[id]
			switch {
			case failed && entryErr.SenderFault:
				errs[i] = entryErr
			case failed:
				errs[i] = entryErr
				again = append(again, i)
			case accepted[id]:
				errs[i] = nil
			default:
				errs[i] = errUnconfirmed
				again = append(again, i)
			}
		}
		if len(again) == 0 || attempt >= s.attempts {
			return nil
		}

		// wait, then send only the entries that may succeed now
		if err := s.wait(ctx, s.backoffFor(attempt)); err != nil {
			for _, i := range again {
				errs[i] = fmt.Errorf("%w (not retried: %w)", errs[i], err)
			}
			return err
		}
		pending = again
	}
}

// backoffFor returns the wait after the given attempt: the base doubled
// per attempt, with up to half of it taken off at random.
func (s *batchSender) backoffFor(attempt int) time.Duration {
	d := s.backoff << (attempt - 1)
	return d - rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isFIFO reports whether a queue URL names a FIFO queue.
func isFIFO(queueURL string) bool {
	return strings.HasSuffix(queueURL, ".fifo")
}

// groupID returns the FIFO message group of a job for a secret: the
// secret's name (an ARN's name part) when SQS takes it (up to 128
// characters of printable ASCII other than space), or else its hash.
func groupID(secretID string) string {
	// one group per secret, however it is named: SQS then never hands two
	// of its jobs to the bulk function at once
	secretID = bulk.SecretName(secretID)
	ok := secretID != "" && len(secretID) <= maxGroupID
	for i := 0; ok && i < len(secretID); i++ {
		ok = secretID[i] > ' ' && secretID[i] < 0x7f
	}
	if ok {
		return secretID
	}
	return "sha256-" + hashHex(secretID)
}

// dedupID returns a FIFO deduplication id: the hash of its parts.
func dedupID(parts ...string) string {
	return hashHex(strings.Join(parts, "\x00"))
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
