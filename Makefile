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
# Fuzzing is bounded by executions, not time: with a time bound, go1.26's
# coordinator can fail a loaded run with "context deadline exceeded" and no
# crasher (golang/go#75804). FUZZTIME=30s (or 1000x) overrides them all.
# Each count takes about 5 s on 2 cores.
FUZZ_WEBHOOK   ?= 50000x
FUZZ_PLAYBOOKS ?= 3000x
FUZZ_MANIFEST  ?= 40000x
FUZZ_CONFIG    ?= 80000x
LISTEN    ?= 127.0.0.1:9595
# The real Kubernetes control plane tests use: built once into a cache
# outside the clone (a cold build takes about 11 minutes), started per run.
K8SLAB_DIR ?= $(HOME)/.cache/selfheal/k8slab
K8SLAB     := K8SLAB_DIR=$(K8SLAB_DIR) K8SLAB_KWOK=1 bash scripts/k8slab.sh
export SELFHEAL_K8SLAB_ENV := $(K8SLAB_DIR)/env
# with-k8slab runs a command with the control plane up: started (and stopped
# afterwards) unless one is already running, which is then left alone.
with-k8slab = if [ "$$($(K8SLAB) status 2>/dev/null | grep '^readyz:' || true)" = "readyz: ok" ]; then $(1); \
	else $(K8SLAB) start && trap '$(K8SLAB) stop' EXIT && $(1); fi
STATICCHECK_VERSION := v0.8.2

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## build: build bin/selfheal
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/selfheal

## run: start the daemon with examples/local (store under ./data, exec/webhook actions only) on LISTEN (127.0.0.1:9595)
run: build
	./$(BIN) serve --config.file=examples/local/selfheal.yml --storage.path=data/ --web.listen-address=$(LISTEN) --cluster.listen-address=

## deps: install what the tests need: Debian's prometheus, prometheus-alertmanager and etcd, and build kube-apiserver (cached)
deps:
	@./scripts/install-deps.sh
	@$(K8SLAB) build

## k8s-up: start the cached kube-apiserver, etcd, controller-manager, scheduler and kwok on 127.0.0.1
k8s-up: deps
	$(K8SLAB) start

## k8s-down: stop them (by the PIDs recorded at start)
k8s-down:
	$(K8SLAB) stop

## test: everything CI runs: vet + staticcheck, unit tests with -race, short fuzzing, e2e against real components
test: deps lint
	$(call with-k8slab,$(GO) test -race -count=1 ./...)
	$(MAKE) fuzz

## test-short: unit tests only (no real Prometheus/Alertmanager)
test-short:
	$(GO) test -race -short -count=1 ./...

## e2e: only the end-to-end tests against real Prometheus and Alertmanager
e2e: deps
	$(call with-k8slab,$(GO) test -race -count=1 -v ./e2e/...)

## fuzz: run each fuzz target for a fixed number of executions (FUZZTIME=30s overrides)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzWebhook$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_WEBHOOK)) ./receiver/
	$(GO) test -run '^$$' -fuzz '^FuzzPlaybooks$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_PLAYBOOKS)) ./playbooks/
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_MANIFEST)) ./playbooks/kube/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_CONFIG)) ./config/

## bench: the Go micro-benchmarks (bench.txt), then the harness in bench/ (selfheal against the bare receiver of ../shared/bench, latencies, footprint, start time), which writes BENCHMARKS.md; about 7 min on 2 cores, raw outputs in /tmp/selfheal-bench
bench:
	start=$$(date +%s); \
	$(GO) test -run '^$$' -bench . -skip LogFootprint -benchmem -count 6 ./... | tee bench.txt; \
	$(GO) test -run '^$$' -bench LogFootprint -benchtime 1x ./ha | tee -a bench.txt; \
	GO=$(GO) $(GO) run ./bench -micro bench.txt -started $$start

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

## check-examples: validate the example config and playbooks with selfheal check, and run the playbook tests of examples/tests (also run by `test`, through cmd/selfheal's TestUnitTestExamples)
check-examples: build
	./$(BIN) check --config.file=examples/local/selfheal.yml
	./$(BIN) check examples/kubernetes/playbooks-configmap.yaml
	./$(BIN) check examples/tests/playbooks/*.yaml
	./$(BIN) test examples/tests/*.yaml

# The container image (Dockerfile): a static binary on scratch, so nothing
# is pulled. With buildah (Debian's package) it is written as an OCI archive,
# IMAGE_ARCHIVE (buildah keeps its layers under bin/buildah); `skopeo copy
# oci-archive:bin/selfheal-image.tar docker://REGISTRY/selfheal:TAG` pushes
# it. With docker instead (IMAGE_BUILDER=docker), it goes to the local engine.
IMAGE         ?= selfheal:$(VERSION)
IMAGE_ARCHIVE ?= bin/selfheal-image.tar
IMAGE_ARCH    ?= $(shell $(GO) env GOARCH)
# buildah needs no daemon (Debian's package is installed when missing);
# IMAGE_BUILDER=docker builds with a Docker engine instead.
IMAGE_BUILDER ?= buildah
SUDO          := $(if $(filter 0,$(shell id -u)),,sudo)
BUILDAH_FLAGS ?= --storage-driver=vfs --root=$(CURDIR)/bin/buildah/storage --runroot=$(CURDIR)/bin/buildah/run

## image: build the container image (Dockerfile: a static selfheal on scratch, user 65532) into IMAGE_ARCHIVE (bin/selfheal-image.tar) with buildah, or as IMAGE with docker
image:
	rm -rf bin/image
	mkdir -p bin/image/rootfs/etc/ssl/certs bin/image/rootfs/usr/local/bin bin/image/rootfs/var/lib bin/image/data
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/image/rootfs/usr/local/bin/selfheal ./cmd/selfheal
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >bin/image/rootfs/etc/passwd
	printf 'root:x:0:\nnonroot:x:65532:\n' >bin/image/rootfs/etc/group
	cp /etc/ssl/certs/ca-certificates.crt bin/image/rootfs/etc/ssl/certs/
	case "$(IMAGE_BUILDER)" in \
	buildah) command -v buildah >/dev/null || { echo "image: installing buildah (apt-get)"; $(SUDO) apt-get install -y -qq buildah; }; \
	  rm -f $(IMAGE_ARCHIVE); \
	  buildah $(BUILDAH_FLAGS) build --isolation chroot --platform linux/$(IMAGE_ARCH) -f Dockerfile \
	    -t oci-archive:$(IMAGE_ARCHIVE):$(IMAGE) . && echo "image $(IMAGE) written to $(IMAGE_ARCHIVE)";; \
	*) $(IMAGE_BUILDER) build --platform linux/$(IMAGE_ARCH) -f Dockerfile -t $(IMAGE) .;; \
	esac

.PHONY: image

.PHONY: help build run deps k8s-up k8s-down test test-short e2e fuzz bench vet lint fmt tidy-check check-examples
