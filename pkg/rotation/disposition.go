package rotation

import (
	"errors"

	"github.com/apinizer-rotation/rotator/pkg/apinizer"
	"github.com/apinizer-rotation/rotator/pkg/deadletter"
)

// Disposition says what to do with a failed rotation.
type Disposition struct {
	// Reason is the dead-letter reason when the failure deserves a record,
	// or "" when it does not (it may succeed when tried again).
	Reason string
	// Environments are the per-environment results of a failed deployment.
	Environments []apinizer.EnvironmentResult
	// TokenProblem marks a failure of the Apinizer token: a configuration
	// problem shared by every rotation, reported loudly and not per record.
	TokenProblem bool
}

// Classify maps an error from Run or RotateNow to its disposition, in one
// place for both functions.
func Classify(err error) Disposition {
	var de *apinizer.DeploymentError
	if errors.As(err, &de) {
		return Disposition{Reason: deadletter.ReasonDeploymentFailed, Environments: de.Deployment.Environments}
	}
	switch apinizer.ClassOf(err) {
	case apinizer.ClassRejected:
		return Disposition{Reason: deadletter.ReasonRejected}
	case apinizer.ClassToken:
		return Disposition{TokenProblem: true}
	}
	if errors.Is(err, ErrInvalidSecret) {
		return Disposition{Reason: deadletter.ReasonInvalidSecret}
	}
	return Disposition{}
}
