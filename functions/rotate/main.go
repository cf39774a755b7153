// Command rotate is the Secrets Manager rotation function for secrets that
// hold an Apinizer credential.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/apinizer-rotation/rotator/pkg/lambdaapp"
	"github.com/apinizer-rotation/rotator/pkg/rotation"
)

func main() {
	app, err := lambdaapp.New(context.Background())
	if err != nil {
		// fail every invocation with the one clear message, so the caller
		// sees it, without touching anything
		lambdacontext.NewLogger().Error("cannot start the rotation function", "error", err.Error())
		lambda.Start(func(context.Context, rotation.Event) error { return err })
		return
	}
	slog.SetDefault(app.Logger)
	h := &rotation.Handler{Engine: app.Engine, DeadLetters: app.DeadLetters,
		Metrics: os.Stdout, FunctionName: lambdacontext.FunctionName}
	lambda.Start(h.Handle)
}
