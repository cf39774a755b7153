package localrun

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// SeedCredential creates a credential in the simulator and a secret that
// holds it, and returns the secret's ARN. Rotation is enabled on the secret
// the way RotateSecret enables it.
func (s *Stack) SeedCredential(ctx context.Context, name, project, username, password string) (string, error) {
	s.Sim.SetCredential(project, username, password)
	value, err := json.Marshal(map[string]string{
		"projectName": project, "username": username, "password": password,
	})
	if err != nil {
		return "", err
	}
	out, err := s.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(string(value)),
	})
	if err != nil {
		return "", fmt.Errorf("creating secret %s: %w", name, err)
	}
	return aws.ToString(out.ARN), nil
}

// BeginRotation does what Secrets Manager does when a rotation is due: it
// enables rotation and creates the token's version labelled AWSPENDING with
// no value. It returns the token.
//
// Moto does this inside RotateSecret and then fails to find the Lambda
// function, which is expected and ignored. Moto also refuses to start when
// AWSPENDING sits on the AWSCURRENT version, the opposite of AWS, so that
// label is first taken off there (AWS would not need it).
func (s *Stack) BeginRotation(ctx context.Context, secretID string) (string, error) {
	vs, err := s.Versions(ctx, secretID)
	if err != nil {
		return "", err
	}
	for id, stages := range vs {
		if slices.Contains(stages, "AWSPENDING") && slices.Contains(stages, "AWSCURRENT") {
			if _, err := s.SecretsManager.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(secretID), VersionStage: aws.String("AWSPENDING"),
				RemoveFromVersionId: aws.String(id),
			}); err != nil {
				return "", fmt.Errorf("moto workaround: %w", err)
			}
		}
	}
	token := newToken()
	_, err = s.SecretsManager.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: aws.String(token),
		RotationLambdaARN:  aws.String(RotationLambdaARN),
		RotationRules:      &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	var nf *smtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return "", fmt.Errorf("starting a rotation of %s: %w", secretID, err)
	}
	vs, err = s.Versions(ctx, secretID)
	if err != nil {
		return "", err
	}
	if !slices.Contains(vs[token], "AWSPENDING") {
		return "", fmt.Errorf("starting a rotation of %s: no AWSPENDING placeholder was made", secretID)
	}
	return token, nil
}

// Versions returns the secret's version ids and their labels.
func (s *Stack) Versions(ctx context.Context, secretID string) (map[string][]string, error) {
	out, err := s.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
		SecretId: aws.String(secretID),
	})
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", secretID, err)
	}
	return out.VersionIdsToStages, nil
}

// Password returns the password held by the version with label, or "" when
// there is none.
func (s *Stack) Password(ctx context.Context, secretID, label string) (string, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionStage: aws.String(label)}
	if label == "AWSPENDING" {
		vs, err := s.Versions(ctx, secretID)
		if err != nil {
			return "", err
		}
		for id, stages := range vs {
			if slices.Contains(stages, label) {
				in.VersionId = aws.String(id)
			}
		}
		if in.VersionId == nil {
			return "", nil
		}
	}
	out, err := s.SecretsManager.GetSecretValue(ctx, in)
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var v struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		return "", fmt.Errorf("%s of %s is not a credential", label, secretID)
	}
	return v.Password, nil
}

// Check compares what Apinizer holds with the secret.
type Check struct {
	// MatchesCurrent: Apinizer's password is the value of AWSCURRENT.
	MatchesCurrent bool
	// MatchesPending: Apinizer's password is the value of AWSPENDING.
	MatchesPending bool
	// StrayPending: AWSPENDING is on a version that is not AWSCURRENT.
	StrayPending bool
	// Rotated: AWSCURRENT is no longer the seeded password.
	Rotated bool
}

// Held reports the invariant: the password Apinizer holds is stored in
// AWSCURRENT or AWSPENDING.
func (c Check) Held() bool { return c.MatchesCurrent || c.MatchesPending }

// Converged reports that Apinizer holds AWSCURRENT and no rotation is left
// half-way.
func (c Check) Converged() bool { return c.MatchesCurrent && !c.StrayPending }

// CheckCredential compares the simulator's password for project/username
// with the secret's AWSCURRENT and AWSPENDING values; seeded is the password
// the secret was created with.
func (s *Stack) CheckCredential(ctx context.Context, secretID, project, username, seeded string) (Check, error) {
	held, ok := s.Sim.Password(project, username)
	if !ok {
		return Check{}, fmt.Errorf("the simulator has no credential %s/%s", project, username)
	}
	cur, err := s.Password(ctx, secretID, "AWSCURRENT")
	if err != nil {
		return Check{}, err
	}
	pend, err := s.Password(ctx, secretID, "AWSPENDING")
	if err != nil {
		return Check{}, err
	}
	vs, err := s.Versions(ctx, secretID)
	if err != nil {
		return Check{}, err
	}
	c := Check{MatchesCurrent: held == cur, MatchesPending: pend != "" && held == pend, Rotated: cur != seeded}
	for _, stages := range vs {
		if slices.Contains(stages, "AWSPENDING") && !slices.Contains(stages, "AWSCURRENT") {
			c.StrayPending = true
		}
	}
	return c, nil
}

// newToken makes a version id shaped like the ones Secrets Manager makes.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// EnableRotation turns rotation on for a secret without leaving a rotation
// in progress, as configuring a schedule with RotateImmediately=false and
// no test would. Moto can only do it by starting one, whose placeholder is
// then dropped.
func (s *Stack) EnableRotation(ctx context.Context, secretID string) error {
	token, err := s.BeginRotation(ctx, secretID)
	if err != nil {
		return err
	}
	_, err = s.SecretsManager.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(secretID), VersionStage: aws.String("AWSPENDING"),
		RemoveFromVersionId: aws.String(token),
	})
	if err != nil {
		return fmt.Errorf("enabling rotation of %s: %w", secretID, err)
	}
	return nil
}
