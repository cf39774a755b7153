// Package rotation runs the Secrets Manager rotation contract for secrets
// that hold an Apinizer credential: the four steps one at a time for the
// rotation function, or all in one go for a bulk job.
//
// The rule that shapes every step: a password Apinizer holds is always the
// value of AWSCURRENT or of AWSPENDING. The new password is written to
// AWSPENDING (under the rotation's token) before it is sent, and promoted
// only after Apinizer reports it deployed. A retried step finds the pending
// value and sends that same password again; it never makes a second one.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/metrics"
	"github.com/apinizer-rotation/rotator/pkg/sensitive"
)

// PasswordChanger changes a credential's password in Apinizer.
type PasswordChanger interface {
	ChangePassword(ctx context.Context, projectName, username string,
		password sensitive.String) (*apinizer.Deployment, error)
}

var _ PasswordChanger = (*apinizer.Client)(nil)

// GatewayChecker tells whether the Apinizer gateway accepts a credential's
// password. It has no side effects.
type GatewayChecker interface {
	Check(ctx context.Context, username string, password sensitive.String) error
	// Describe says what Check verifies, for logs.
	Describe() string
}

// PasswordPolicy says how new passwords are generated.
type PasswordPolicy struct {
	Length            int
	ExcludeCharacters string
}

// Engine runs rotations. Its fields are set once; it keeps no state between
// calls other than the optional Cache of immutable version values, which
// no result depends on, and is safe for concurrent use.
type Engine struct {
	Secrets  SecretsAPI
	Apinizer PasswordChanger
	Policy   PasswordPolicy
	// Gateway, when set, checks in testSecret (and in RotateNow before the
	// promotion) that the gateway accepts the new password.
	Gateway GatewayChecker
	Logger  *slog.Logger
	// Cache, when set, keeps values read or written in one step for the
	// next steps of the same rotation; see VersionCache.
	Cache *VersionCache
	// CallTimeout bounds each Secrets Manager call; 10 s when zero.
	CallTimeout time.Duration
}

// Failure is a password change that failed for a known credential. It
// carries what a dead-letter record needs, never a value.
type Failure struct {
	SecretID    string
	VersionID   string
	ProjectName string
	Username    string
	Err         error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("secret %s version %s (credential %s/%s): %v",
		f.SecretID, f.VersionID, f.ProjectName, f.Username, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Run performs one step of a rotation, as the rotation function is asked to
// by Secrets Manager.
func (e *Engine) Run(ctx context.Context, ev Event) error {
	if err := ValidateEvent(ev); err != nil {
		return err
	}
	start := time.Now()
	log := e.logger().With("secretId", ev.SecretID, "versionId", ev.ClientRequestToken, "step", ev.Step)

	// every step: rotation enabled, and the token names a pending version
	desc, err := e.describe(ctx, ev.SecretID)
	if err != nil {
		return fmt.Errorf("%s: %w", ev.Step, err)
	}
	if !aws.ToBool(desc.RotationEnabled) {
		return fmt.Errorf("%s: %w: rotation is not enabled for secret %s", ev.Step, ErrInvalidSecret, ev.SecretID)
	}
	vs := versions(desc.VersionIdsToStages)
	token := ev.ClientRequestToken
	if _, ok := vs[token]; !ok {
		return fmt.Errorf("%s: secret %s has no version %s: no stage for rotation", ev.Step, ev.SecretID, token)
	}
	if vs.has(token, stageCurrent) {
		log.InfoContext(ctx, "version is already AWSCURRENT; nothing to do", "outcome", "already_current")
		return nil
	}
	if !vs.has(token, stagePending) {
		return fmt.Errorf("%s: version %s of secret %s is not AWSPENDING", ev.Step, token, ev.SecretID)
	}

	s := secret{id: ev.SecretID, arn: aws.ToString(desc.ARN), current: vs.holding(stageCurrent)}
	switch ev.Step {
	case StepCreate:
		err = e.create(ctx, log, s, token, ev.RotationToken)
	case StepSet:
		err = e.set(ctx, log, s, token)
	case StepTest:
		err = e.test(ctx, log, s, token)
	case StepFinish:
		err = e.finish(ctx, log, ev.SecretID, token, s.current)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ev.Step, err)
	}
	log.InfoContext(ctx, "step done", "outcome", "ok", "durationMs", time.Since(start).Milliseconds())
	return nil
}

// create writes the new value under the token as AWSPENDING, unless a
// value is already there: then it is kept, so that a retried rotation sends
// the password it stored first.
func (e *Engine) create(ctx context.Context, log *slog.Logger, s secret, token, rotationToken string) error {
	current, err := e.current(ctx, s)
	if err != nil {
		return err
	}
	log = log.With("project", current.ProjectName, "username", current.Username)

	// a pending value for this token is the write-ahead log: keep it
	pending, found, err := e.pending(ctx, s, token)
	if err != nil {
		return err
	}
	if found {
		if err := sameCredential(pending, current, token); err != nil {
			return err
		}
		log.InfoContext(ctx, "pending value already written; keeping it", "outcome", "kept")
		return nil
	}

	// generate, then store before anything is sent
	password, err := e.generate(ctx, s.id)
	if err != nil {
		return err
	}
	if err := e.putPending(ctx, s, token, rotationToken, current, password); err != nil {
		return err
	}
	log.InfoContext(ctx, "pending value written", "outcome", "created")
	return nil
}

// set sends the pending password to Apinizer. Sending it again is harmless:
// it is the same value.
func (e *Engine) set(ctx context.Context, log *slog.Logger, s secret, token string) error {
	pending, found, err := e.pending(ctx, s, token)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("version %s of secret %s has no pending value: createSecret has not run",
			token, s.id)
	}
	current, err := e.current(ctx, s)
	if err != nil {
		return err
	}
	if err := sameCredential(pending, current, token); err != nil {
		return err
	}
	if err := e.send(ctx, log, s.id, token, pending); err != nil {
		return err
	}

	// a bulk job may have taken AWSPENDING since this step checked it, and
	// sent its password before this one arrived
	desc, err := e.describe(ctx, s.id)
	if err != nil {
		return err
	}
	vs := versions(desc.VersionIdsToStages)
	if vs.has(token, stagePending) {
		return nil
	}
	if err := e.sendLatest(ctx, log, s); err != nil {
		return fmt.Errorf("version %s: %w; then %w", token, ErrSuperseded, err)
	}
	if vs.has(token, stageCurrent) {
		// a bulk job finished this very version meanwhile (and another
		// rotation may have begun since): this rotation is done, and
		// Apinizer holds the latest stored password
		log.InfoContext(ctx, "version promoted by another run while it was sent; "+
			"Apinizer holds the latest stored password", "versionId", token)
		return nil
	}
	return fmt.Errorf("version %s: %w; Apinizer was given the latest stored password", token, ErrSuperseded)
}

// send changes the password in Apinizer and turns any failure into a
// Failure that names the credential.
func (e *Engine) send(ctx context.Context, log *slog.Logger, secretID, versionID string, c Credential) error {
	log = log.With("project", c.ProjectName, "username", c.Username)
	if c.Password.Empty() {
		return fmt.Errorf("%w: pending version %s has an empty password", ErrInvalidSecret, versionID)
	}
	start := time.Now()
	dep, err := e.Apinizer.ChangePassword(ctx, c.ProjectName, c.Username, c.Password)
	rec := metrics.FromContext(ctx)
	rec.Milliseconds(metrics.ApinizerLatency, time.Since(start))
	var ae *apinizer.Error
	if errors.As(err, &ae) && ae.Attempts > 1 {
		rec.Count(metrics.Retries, ae.Attempts-1)
	}
	if err != nil {
		attrs := []any{"outcome", apinizer.ClassOf(err).String(),
			"apinizerMs", time.Since(start).Milliseconds(), "error", err.Error()}
		if ae != nil {
			attrs = append(attrs, "apinizerStatus", ae.StatusCode, "attempts", max(ae.Attempts, 1))
		}
		var de *apinizer.DeploymentError
		if errors.As(err, &de) {
			attrs = append(attrs, "apinizerStatus", 200, "failedEnvironments", failedNames(de.Deployment))
		}
		log.WarnContext(ctx, "apinizer did not take the password", attrs...)
		return &Failure{SecretID: secretID, VersionID: versionID,
			ProjectName: c.ProjectName, Username: c.Username, Err: err}
	}
	log.InfoContext(ctx, "password deployed", "outcome", "deployed", "environments", len(dep.Environments),
		"apinizerStatus", 200, "apinizerMs", time.Since(start).Milliseconds())
	return nil
}

// test checks the pending value without side effects. It may run alone
// (rotation configured without an immediate rotation), so it assumes
// nothing about the other steps and sends nothing anywhere.
func (e *Engine) test(ctx context.Context, log *slog.Logger, s secret, token string) error {
	pending, found, err := e.pending(ctx, s, token)
	if err != nil {
		return err
	}
	if !found {
		log.WarnContext(ctx, "pending version has no value; nothing to test", "outcome", "nothing_to_test")
		return nil
	}
	current, err := e.current(ctx, s)
	if err != nil {
		return err
	}
	if err := sameCredential(pending, current, token); err != nil {
		return err
	}
	if pending.Password.Empty() {
		return fmt.Errorf("%w: pending version %s has an empty password", ErrInvalidSecret, token)
	}
	log = log.With("project", pending.ProjectName, "username", pending.Username)
	if pending.Password.Equal(current.Password) {
		// rotation configured without rotating: nothing new to test, and
		// nothing is sent anywhere
		log.InfoContext(ctx, "pending value is a copy of the current one; nothing was rotated", "outcome", "checked",
			"checked", "value parses and names the current credential")
		return nil
	}
	if e.Gateway == nil {
		log.InfoContext(ctx, "pending value checked", "outcome", "checked",
			"checked", "value parses and names the current credential",
			"notChecked", "that the gateway accepts the password (APINIZER_GATEWAY_URL is not set)")
		return nil
	}
	return e.checkGateway(ctx, log, pending)
}

// checkGateway asks the gateway to accept the pending password; Apinizer
// deploys per pod, so the checker waits for it within the deadline.
func (e *Engine) checkGateway(ctx context.Context, log *slog.Logger, c Credential) error {
	start := time.Now()
	if err := e.Gateway.Check(ctx, c.Username, c.Password); err != nil {
		log.WarnContext(ctx, "gateway does not accept the new password", "outcome", "gateway_refused",
			"gateway", e.Gateway.Describe(), "durationMs", time.Since(start).Milliseconds(), "error", err.Error())
		return fmt.Errorf("testing the new password of %s/%s: %w", c.ProjectName, c.Username, err)
	}
	log.InfoContext(ctx, "pending value checked", "outcome", "checked",
		"checked", e.Gateway.Describe(), "durationMs", time.Since(start).Milliseconds())
	return nil
}

// finish moves AWSCURRENT to the token. AWSPENDING stays on the same
// version, which Secrets Manager accepts and which costs no extra write.
func (e *Engine) finish(ctx context.Context, log *slog.Logger, secretID, token, currentVersion string) error {
	if currentVersion == token {
		log.InfoContext(ctx, "version is already AWSCURRENT", "outcome", "already_current")
		return nil
	}
	if err := e.promote(ctx, secretID, token, currentVersion); err != nil {
		return err
	}
	log.InfoContext(ctx, "version promoted to AWSCURRENT", "outcome", "promoted", "previousVersionId", currentVersion)
	return nil
}

func (e *Engine) generate(ctx context.Context, secretID string) (sensitive.String, error) {
	cctx, cancel := e.call(ctx)
	defer cancel()
	out, err := e.Secrets.GetRandomPassword(cctx, &secretsmanager.GetRandomPasswordInput{
		PasswordLength:          aws.Int64(int64(e.Policy.Length)),
		ExcludeCharacters:       aws.String(e.Policy.ExcludeCharacters),
		IncludeSpace:            aws.Bool(false),
		ExcludePunctuation:      aws.Bool(excludesAllPunctuation(e.Policy.ExcludeCharacters)),
		RequireEachIncludedType: aws.Bool(true),
	})
	if err != nil {
		return sensitive.String{}, fmt.Errorf("generating a password for secret %s: %w", secretID, err)
	}
	p := aws.ToString(out.RandomPassword)
	if p == "" {
		return sensitive.String{}, fmt.Errorf("generating a password for secret %s: empty answer", secretID)
	}
	return sensitive.New(p), nil
}

// putPending writes the current value with the new password as version
// token, labelled AWSPENDING. Naming the token keeps the version the one
// Secrets Manager is rotating.
func (e *Engine) putPending(ctx context.Context, s secret, token, rotationToken string,
	current Credential, password sensitive.String) error {
	value, err := current.WithPassword(password)
	if err != nil {
		return err
	}
	in := &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(s.id),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(value),
		VersionStages:      []string{stagePending},
	}
	if rotationToken != "" {
		in.RotationToken = aws.String(rotationToken)
	}
	cctx, cancel := e.call(ctx)
	defer cancel()
	if _, err := e.Secrets.PutSecretValue(cctx, in); err != nil {
		return fmt.Errorf("writing pending version %s of secret %s: %w", token, s.id, err)
	}
	if written, err := ParseCredential(value); err == nil {
		e.Cache.put(s.arn, token, written)
	}
	return nil
}

// promote moves AWSCURRENT to versionID. With no current version there is
// nothing to remove it from, and no empty RemoveFromVersionId is sent.
func (e *Engine) promote(ctx context.Context, secretID, versionID, currentVersion string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(secretID),
		VersionStage:    aws.String(stageCurrent),
		MoveToVersionId: aws.String(versionID),
	}
	if currentVersion != "" {
		in.RemoveFromVersionId = aws.String(currentVersion)
	}
	cctx, cancel := e.call(ctx)
	defer cancel()
	_, err := e.Secrets.UpdateSecretVersionStage(cctx, in)
	if err == nil {
		return nil
	}

	// someone (a bulk job for the same secret) may have promoted this very
	// version meanwhile: then the label is where it should be
	if desc, derr := e.describe(ctx, secretID); derr == nil &&
		versions(desc.VersionIdsToStages).has(versionID, stageCurrent) {
		return nil
	}
	return fmt.Errorf("moving AWSCURRENT of secret %s to version %s: %w", secretID, versionID, err)
}

// failedNames lists the environments (env/pod) whose deployment failed.
func failedNames(d apinizer.Deployment) []string {
	var names []string
	for _, e := range d.Failed() {
		n := e.Name
		if e.Pod != "" {
			n += "/" + e.Pod
		}
		names = append(names, n)
	}
	return names
}

// excludesAllPunctuation reports whether exclude leaves no punctuation, in
// which case GetRandomPassword must not be asked to include some.
func excludesAllPunctuation(exclude string) bool {
	const punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	for _, r := range punctuation {
		if !strings.ContainsRune(exclude, r) {
			return false
		}
	}
	return true
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}
