package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// ErrRotationStarting means Secrets Manager has begun a rotation of the
// secret and not yet written its pending value. A bulk job waits for it
// rather than starting another: try again later.
var ErrRotationStarting = errors.New("a rotation of this secret is starting and has no pending value yet")

// Result tells what RotateNow did.
type Result struct {
	VersionID   string // the version now AWSCURRENT
	ProjectName string
	Username    string
	// AlreadyDone is true when the token's version was already AWSCURRENT:
	// a redelivered job that had finished.
	AlreadyDone bool
	// Resumed is true when an unfinished rotation of another version was
	// finished instead of starting a new one.
	Resumed bool
	// Superseded is true when another rotation of the secret took over
	// from this job's version; Apinizer was given the latest stored
	// password, and the job is done (AlreadyDone is true too).
	Superseded bool
}

// TokenFor derives a rotation token (the new version's id) from the
// secret's name as DescribeSecret gives it, so that every way of naming one
// secret (its name, its full ARN, a partial ARN) gives one token.
type TokenFor func(secretName string) string

// FixedToken is a TokenFor for a caller that holds its token already.
func FixedToken(token string) TokenFor { return func(string) string { return token } }

// RotateNow runs create, set, test and finish in one go under the token
// tokenFor derives, the way a bulk job asks for a rotation. It reads each thing once: five
// Secrets Manager calls and two writes for a new rotation.
//
// If the secret has an unfinished rotation (AWSPENDING with a value on a
// version that is not current), that one is finished instead of starting
// another. If AWSPENDING has no value yet, ErrRotationStarting is returned.
// Calling RotateNow again with the same token after any failure resumes the
// same rotation.
func (e *Engine) RotateNow(ctx context.Context, secretID string, tokenFor TokenFor) (Result, error) {
	return e.rotateNow(ctx, secretID, tokenFor, false)
}

// rotateNow is RotateNow; again is true on the second look after another
// copy of the same job wrote its version first.
func (e *Engine) rotateNow(ctx context.Context, secretID string, tokenFor TokenFor, again bool) (Result, error) {
	start := time.Now()
	log := e.logger().With("secretId", secretID, "step", "rotateNow")
	var res Result

	desc, err := e.describe(ctx, secretID)
	if err != nil {
		return res, err
	}
	name := aws.ToString(desc.Name)
	if name == "" {
		name = secretID
	}
	token := tokenFor(name)
	vs := versions(desc.VersionIdsToStages)
	currentVersion := vs.holding(stageCurrent)
	s := secret{id: secretID, arn: aws.ToString(desc.ARN), current: currentVersion}
	if _, exists := vs[token]; exists && (vs.has(token, stageCurrent) || vs.has(token, stagePrevious)) {
		// promoted, and maybe rotated past since: this job ran
		res.VersionID, res.AlreadyDone = token, true
		log.InfoContext(ctx, "job already done: its version exists", "versionId", token, "outcome", "already_done")
		return res, nil
	}
	if _, exists := vs[token]; exists && !vs.has(token, stagePending) {
		// written, never promoted, and its AWSPENDING taken by another
		// rotation: its password may have reached Apinizer all the same
		return e.superseded(ctx, log, s, token, nil)
	}
	if currentVersion == "" {
		return res, errNoCurrentValue(secretID)
	}
	current, err := e.current(ctx, s)
	if err != nil {
		return res, err
	}
	res.ProjectName, res.Username = current.ProjectName, current.Username

	// an unfinished rotation is finished, not replaced
	var pending Credential
	pendingVersion := vs.holding(stagePending)
	if pendingVersion != "" && pendingVersion != currentVersion {
		var found bool
		pending, found, err = e.pending(ctx, s, pendingVersion)
		if err != nil {
			return res, err
		}
		if !found {
			return res, fmt.Errorf("secret %s version %s: %w", secretID, pendingVersion, ErrRotationStarting)
		}
		if err := sameCredential(pending, current, pendingVersion); err != nil {
			return res, err
		}
		res.VersionID, res.Resumed = pendingVersion, pendingVersion != token
	} else {
		password, err := e.generate(ctx, secretID)
		if err != nil {
			return res, err
		}
		if err := e.putPending(ctx, s, token, "", current, password); err != nil {
			var exists *types.ResourceExistsException
			if errors.As(err, &exists) && !again {
				// another copy of this job (a duplicate delivery) wrote the
				// version after the describe: look again, and finish it,
				// acknowledge it, or send the latest, as its labels say
				log.InfoContext(ctx, "version written by another copy of this job; reading its labels again",
					"versionId", token)
				return e.rotateNow(ctx, secretID, FixedToken(token), true)
			}
			if errors.As(err, &exists) {
				// the version was written by this job before and has lost
				// its labels since
				return e.superseded(ctx, log, s, token, nil)
			}
			return res, err
		}
		pending = current
		pending.Password = password
		res.VersionID = token
	}
	log = log.With("versionId", res.VersionID)

	// set
	if err := e.send(ctx, log, secretID, res.VersionID, pending); err != nil {
		return res, err
	}

	// test, when a gateway is configured, then finish
	if e.Gateway != nil {
		if err := e.checkGateway(ctx, log, pending); err != nil {
			return res, err
		}
	}
	if err := e.promote(ctx, secretID, res.VersionID, currentVersion); err != nil {
		// another rotation may have taken AWSPENDING after this one wrote
		// it, and promoted its own version before this password arrived
		if desc, derr := e.describe(ctx, secretID); derr == nil &&
			!versions(desc.VersionIdsToStages).has(res.VersionID, stagePending) {
			return e.superseded(ctx, log, s, res.VersionID, err)
		}
		return res, err
	}
	log.InfoContext(ctx, "rotated", "outcome", "rotated", "resumed", res.Resumed,
		"project", res.ProjectName, "username", res.Username,
		"durationMs", time.Since(start).Milliseconds())
	return res, nil
}

// superseded finishes a job whose version another rotation took over
// from: Apinizer is given the latest stored password again, and the job
// is done. cause is the error that showed it, if any.
func (e *Engine) superseded(ctx context.Context, log *slog.Logger, s secret, versionID string,
	cause error) (Result, error) {
	res := Result{VersionID: versionID}
	if err := e.sendLatest(ctx, log, s); err != nil {
		if cause != nil {
			return res, fmt.Errorf("%w; then %w", cause, err)
		}
		return res, err
	}
	res.AlreadyDone, res.Superseded = true, true
	log.InfoContext(ctx, "job superseded by another rotation; Apinizer holds the latest stored password",
		"versionId", versionID, "outcome", "superseded")
	return res, nil
}
