package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// Staging labels.
const (
	stageCurrent  = "AWSCURRENT"
	stagePending  = "AWSPENDING"
	stagePrevious = "AWSPREVIOUS"
)

// SecretsAPI is the part of Secrets Manager the engine uses.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	GetRandomPassword(ctx context.Context, in *secretsmanager.GetRandomPasswordInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error)
}

var _ SecretsAPI = (*secretsmanager.Client)(nil)

// versions is a secret's VersionIdsToStages read once per step.
type versions map[string][]string

func (v versions) has(id, stage string) bool {
	for _, s := range v[id] {
		if s == stage {
			return true
		}
	}
	return false
}

// holding returns the version that carries stage, or "".
func (v versions) holding(stage string) string {
	for id := range v {
		if v.has(id, stage) {
			return id
		}
	}
	return ""
}

// call bounds one Secrets Manager call by the engine's per-call timeout.
func (e *Engine) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.callTimeout())
}

func (e *Engine) callTimeout() time.Duration {
	if e.CallTimeout > 0 {
		return e.CallTimeout
	}
	return 10 * time.Second
}

// describe reads the secret's rotation flag and version stages.
func (e *Engine) describe(ctx context.Context, secretID string) (*secretsmanager.DescribeSecretOutput, error) {
	cctx, cancel := e.call(ctx)
	defer cancel()
	out, err := e.Secrets.DescribeSecret(cctx, &secretsmanager.DescribeSecretInput{
		SecretId: aws.String(secretID),
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: secret %s does not exist: %v", ErrInvalidSecret, secretID, err)
		}
		if isAccessDenied(err) {
			return nil, fmt.Errorf("%w: secret %s may not be read by this function "+
				"(is it outside the credential secret prefix?): %v", ErrInvalidSecret, secretID, err)
		}
		return nil, fmt.Errorf("describing secret %s: %w", secretID, err)
	}
	return out, nil
}

// secret names the secret a step works on: as the event or job gave it,
// its ARN (the cache key) and the version DescribeSecret showed holding
// AWSCURRENT.
type secret struct {
	id, arn, current string
}

// value reads one version of the secret by id and stage; either may be
// empty but not both. found is false when that version holds no value;
// versionID is the version read.
func (e *Engine) value(ctx context.Context, secretID, versionID, stage string) (v, readID string, found bool, err error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	cctx, cancel := e.call(ctx)
	defer cancel()
	out, err := e.Secrets.GetSecretValue(cctx, in)
	if err != nil {
		if isNotFound(err) {
			return "", "", false, nil
		}
		return "", "", false, fmt.Errorf("reading %s of secret %s: %w",
			describeVersion(versionID, stage), secretID, err)
	}
	if out.SecretString == nil {
		return "", "", false, nil
	}
	return aws.ToString(out.SecretString), aws.ToString(out.VersionId), true, nil
}

// current returns the parsed value of AWSCURRENT: from the cache when it
// holds the version DescribeSecret showed current, else read by stage.
func (e *Engine) current(ctx context.Context, s secret) (Credential, error) {
	if c, ok := e.Cache.get(s.arn, s.current); ok {
		return c, nil
	}
	v, readID, found, err := e.value(ctx, s.id, "", stageCurrent)
	if err != nil {
		return Credential{}, err
	}
	if !found || strings.TrimSpace(v) == "" {
		return Credential{}, errNoCurrentValue(s.id)
	}
	c, err := ParseCredential(v)
	if err != nil {
		return Credential{}, fmt.Errorf("current value of secret %s: %w", s.id, err)
	}
	e.Cache.put(s.arn, readID, c)
	return c, nil
}

// errNoCurrentValue is the error for a secret with nothing, or only
// blanks, in AWSCURRENT: infrastructure code made it empty (case R3).
func errNoCurrentValue(secretID string) error {
	return fmt.Errorf("%w: secret %s has no current value: seed the secret first with "+
		`{"projectName": ..., "username": ..., "password": ...}`, ErrInvalidSecret, secretID)
}

// pending returns the parsed value of version id, which DescribeSecret
// showed labelled AWSPENDING. A read names both the id and the stage, so a
// version staged by someone else is never read.
func (e *Engine) pending(ctx context.Context, s secret, versionID string) (Credential, bool, error) {
	if c, ok := e.Cache.get(s.arn, versionID); ok {
		return c, true, nil
	}
	v, _, found, err := e.value(ctx, s.id, versionID, stagePending)
	if err != nil || !found {
		return Credential{}, false, err
	}
	c, err := ParseCredential(v)
	if err != nil {
		return Credential{}, false, fmt.Errorf("pending value %s of secret %s: %w", versionID, s.id, err)
	}
	e.Cache.put(s.arn, versionID, c)
	return c, true, nil
}

func describeVersion(versionID, stage string) string {
	switch {
	case versionID != "" && stage != "":
		return "version " + versionID + " (" + stage + ")"
	case versionID != "":
		return "version " + versionID
	default:
		return stage
	}
}

func isAccessDenied(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "AccessDeniedException"
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
