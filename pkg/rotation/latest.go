package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// ErrSuperseded means a password change reached Apinizer after another
// rotation of the same secret had taken AWSPENDING: the version sent is no
// longer the one being rotated to.
var ErrSuperseded = errors.New("another rotation of the secret took AWSPENDING")

// latestAttempts bounds how often sendLatest sends again because the
// labels moved while it sent.
const latestAttempts = 3

// sendLatest makes Apinizer hold the latest stored password of the secret
// again, after this function sent one that another rotation has superseded
// since. Secrets Manager has no compare-and-swap on labels, so two
// rotations of one secret can each write AWSPENDING and send, in either
// order; whichever notices it lost calls this.
//
// The latest password is AWSPENDING's when that is on a version other than
// AWSCURRENT (a rotation in progress, which sends the same value itself),
// else AWSCURRENT's. After sending it, the labels are read again: if they
// moved meanwhile, someone else sent or will send after that move, and the
// latest is sent again. A pending version with no value yet (a scheduled
// rotation starting) is not sent over: ErrRotationStarting, try later.
func (e *Engine) sendLatest(ctx context.Context, log *slog.Logger, s secret) error {
	desc, err := e.describe(ctx, s.id)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		vs := versions(desc.VersionIdsToStages)
		cur, pend := vs.holding(stageCurrent), vs.holding(stagePending)
		s.current = cur
		current, err := e.current(ctx, s)
		if err != nil {
			return err
		}
		latest, latestID := current, cur
		if pend != "" && pend != cur {
			pending, found, err := e.pending(ctx, s, pend)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("secret %s version %s: %w", s.id, pend, ErrRotationStarting)
			}
			if err := sameCredential(pending, current, pend); err != nil {
				return err
			}
			latest, latestID = pending, pend
		}
		if err := e.send(ctx, log, s.id, latestID, latest); err != nil {
			return err
		}

		// the labels as they were when the latest was chosen mean nobody
		// moved them while it was sent
		if desc, err = e.describe(ctx, s.id); err != nil {
			return err
		}
		vs = versions(desc.VersionIdsToStages)
		if vs.holding(stageCurrent) == cur && vs.holding(stagePending) == pend {
			log.InfoContext(ctx, "sent the latest stored password again", "outcome", "resent_latest",
				"latestVersionId", latestID)
			return nil
		}
		if attempt == latestAttempts {
			return fmt.Errorf("secret %s: the labels kept moving while the latest password was sent; "+
				"try again", s.id)
		}
	}
}
