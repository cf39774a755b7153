// Package lambdaapp wires the parts both functions share: configuration,
// the AWS clients, the Apinizer client, the rotation engine and the
// dead-letter sender. The functions' main packages only call it.
package lambdaapp

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/config"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
	"github.com/apinizer-rotation/rotator/pkg/gateway"
	"github.com/apinizer-rotation/rotator/pkg/rotation"
)

// The version cache spares a warm rotation function the reads of values it
// read or wrote in the previous step; see rotation.VersionCache.
const (
	versionCacheSize = 64
	versionCacheTTL  = 5 * time.Minute
)

// NewRetryer is the AWS SDK retryer of both functions: the standard one,
// five attempts, and no client-side retry quota. A batch shares one client
// among its goroutines; with the quota, a burst of throttled calls would
// empty it and then fail together, instead of each being retried within
// its own bound.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.RateLimiter = ratelimit.None
		o.MaxAttempts = 5
	})
}

// App holds what a function needs for every invocation, built once per
// cold start.
type App struct {
	Config      config.Config
	Logger      *slog.Logger
	Engine      *rotation.Engine
	DeadLetters *deadletter.Sender
}

// New reads the configuration from the environment and builds the clients.
// The AWS SDK reads AWS_ENDPOINT_URL itself, which is how local runs reach
// an emulator.
func New(ctx context.Context) (*App, error) {
	logger := lambdacontext.NewLogger()
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryer(NewRetryer))
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	// the client, not the bulk handler, bounds the password changes at
	// Apinizer at once: the handler runs a few more jobs beside them
	client, err := apinizer.New(cfg.BaseURL, apinizer.NewSecretToken(sm, cfg.TokenSecretID),
		apinizer.Options{Logger: logger, MaxRequestsPerSecond: cfg.MaxRPS,
			MaxConcurrentRequests: cfg.BulkMaxConcurrency})
	if err != nil {
		return nil, fmt.Errorf("configuration: %s: %w", config.EnvBaseURL, err)
	}
	engine := &rotation.Engine{
		Secrets:  sm,
		Apinizer: client,
		Policy:   rotation.PasswordPolicy{Length: cfg.PasswordLength, ExcludeCharacters: cfg.ExcludeCharacters},
		Logger:   logger,
		// the four steps of a rotation reach a warm function within
		// seconds; the values need not outlive that
		Cache: rotation.NewVersionCache(versionCacheSize, versionCacheTTL),
	}
	if cfg.GatewayURL != "" {
		checker, err := gateway.New(gateway.Options{BaseURL: cfg.GatewayURL, ProbePath: cfg.GatewayProbePath,
			Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("configuration: %s: %w", config.EnvGatewayURL, err)
		}
		engine.Gateway = checker
	}
	return &App{
		Config:      cfg,
		Logger:      logger,
		Engine:      engine,
		DeadLetters: deadletter.NewSender(sqs.NewFromConfig(awsCfg), cfg.DeadLetterQueueURL),
	}, nil
}
