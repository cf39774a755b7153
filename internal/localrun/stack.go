// Package localrun runs the whole product on one machine: moto for Secrets
// Manager and SQS, the Apinizer simulator, and both function binaries under
// the Lambda Runtime Interface Emulator. It plays the parts AWS plays (the
// rotation schedule, the SQS event source mapping) the way AWS plays them.
// The demo and the integration tests drive it.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/apinizer-rotation/rotator/internal/faultproxy"
	"github.com/apinizer-rotation/rotator/internal/simulator"
	"github.com/apinizer-rotation/rotator/internal/standin"
)

// Names the stack gives to what it creates.
const (
	TokenSecretName     = "apinizer-token"
	JobQueueName        = "apinizer-bulk-jobs"
	DeadLetterQueueName = "apinizer-dead-letter"
	// RotationLambdaARN is the rotation function as the secrets name it.
	RotationLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:apinizer-rotate"
)

// Options configure a Stack.
type Options struct {
	// Simulator is the Apinizer simulator's configuration. Its Tokens get
	// the stack's token added.
	Simulator simulator.Config
	// Log receives the output of moto, the emulators and the functions.
	Log io.Writer
	// FunctionTimeout is each function's timeout; 60 s when zero.
	FunctionTimeout time.Duration
	// Env is added to both functions' environment.
	Env []string
	// BinDir holds the built functions; a temporary directory when empty.
	BinDir string
	// FaultProxy puts a faultproxy between the functions and moto, so that
	// tests can count their AWS calls and stop them at any call.
	FaultProxy bool
}

// Stack is the running product and its stand-ins.
type Stack struct {
	Moto *standin.Moto
	Sim  *simulator.Running
	// Proxy stands between the functions and moto when Options.FaultProxy
	// is set; the stack's own clients always reach moto directly.
	Proxy  *faultproxy.Proxy
	Rotate *standin.Function
	Bulk   *standin.Function

	SecretsManager *secretsmanager.Client
	SQS            *sqs.Client

	JobQueueURL        string
	JobQueueARN        string
	DeadLetterQueueURL string
	// Token is the Apinizer token the functions read from TokenSecretName.
	Token string
	// RIE, RotateBootstrap and BulkBootstrap are the emulator and the built
	// functions, for tests that start a function of their own.
	RIE, RotateBootstrap, BulkBootstrap string
	// FunctionEnv is the environment both functions run with.
	FunctionEnv []string

	tmp string

	errMu        sync.Mutex
	invokeErrors []string
}

// Start builds both functions, starts every stand-in and the functions, and
// creates the token secret and the two queues.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	s = &Stack{Token: "local-demo-token-" + fmt.Sprint(time.Now().UnixNano())}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()

	// build the functions as Lambda runs them: a static bootstrap each
	bin := opts.BinDir
	if bin == "" {
		if s.tmp, err = os.MkdirTemp("", "apinizer-localrun-"); err != nil {
			return s, err
		}
		bin = s.tmp
	}
	rotateBin, err := standin.BuildFunction(ctx, "rotate", bin)
	if err != nil {
		return s, err
	}
	bulkBin, err := standin.BuildFunction(ctx, "bulk", bin)
	if err != nil {
		return s, err
	}
	rie, err := standin.EnsureRIE(ctx)
	if err != nil {
		return s, err
	}
	s.RIE, s.RotateBootstrap, s.BulkBootstrap = rie, rotateBin, bulkBin

	// the stand-ins for AWS and for Apinizer
	if s.Moto, err = standin.StartMoto(ctx, logw); err != nil {
		return s, err
	}
	simCfg := opts.Simulator
	simCfg.Tokens = append(simCfg.Tokens, s.Token)
	if s.Sim, err = simulator.Start(simCfg); err != nil {
		return s, fmt.Errorf("starting the apinizer simulator: %w", err)
	}
	awsCfg, err := s.Moto.AWSConfig(ctx)
	if err != nil {
		return s, err
	}
	s.SecretsManager = secretsmanager.NewFromConfig(awsCfg)
	s.SQS = sqs.NewFromConfig(awsCfg)
	if err := s.createResources(ctx); err != nil {
		return s, err
	}

	// both functions, configured as the template configures them
	env := s.Moto.Env()
	if opts.FaultProxy {
		if s.Proxy, err = faultproxy.Start(s.Moto.URL); err != nil {
			return s, fmt.Errorf("starting the fault proxy: %w", err)
		}
		env = append(env, "AWS_ENDPOINT_URL="+s.Proxy.URL)
	}
	env = append(env,
		"APINIZER_BASE_URL="+s.Sim.URL,
		"APINIZER_TOKEN_SECRET_ID="+TokenSecretName,
		"DEAD_LETTER_QUEUE_URL="+s.DeadLetterQueueURL,
		"PASSWORD_LENGTH=32",
	)
	env = append(env, opts.Env...)
	s.FunctionEnv = env
	for _, fn := range []struct {
		name, bin string
		out       **standin.Function
	}{{"rotate", rotateBin, &s.Rotate}, {"bulk", bulkBin, &s.Bulk}} {
		*fn.out, err = standin.StartFunction(ctx, rie, standin.FunctionOptions{
			Name: "apinizer-" + fn.name, Bootstrap: fn.bin, Env: env,
			Timeout: opts.FunctionTimeout, LogWriter: logw,
		})
		if err != nil {
			return s, fmt.Errorf("starting the %s function: %w", fn.name, err)
		}
	}
	return s, nil
}

func (s *Stack) createResources(ctx context.Context) error {
	if _, err := s.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(TokenSecretName), SecretString: aws.String(s.Token),
	}); err != nil {
		return fmt.Errorf("creating the token secret: %w", err)
	}
	dlq, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(DeadLetterQueueName)})
	if err != nil {
		return fmt.Errorf("creating the dead-letter queue: %w", err)
	}
	s.DeadLetterQueueURL = aws.ToString(dlq.QueueUrl)
	jobs, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(JobQueueName),
		Attributes: map[string]string{"VisibilityTimeout": "720"},
	})
	if err != nil {
		return fmt.Errorf("creating the job queue: %w", err)
	}
	s.JobQueueURL = aws.ToString(jobs.QueueUrl)
	attrs, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: jobs.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("reading the job queue's ARN: %w", err)
	}
	s.JobQueueARN = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	return nil
}

// Close stops everything Start started. It may be called more than once.
func (s *Stack) Close() {
	var errs []error
	for _, f := range []*standin.Function{s.Rotate, s.Bulk} {
		if f != nil {
			errs = append(errs, f.Stop())
		}
	}
	if s.Sim != nil {
		s.Sim.Close()
	}
	if s.Proxy != nil {
		s.Proxy.Close()
	}
	if s.Moto != nil {
		errs = append(errs, s.Moto.Stop())
	}
	if s.tmp != "" {
		errs = append(errs, os.RemoveAll(filepath.Clean(s.tmp)))
	}
	_ = errors.Join(errs...)
}
