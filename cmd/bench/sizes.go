package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/apinizer-rotation/rotator/internal/standin"
)

// lambdaEnv and lambdaFlags mirror LAMBDA_ENV and LAMBDA_FLAGS in the
// Makefile, which is how `sam build` builds the deployed bootstrap binaries.
// Change them together; TestLambdaBuildMirrorsMakefile checks they agree.
var (
	lambdaEnv   = []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}
	lambdaFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w"}
)

// lambdaFunctions are the function packages under ./functions, in the order
// binarySizes reports them.
var lambdaFunctions = []string{"rotate", "bulk"}

// binarySize is the size of one function's deployed bootstrap binary.
type binarySize struct {
	Function string
	Bytes    int64
}

// binarySizes builds every function for Lambda (linux/arm64, as the
// Makefile does) into a temporary directory and returns the sizes of the
// binaries. The directory is removed before it returns.
func binarySizes(ctx context.Context) ([]binarySize, error) {
	root, err := standin.RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("measuring binary sizes: %w", err)
	}
	tmp, err := os.MkdirTemp("", "apinizer-bench-sizes-")
	if err != nil {
		return nil, fmt.Errorf("measuring binary sizes: %w", err)
	}
	defer os.RemoveAll(tmp)

	sizes := make([]binarySize, 0, len(lambdaFunctions))
	for _, name := range lambdaFunctions {
		out := filepath.Join(tmp, name, "bootstrap")
		if err := buildForLambda(ctx, root, "./functions/"+name, out); err != nil {
			return nil, fmt.Errorf("measuring the size of function %s: %w", name, err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			return nil, fmt.Errorf("measuring the size of function %s: %w", name, err)
		}
		sizes = append(sizes, binarySize{Function: name, Bytes: fi.Size()})
	}
	return sizes, nil
}

// buildForLambda builds the main package pkg, relative to the module root,
// into out with the Makefile's Lambda environment and flags.
func buildForLambda(ctx context.Context, root, pkg, out string) error {
	args := append([]string{"build"}, lambdaFlags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	// later entries win, so lambdaEnv overrides any GOOS or GOARCH set
	cmd.Env = append(os.Environ(), lambdaEnv...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for linux/arm64: %w\n%s", pkg, err, outputTail(output))
	}
	return nil
}
