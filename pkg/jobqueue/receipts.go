package jobqueue

import (
	"context"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// deleteDone deletes from the DLQ the fresh messages whose job was sent,
// and the duplicates of a job that was sent. A duplicate whose twin failed
// stays, as failed.
func deleteDone(ctx context.Context, client RedriveAPI, dlqURL string, fresh []*Message,
	owners map[string]*Message) {
	var del []*Message
	for _, m := range fresh {
		switch m.State {
		case stateSentUndeleted:
			del = append(del, m)
		case StateDuplicate:
			switch owners[m.key].State {
			case stateSentUndeleted, StateRedriven, StateNotDeleted:
				del = append(del, m)
			default:
				m.State, m.Detail = StateFailed, m.Detail+", whose send failed"
			}
		}
	}
	errs := changeBatches(ctx, del, func(ctx context.Context, ids, receipts []string) (
		[]types.BatchResultErrorEntry, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(ids))
		for i := range ids {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(ids[i]),
				ReceiptHandle: aws.String(receipts[i])}
		}
		out, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(dlqURL), Entries: entries})
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
	for i, m := range del {
		switch {
		case errs[i] == nil && m.State == stateSentUndeleted:
			m.State = StateRedriven
		case errs[i] == nil:
			// a duplicate, deleted
		case m.State == stateSentUndeleted:
			m.State, m.Detail = StateNotDeleted, "sent, but not deleted from the DLQ "+
				"(a later redrive sends it again): "+errs[i].Error()
		default:
			m.State, m.Detail = StateFailed, m.Detail+": not deleted: "+errs[i].Error()
		}
	}
}

// release makes the messages not deleted visible again, and returns how
// many could not be.
func release(ctx context.Context, client RedriveAPI, dlqURL string, msgs []*Message) int {
	var left []*Message
	for _, m := range msgs {
		if m.State != StateRedriven && m.State != StateDuplicate && m.receipt != "" {
			left = append(left, m)
		}
	}
	errs := changeBatches(ctx, left, func(ctx context.Context, ids, receipts []string) (
		[]types.BatchResultErrorEntry, error) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(ids))
		for i := range ids {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(ids[i]),
				ReceiptHandle: aws.String(receipts[i]), VisibilityTimeout: 0}
		}
		out, err := client.ChangeMessageVisibilityBatch(ctx,
			&sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(dlqURL), Entries: entries})
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	return n
}

// changeBatches runs a receipt-handle batch call (delete, change
// visibility) over msgs, ten at a time, and returns each message's error.
// An entry the answer does not list as failed succeeded.
func changeBatches(ctx context.Context, msgs []*Message,
	call func(ctx context.Context, ids, receipts []string) ([]types.BatchResultErrorEntry, error),
) []error {
	errs := make([]error, len(msgs))
	for start := 0; start < len(msgs); start += MaxBatch {
		end := min(start+MaxBatch, len(msgs))
		var ids, receipts []string
		for i := start; i < end; i++ {
			ids = append(ids, strconv.Itoa(i))
			receipts = append(receipts, msgs[i].receipt)
		}
		failed, err := call(ctx, ids, receipts)
		for i := start; i < end; i++ {
			errs[i] = err
		}
		for _, f := range failed {
			if i, convErr := strconv.Atoi(aws.ToString(f.Id)); convErr == nil && i >= start && i < end {
				errs[i] = &EntryError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message),
					SenderFault: f.SenderFault}
			}
		}
	}
	return errs
}
