package jobqueue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeSQS records the SendMessageBatch calls and answers them as answer
// says. It also holds a tiny dead-letter queue for redrive: receive hides
// what it returns, delete removes it, a visibility change of 0 shows it
// again.
type fakeSQS struct {
	mu sync.Mutex
	// answer decides the answer to send call n (from 1); nil accepts all.
	answer func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
	sends  []*sqs.SendMessageBatchInput

	dlq        []*fakeMessage
	seq        int
	receives   int
	deleteFail map[string]bool // DLQ message ids whose delete is refused
	// expire makes every message visible again at once, as if its
	// visibility timeout had run out
	expire   bool
	deleted  []string
	released []string
}

type fakeMessage struct {
	id, body, receipt string
	hidden            bool
}

var _ RedriveAPI = (*fakeSQS)(nil)

func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput,
	_ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // as the SDK does
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, in)
	if f.answer != nil {
		return f.answer(len(f.sends), in)
	}
	return acceptAll(in), nil
}

// acceptAll is the answer that takes every entry.
func acceptAll(in *sqs.SendMessageBatchInput) *sqs.SendMessageBatchOutput {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id,
			MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out
}

// bodies returns the bodies of every send call, in order.
func (f *fakeSQS) bodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, in := range f.sends {
		for _, e := range in.Entries {
			out = append(out, aws.ToString(e.MessageBody))
		}
	}
	return out
}

// put adds a message to the dead-letter queue.
func (f *fakeSQS) put(id, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dlq = append(f.dlq, &fakeMessage{id: id, body: body})
}

// left returns the ids of the messages still in the dead-letter queue,
// and whether each is visible.
func (f *fakeSQS) left() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for _, m := range f.dlq {
		out[m.id] = !m.hidden
	}
	return out
}

func (f *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput,
	_ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.receives++
	out := &sqs.ReceiveMessageOutput{}
	for _, m := range f.dlq {
		if (m.hidden && !f.expire) || len(out.Messages) == int(in.MaxNumberOfMessages) {
			continue
		}
		f.seq++
		m.hidden, m.receipt = true, fmt.Sprintf("r%d", f.seq)
		out.Messages = append(out.Messages, types.Message{MessageId: aws.String(m.id),
			Body: aws.String(m.body), ReceiptHandle: aws.String(m.receipt)})
	}
	return out, nil
}

func (f *fakeSQS) find(receipt string) (int, *fakeMessage) {
	for i, m := range f.dlq {
		if m.receipt == receipt {
			return i, m
		}
	}
	return -1, nil
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput,
	_ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		i, m := f.find(aws.ToString(e.ReceiptHandle))
		if m == nil || f.deleteFail[m.id] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id,
				Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		f.dlq = append(f.dlq[:i], f.dlq[i+1:]...)
		f.deleted = append(f.deleted, m.id)
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(_ context.Context,
	in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (
	*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		_, m := f.find(aws.ToString(e.ReceiptHandle))
		if m == nil {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id,
				Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		}
		if e.VisibilityTimeout == 0 {
			m.hidden = false
			f.released = append(f.released, m.id)
		}
	}
	return out, nil
}

// testSender is a batch sender that records its waits instead of
// sleeping.
func testSender(client SendAPI, queueURL string, waits *[]time.Duration) *batchSender {
	s := newBatchSender(client, queueURL)
	s.wait = func(_ context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return nil
	}
	return s
}
