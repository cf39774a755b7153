// Package jobqueue puts bulk rotation jobs on the job queue and moves
// dead-letter messages back to it. It is the logic of the apinizer-jobs
// command: where the secret ids come from (arguments, a file, a name prefix,
// a tag, an Apinizer project), how jobs are sent ten per SendMessageBatch
// call with the entries that failed retried, and how the dead-letter queue
// is read, filtered and emptied of what was sent back.
//
// Nothing here prints or keeps a secret value: only secret ids, names, job
// ids and SQS message ids.
package jobqueue

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
)

// SendAPI is the one SQS call enqueuing makes.
type SendAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput,
		optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// RedriveAPI holds the SQS calls a redrive makes: it reads the dead-letter
// queue, sends to the job queue, deletes what was sent and releases what
// it leaves.
type RedriveAPI interface {
	SendAPI
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput,
		optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput,
		optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput,
		optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// ListSecretsAPI is the one Secrets Manager call that finds secrets by name
// prefix or tag.
type ListSecretsAPI interface {
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

// CredentialLister lists the usernames of an Apinizer project's
// credentials.
type CredentialLister interface {
	ListCredentials(ctx context.Context, projectName string) ([]string, error)
}

var (
	_ RedriveAPI       = (*sqs.Client)(nil)
	_ ListSecretsAPI   = (*secretsmanager.Client)(nil)
	_ CredentialLister = (*apinizer.Client)(nil)
)
