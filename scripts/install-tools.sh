#!/usr/bin/env bash
# Installs what `make test` and `make demo` need besides Go: the Lambda Runtime
# Interface Emulator (pinned, into .tools/bin), moto_server and cfn-lint.
# Safe to run again: tools already there are only reported.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$REPO/.tools/bin

RIE_PACKAGE=github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
# No tagged version is served, so the pseudo-version is pinned.
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
MOTO_VERSION=5.2.1
CFN_LINT_VERSION=1.51.0

# The Runtime Interface Emulator, the piece `sam local invoke` runs in its
# container. The stamp file records which version the binary is.
mkdir -p "$BIN"
stamp=$BIN/.aws-lambda-rie.version
if [[ ! -x $BIN/aws-lambda-rie || "$(cat "$stamp" 2>/dev/null)" != "$RIE_VERSION" ]]; then
  echo "installing aws-lambda-rie $RIE_VERSION into $BIN"
  GOBIN=$BIN go install "$RIE_PACKAGE@$RIE_VERSION"
  echo "$RIE_VERSION" >"$stamp"
fi
echo "aws-lambda-rie $RIE_VERSION: $BIN/aws-lambda-rie"

# moto_server and cfn-lint come with the usual machine image; elsewhere they
# go into Python's user base, whose bin/ the Makefile puts on PATH.
user_bin=$(python3 -m site --user-base)/bin
export PATH=$PATH:$user_bin
missing=()
command -v moto_server >/dev/null || missing+=("moto[server]==$MOTO_VERSION")
command -v cfn-lint >/dev/null || missing+=("cfn-lint==$CFN_LINT_VERSION")
if ((${#missing[@]} > 0)); then
  echo "installing ${missing[*]} with pip --user"
  python3 -m pip install --user --quiet "${missing[@]}"
  echo "hint: to run them outside make, add $user_bin to PATH"
fi
for tool in moto_server cfn-lint; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH, not even in $user_bin" >&2; exit 1; }
done

# Report versions, read from the package metadata (fast); a tool that lives
# under another Python is reported by path only.
dist_version() {
  python3 -c 'import sys
from importlib.metadata import version
print(version(sys.argv[1]))' "$1" 2>/dev/null || echo "version unknown"
}
echo "moto_server $(dist_version moto): $(command -v moto_server)"
cfn_lint_version=$(dist_version cfn-lint)
echo "cfn-lint $cfn_lint_version: $(command -v cfn-lint)"
if [[ $cfn_lint_version != "$CFN_LINT_VERSION" ]]; then
  echo "note: the template is checked with cfn-lint $CFN_LINT_VERSION; other versions may differ"
fi
