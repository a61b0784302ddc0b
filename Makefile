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
	PYTHONPATH=$(GEN):. $(PY) -m pytest $(PYTEST_ARGS)
