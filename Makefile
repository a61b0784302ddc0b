# replicant: one Makefile that wraps the venv, Bazel, the local control plane, kind and Helm.
# `make help` lists every target. Knobs are overridable: `make test PYTEST_ARGS=-x`.

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
GEN ?= gen
PYTEST_ARGS ?=
# Starlark files checked by buildifier.
STARLARK_FILES = $(shell git ls-files --cached --others --exclude-standard -- '*.bazel' '*.bzl' 'MODULE.bazel' 2>/dev/null)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

.PHONY: doctor
doctor: ## Say which tools are present or missing, how to get them, and which build path is active.
	@$(PYTHON) tools/doctor.py

##@ Development

$(VENV)/.stamp: requirements_lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements_lock.txt
	@touch $@

.PHONY: venv
venv: $(VENV)/.stamp ## Build .venv from the hash-locked requirements_lock.txt.

.PHONY: lock
lock: ## Regenerate requirements_lock.txt (hashes for every package) from requirements*.in.
	$(PYTHON) -m venv .cache/lockenv
	.cache/lockenv/bin/pip install --quiet pip-tools==7.6.2
	.cache/lockenv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-find-links --resolver=backtracking -o requirements_lock.txt requirements-dev.in

$(GEN)/.stamp: $(VENV)/.stamp $(shell find proto -name '*.proto')
	rm -rf $(GEN) && mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(GEN) --grpc_python_out=$(GEN) \
		--mypy_out=$(GEN) --mypy_grpc_out=$(GEN) $(shell find proto -name '*.proto' | sort)
	@touch $@

.PHONY: proto
proto: $(GEN)/.stamp ## Generate Python gRPC stubs from proto/ into gen/ (git-ignored).

.PHONY: lint
lint: proto ## Run ruff, mypy --strict and buildifier (read-only: rewrites nothing).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	@if [ -n "$(STARLARK_FILES)" ]; then "$(TOOLS_BIN)/buildifier" -mode=check -lint=warn $(STARLARK_FILES); fi

.PHONY: fmt
fmt: venv ## Format Python sources in place.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: test
test: venv proto tools ## Run every test (unit, static checks, e2e on the local control plane).
	@if [[ -n "$(BAZEL_BIN)" ]]; then \
		echo "Bazel found: bazel test //..., then the non-hermetic e2e suite in the venv"; \
		"$(BAZEL_BIN)" test $(BAZEL_FLAGS) //... && PYTHONPATH=$(GEN):. $(PY) -m pytest e2e $(PYTEST_ARGS); \
	else \
		PYTHONPATH=$(GEN):. $(PY) -m pytest $(PYTEST_ARGS); \
	fi

##@ Build and release

# Bazel (or Bazelisk, which runs the version in .bazelversion) when installed; without
# it, build/test use the venv from the same lock and image/release skip the image.
BAZEL ?= bazel
BAZEL_BIN = $(shell command -v "$(BAZEL)" 2>/dev/null || command -v bazelisk 2>/dev/null)
BAZEL_FLAGS ?=
NO_BAZEL = Bazel is not installed (need bazel or bazelisk on PATH; see make doctor)
# Release version: the vX.Y.Z tag on HEAD (without the v), else 0.0.0-dev.
VERSION ?= $(or $(shell git describe --tags --exact-match --match 'v*' 2>/dev/null | sed 's/^v//'),0.0.0-dev)
DIST ?= dist

.PHONY: build
build: ## Build everything: bazel build //... (stubs, binary, image), or the venv and stubs without Bazel.
	@if [[ -n "$(BAZEL_BIN)" ]]; then \
		"$(BAZEL_BIN)" build $(BAZEL_FLAGS) //...; \
	else \
		echo "$(NO_BAZEL): building the venv path instead (make venv proto)"; \
		$(MAKE) --no-print-directory venv proto; \
	fi

.PHONY: image
image: venv ## Build the linux/amd64+arm64 image index and the host image tarball; print their digests (needs Bazel).
	@if [[ -z "$(BAZEL_BIN)" ]]; then echo "make image: $(NO_BAZEL); no image built" >&2; exit 1; fi
	$(PY) -m tools.release image --bazel "$(BAZEL_BIN)"

.PHONY: release
release: venv ## Write dist/<version>/: chart, SBOM, SHA256SUMS, notes; image index + tarball with Bazel (VERSION=x.y.z).
	REPLICANT_BIN="$(TOOLS_BIN)" tools/install.sh helm
	$(PY) -m tools.release all --version "$(VERSION)" --out "$(DIST)/$(VERSION)" \
		--helm "$(TOOLS_BIN)/helm" --bazel "$(BAZEL_BIN)"

##@ Tools

# Every external tool is pinned in tools/versions.env (KEY=value), read here and by
# tools/install.sh; builds land in $(REPLICANT_CACHE)/tools/<name>-<version>/.
include tools/versions.env
REPLICANT_CACHE ?= $(HOME)/.cache/replicant
TOOLS_BIN ?= $(CURDIR)/.cache/bin
export REPLICANT_CACHE

.PHONY: tools
tools: ## Build the pinned tools (tools/versions.env) from the Go module proxy; a no-op when cached.
	REPLICANT_BIN="$(TOOLS_BIN)" tools/install.sh

.PHONY: tools-list
tools-list: ## Print every pinned tool with its version.
	@tools/install.sh --list

##@ Local cluster

# A real control plane without Docker: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and a kwok fake node, all on 127.0.0.1, state in $(CLUSTER_DIR).
CLUSTER_DIR ?= $(CURDIR)/.cache/cluster
CLUSTER = REPLICANT_BIN="$(TOOLS_BIN)" $(PYTHON) -m tools.cluster --state-dir "$(CLUSTER_DIR)"

.PHONY: cluster-up
cluster-up: tools ## Start the local control plane (idempotent) and print `export KUBECONFIG=...`.
	$(CLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop only the processes cluster-up started, free their ports, remove the state.
	$(CLUSTER) down

.PHONY: cluster-status
cluster-status: ## Show each component, /readyz and the fake node.
	$(CLUSTER) status

##@ kind (needs Docker)

KIND_CLUSTER ?= replicant

.PHONY: kind-up
kind-up: tools ## Create a kind cluster from the digest-pinned node image (needs a Docker engine).
	"$(TOOLS_BIN)/kind" get clusters 2>/dev/null | grep -qx "$(KIND_CLUSTER)" || \
		"$(TOOLS_BIN)/kind" create cluster --name "$(KIND_CLUSTER)" \
			--image "$(KIND_NODE_IMAGE)" --config tools/kind-config.yaml --wait 120s

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	"$(TOOLS_BIN)/kind" delete cluster --name "$(KIND_CLUSTER)"
