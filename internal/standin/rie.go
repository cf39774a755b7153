package standin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// RIEPackage is the Runtime Interface Emulator's command at the version this
// project was tried with. No tagged version is served, hence the
// pseudo-version.
const RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie" +
	"@v0.0.0-20261030222936-bef5c4ba774d"

const rieBinary = "aws-lambda-rie"

// rieMu keeps the test binaries of one package from installing twice; the
// install's final rename keeps separate packages from clashing.
var rieMu sync.Mutex

// EnsureRIE returns the path of the aws-lambda-rie binary. It looks in
// $REPO/.tools/bin, then $REPO/.tools, then PATH, and otherwise installs
// RIEPackage into $REPO/.tools/bin with go install.
func EnsureRIE(ctx context.Context) (string, error) {
	rieMu.Lock()
	defer rieMu.Unlock()

	root, rootErr := RepoRoot()
	if rootErr == nil {
		for _, dir := range []string{".tools/bin", ".tools"} {
			path := filepath.Join(root, dir, rieBinary)
			if isExecutable(path) {
				return path, nil
			}
		}
	}
	if path, err := exec.LookPath(rieBinary); err == nil {
		return filepath.Abs(path)
	}
	if rootErr != nil {
		return "", fmt.Errorf("%s is not on PATH and it cannot be installed: %w", rieBinary, rootErr)
	}
	return installRIE(ctx, root)
}

// installRIE runs go install into a temporary directory beside the final
// one, then renames the binary into place, so two processes installing at
// once each replace the file whole.
func installRIE(ctx context.Context, root string) (string, error) {
	binDir := filepath.Join(root, ".tools", "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("installing %s: %w", rieBinary, err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(root, ".tools"), "install-rie-")
	if err != nil {
		return "", fmt.Errorf("installing %s: %w", rieBinary, err)
	}
	defer os.RemoveAll(tmp)

	cmd := exec.CommandContext(ctx, "go", "install", RIEPackage)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing %s: go install %s: %w\n%s",
			rieBinary, RIEPackage, err, bytesTail(out))
	}

	path := filepath.Join(binDir, rieBinary)
	if err := os.Rename(filepath.Join(tmp, rieBinary), path); err != nil {
		return "", fmt.Errorf("installing %s: %w", rieBinary, err)
	}
	return path, nil
}

// BuildFunction compiles ./functions/<name> as the host's `bootstrap`, the
// way a provided.al2023 runtime runs it, into outDir/<name>/bootstrap, and
// returns that path.
func BuildFunction(ctx context.Context, name, outDir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("building function %s: %w", name, err)
	}
	out, err := filepath.Abs(filepath.Join(outDir, name, "bootstrap"))
	if err != nil {
		return "", fmt.Errorf("building function %s: %w", name, err)
	}
	if err := buildBootstrap(ctx, root, "./functions/"+name, out); err != nil {
		return "", fmt.Errorf("building function %s: %w", name, err)
	}
	return out, nil
}

// buildBootstrap builds the main package pkg, relative to the module root,
// into the absolute path out, without cgo and with the lambda.norpc tag.
func buildBootstrap(ctx context.Context, root, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, bytesTail(out))
	}
	return nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
