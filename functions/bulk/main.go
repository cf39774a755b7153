// Command bulk is the SQS-triggered function that rotates the credential
// secrets named by bulk rotation jobs.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/apinizer-rotation/rotator/pkg/bulk"
	"github.com/apinizer-rotation/rotator/pkg/lambdaapp"
)

func main() {
	app, err := lambdaapp.New(context.Background())
	if err != nil {
		// a condition that dooms every record: fail each batch whole,
		// before any record is touched, with the one clear message
		lambdacontext.NewLogger().Error("cannot start the bulk function", "error", err.Error())
		lambda.Start(func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, err
		})
		return
	}
	slog.SetDefault(app.Logger)
	h := &bulk.Handler{
		Rotator:        app.Engine,
		DeadLetters:    app.DeadLetters,
		Logger:         app.Logger,
		MaxConcurrency: app.Config.BulkMaxConcurrency,
		PrepareAhead:   app.Config.BulkPrepareAhead,
		TokenSecretID:  app.Config.TokenSecretID,
		Metrics:        os.Stdout,
		FunctionName:   lambdacontext.FunctionName,
	}
	lambda.Start(h.Handle)
}
