package rotation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apinizer-rotation/rotator/pkg/deadletter"
	"github.com/apinizer-rotation/rotator/pkg/metrics"
)

// DeadLetters receives failure records.
type DeadLetters interface {
	Send(ctx context.Context, records ...deadletter.Record) error
}

var _ DeadLetters = (*deadletter.Sender)(nil)

// deadlineReserve is kept back from the function's deadline for reporting
// a failure.
const deadlineReserve = 2 * time.Second

// Handler is the rotation function: it runs the step Secrets Manager asks
// for and, when a deployment failed or a secret cannot be rotated, writes a
// dead-letter record before returning the error.
type Handler struct {
	Engine      *Engine
	DeadLetters DeadLetters
	// Metrics receives one embedded-metric-format line per invocation
	// (os.Stdout in Lambda); nil records none.
	Metrics io.Writer
	// FunctionName is the metrics' Function dimension.
	FunctionName string
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, ev Event) (err error) {
	log := h.Engine.logger()
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "rotation step panicked", "secretId", ev.SecretID, "step", ev.Step,
				"panic", fmt.Sprint(p))
			err = fmt.Errorf("%s: internal error in the rotation function (recovered panic)", ev.Step)
		}
	}()

	// stop short of the function's deadline, so that a step that cannot
	// finish still returns its error and writes its record
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-deadlineReserve))
		defer cancel()
	}

	var rec *metrics.Recorder
	if h.Metrics != nil {
		rec = metrics.New(h.Metrics, metrics.Namespace, map[string]string{metrics.DimensionFunction: h.FunctionName})
		ctx = metrics.NewContext(ctx, rec)
		defer func() {
			if ferr := rec.Flush(); ferr != nil {
				log.WarnContext(ctx, "metrics not written", "error", ferr.Error())
			}
		}()
	}

	err = h.Engine.Run(ctx, ev)
	if err == nil {
		if ev.Step == StepFinish {
			rec.Count(metrics.RotationsSucceeded, 1)
		}
		return nil
	}
	rec.Count(metrics.RotationsFailed, 1)
	if errors.Is(err, ErrInvalidEvent) {
		log.ErrorContext(ctx, "invalid rotation event", "error", err.Error())
		return err
	}

	d := Classify(err)
	log = log.With("secretId", ev.SecretID, "versionId", ev.ClientRequestToken, "step", ev.Step)
	if d.TokenProblem {
		rec.Count(metrics.TokenProblems, 1)
		log.ErrorContext(ctx, "apinizer token rejected or unreadable: check APINIZER_TOKEN_SECRET_ID",
			"outcome", "token_problem", "error", err.Error())
		return err
	}
	if d.Reason == "" {
		log.ErrorContext(ctx, "rotation step failed; Secrets Manager will retry", "outcome", "failed", "error", err.Error())
		return err
	}

	if d.Reason == deadletter.ReasonDeploymentFailed {
		rec.Count(metrics.DeploymentsFailed, 1)
	}
	record := deadletter.Record{
		Reason:       d.Reason,
		Source:       deadletter.SourceRotation,
		SecretID:     ev.SecretID,
		VersionID:    ev.ClientRequestToken,
		Environments: d.Environments,
		Error:        err.Error(),
	}
	var f *Failure
	if errors.As(err, &f) {
		record.ProjectName, record.Username = f.ProjectName, f.Username
	}
	log.ErrorContext(ctx, "rotation step failed; recording it in the dead-letter queue",
		"outcome", d.Reason, "project", record.ProjectName, "username", record.Username, "error", err.Error())
	if sendErr := h.DeadLetters.Send(ctx, record); sendErr != nil {
		log.ErrorContext(ctx, "dead-letter record not sent", "error", sendErr.Error())
		return errors.Join(err, sendErr)
	}
	rec.With(metrics.DimensionReason, d.Reason).Count(metrics.JobsDeadLettered, 1)
	return err
}
