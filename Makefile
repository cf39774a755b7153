# Builds, checks and demonstrates the two Lambda functions.
# `sam build` calls build-RotateFunction and build-BulkFunction with
# ARTIFACTS_DIR set (BuildMethod: makefile in template.yaml).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

# Tools from scripts/install-tools.sh: .tools/bin first, and Python's user
# base last, where pip --user puts moto_server and cfn-lint.
PY_USER_BASE := $(shell python3 -m site --user-base 2>/dev/null)
export PATH := $(CURDIR)/.tools/bin:$(PATH)$(if $(PY_USER_BASE),:$(PY_USER_BASE)/bin)

# Lambda runs the arm64 `bootstrap` on provided.al2023; lambda.norpc leaves
# out the RPC mode that only the old go1.x runtime used.
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -buildvcs=false -ldflags '-s -w'

# Lists Go files that gofmt would change (hidden folders, bin/ and testdata/
# left out) and fails if there are any.
define gofmt_check
@echo 'gofmt -l (hidden folders, bin/ and testdata/ left out)'
@unformatted=$$(find . \( -path './.*' -o -path ./bin -o -name testdata \) -prune \
	-o -name '*.go' -print | xargs -r gofmt -l); \
if [[ -n $$unformatted ]]; then \
	echo "gofmt would change these files (run gofmt -w):"; echo "$$unformatted"; exit 1; \
fi
endef

.PHONY: build build-RotateFunction build-BulkFunction tools demo test test-faults bench fuzz vulncheck lint clean

build-RotateFunction:
	@[[ -n "$(ARTIFACTS_DIR)" ]] || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	$(LAMBDA_ENV) go build $(LAMBDA_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/rotate

build-BulkFunction:
	@[[ -n "$(ARTIFACTS_DIR)" ]] || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	$(LAMBDA_ENV) go build $(LAMBDA_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/bulk

# Host binaries, for the Runtime Interface Emulator and the demo.
build:
	CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -o bin/rotate/bootstrap ./functions/rotate
	CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -o bin/bulk/bootstrap ./functions/bulk
	CGO_ENABLED=0 go build -trimpath -o bin/apinizer-sim ./cmd/apinizer-sim

tools:
	bash scripts/install-tools.sh

demo: tools
	go run ./cmd/demo

test: tools
	go vet ./...
	$(gofmt_check)
	cfn-lint template.yaml
	bash scripts/govulncheck.sh
	go test -race -count=1 -timeout 20m ./...

# The fault-injection matrix and the races between the two functions, with
# the matrix printed (make test runs them too, quietly). RACE_ROUNDS=50
# repeats each race fifty times.
test-faults: tools
	go test -count=1 -v -timeout 30m ./test/faults/ | grep -vE '^(=== (RUN|PAUSE|CONT)|\s+--- PASS)'

# Bulk batches at concurrency 1 (the baseline) and the default, and Secrets
# Manager calls per job and per rotation, in one run (BENCH_FLAGS="-n 10,100,1000").
bench: tools
	go run ./cmd/bench $(BENCH_FLAGS)

FUZZ_TARGETS := pkg/bulk:FuzzParseJob pkg/bulk:FuzzRedactJobBody pkg/bulk:FuzzHandleNeverLosesAJob \
	pkg/rotation:FuzzParseCredential pkg/rotation:FuzzValidateEvent \
	pkg/apinizer:FuzzReadAnswer pkg/config:FuzzLoad
FUZZTIME ?= 60s

# Each fuzz target for FUZZTIME, one after another (go test -fuzz takes one
# package and one target); make test runs their seeds and testdata/corpus.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		go test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) ./$${t%%:*}; \
	done

# Known vulnerabilities, offline once the database module is cached; fails
# only for a vulnerable dependency the code calls (see docs/security.md).
vulncheck:
	bash scripts/govulncheck.sh

lint: tools
	$(gofmt_check)
	go vet ./...
	cfn-lint template.yaml

# Keeps .tools/ (installed tools); delete it by hand to reinstall them.
clean:
	rm -rf bin .aws-sam
