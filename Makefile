# selfheal — see README.md. Every target is safe to run on a fresh clone.
.DEFAULT_GOAL := test
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
MAKEFLAGS += --no-print-directory

GO        ?= go
BIN       := bin/selfheal
PKG       := github.com/selfheal/selfheal
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=main
FUZZTIME  ?= 10s
STATICCHECK_VERSION := v0.8.2

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## build: build bin/selfheal
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/selfheal

## run: start the daemon with examples/local (store under ./data, exec/webhook actions only)
run: build
	./$(BIN) serve --config.file=examples/local/selfheal.yml --storage.path=data/ --web.listen-address=127.0.0.1:9595

## deps: install what the tests need: Debian's prometheus and prometheus-alertmanager
deps:
	@./scripts/install-deps.sh

## test: everything CI runs: vet, unit tests with -race, short fuzzing, e2e against real components
test: deps vet
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

## test-short: unit tests only (no real Prometheus/Alertmanager)
test-short:
	$(GO) test -race -short -count=1 ./...

## e2e: only the end-to-end tests against real Prometheus and Alertmanager
e2e: deps
	$(GO) test -race -count=1 -v ./e2e/

## fuzz: run each fuzz target for FUZZTIME (default 10s)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzWebhook$$' -fuzztime $(FUZZTIME) ./receiver/
	$(GO) test -run '^$$' -fuzz '^FuzzPlaybooks$$' -fuzztime $(FUZZTIME) ./playbooks/

## bench: run the benchmarks
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.txt

## vet: go vet
vet:
	$(GO) vet ./...

## lint: go vet and staticcheck
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## fmt: gofmt the tree
fmt:
	gofmt -w $$(git ls-files '*.go')

## tidy-check: fail if go.mod/go.sum are not tidy
tidy-check:
	$(GO) mod tidy -diff

## check-examples: validate the example config and playbooks with selfheal check
check-examples: build
	./$(BIN) check --config.file=examples/local/selfheal.yml

.PHONY: help build run deps test test-short e2e fuzz bench vet lint fmt tidy-check check-examples
