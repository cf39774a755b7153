package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// maxBatch is the most entries SendMessageBatch takes.
const maxBatch = 10

// maxBatchBytes keeps one SendMessageBatch under the queue's 256 KiB
// limit for the whole batch.
const maxBatchBytes = 192 << 10

// sendTimeout bounds one SendMessageBatch call, retries by the SDK included.
const sendTimeout = 10 * time.Second

// SQSAPI is the one SQS call the sender makes.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput,
		optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// Sender sends records to one queue.
type Sender struct {
	client   SQSAPI
	queueURL string
	now      func() time.Time
}

// NewSender returns a Sender for the queue at queueURL.
func NewSender(client SQSAPI, queueURL string) *Sender {
	return &Sender{client: client, queueURL: queueURL, now: time.Now}
}

// SendError lists the records that were not accepted by the queue, by their
// index in the slice given to Send.
type SendError struct {
	Failed map[int]error
}

func (e *SendError) Error() string {
	var parts []string
	for i, err := range e.Failed {
		parts = append(parts, fmt.Sprintf("record %d: %v", i, err))
	}
	return fmt.Sprintf("dead-letter queue: %d record(s) not sent: %s",
		len(e.Failed), strings.Join(parts, "; "))
}

// Send sends records in batches of at most ten, and reads the per-entry
// failures SQS reports inside a successful answer. It returns nil only when
// every record was accepted; otherwise a *SendError naming each record that
// was not. A record with no timestamp gets the current time.
func (s *Sender) Send(ctx context.Context, records ...Record) error {
	failed := map[int]error{}
	fifo := strings.HasSuffix(s.queueURL, ".fifo")
	for start := 0; start < len(records); {
		// build the entries, at most ten and maxBatchBytes; an entry's id
		// is the record's index
		var entries []types.SendMessageBatchRequestEntry
		size, i := 0, start
		for ; i < len(records) && i-start < maxBatch; i++ {
			if records[i].Timestamp.IsZero() {
				records[i].Timestamp = s.now().UTC()
			}
			body, err := json.Marshal(records[i])
			if err != nil {
				failed[i] = fmt.Errorf("encoding record: %w", err)
				continue
			}
			if size > 0 && size+len(body) > maxBatchBytes {
				break
			}
			size += len(body)
			entry := types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(i)),
				MessageBody: aws.String(string(body)),
			}
			if fifo {
				sum := sha256.Sum256(body)
				entry.MessageGroupId = aws.String(groupOf(records[i]))
				entry.MessageDeduplicationId = aws.String(hex.EncodeToString(sum[:16]))
			}
			entries = append(entries, entry)
		}
		start = i
		if len(entries) == 0 {
			continue
		}

		// send, and read every entry that failed inside a 200 answer
		cctx, cancel := context.WithTimeout(ctx, sendTimeout)
		out, err := s.client.SendMessageBatch(cctx, &sqs.SendMessageBatchInput{
			QueueUrl: aws.String(s.queueURL),
			Entries:  entries,
		})
		cancel()
		if err != nil {
			for _, e := range entries {
				i, _ := strconv.Atoi(aws.ToString(e.Id))
				failed[i] = fmt.Errorf("sending to dead-letter queue: %w", err)
			}
			continue
		}
		// only this call's entry ids count: an answer naming any other id
		// (a malformed answer) must neither fail a record sent before nor
		// name one that does not exist
		sent := map[string]bool{}
		for _, e := range entries {
			sent[aws.ToString(e.Id)] = true
		}
		accepted := map[string]bool{}
		for _, ok := range out.Successful {
			accepted[aws.ToString(ok.Id)] = true
		}
		for _, f := range out.Failed {
			if !sent[aws.ToString(f.Id)] {
				continue
			}
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			failed[i] = fmt.Errorf("dead-letter queue refused the record: %s %s",
				aws.ToString(f.Code), aws.ToString(f.Message))
			accepted[aws.ToString(f.Id)] = false
		}
		for _, e := range entries {
			if !accepted[aws.ToString(e.Id)] {
				i, _ := strconv.Atoi(aws.ToString(e.Id))
				if _, known := failed[i]; !known {
					failed[i] = errors.New("dead-letter queue did not confirm the record")
				}
			}
		}
	}
	if len(failed) > 0 {
		return &SendError{Failed: failed}
	}
	return nil
}

func groupOf(r Record) string {
	if r.SecretID != "" {
		sum := sha256.Sum256([]byte(r.SecretID))
		return hex.EncodeToString(sum[:16])
	}
	return "deadletter"
}
