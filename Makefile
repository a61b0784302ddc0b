# replicant: one Makefile that wraps the venv, Bazel, the local control plane, kind and Helm.
# `make help` lists every target. Knobs are overridable: `make test PYTEST_ARGS=-x`.

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec
# .SHELLFLAGS (and so `set -e` in every recipe) needs GNU make 3.82 or newer; macOS ships 3.81.
ifeq ($(filter oneshell,$(.FEATURES)),)
$(error GNU make 3.82 or newer is needed (macOS: brew install make, then run gmake))
endif
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
GEN ?= gen
PYTEST_ARGS ?=

# Every external tool is pinned in tools/versions.env (KEY=value), read here and by
# tools/install.sh; builds land in $(REPLICANT_CACHE)/tools/<name>-<version>/ and are
# linked into $(TOOLS_BIN). Each tool path below is the only place it is spelled out.
include tools/versions.env
REPLICANT_CACHE ?= $(HOME)/.cache/replicant
export REPLICANT_CACHE
TOOLS_BIN ?= $(CURDIR)/.cache/bin
INSTALL_TOOLS = REPLICANT_BIN="$(TOOLS_BIN)" tools/install.sh
ACTIONLINT ?= $(TOOLS_BIN)/actionlint
BUILDIFIER ?= $(TOOLS_BIN)/buildifier
GRPCURL ?= $(TOOLS_BIN)/grpcurl
HELM ?= $(TOOLS_BIN)/helm
KIND ?= $(TOOLS_BIN)/kind
KUBECONFORM ?= $(TOOLS_BIN)/kubeconform
KUBECTL ?= $(TOOLS_BIN)/kubectl
GO ?= go
# Starlark files checked by buildifier.
STARLARK_FILES = $(shell git ls-files --cached --others --exclude-standard -- '*.bazel' '*.bzl' 'MODULE.bazel' 2>/dev/null)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

$(VENV)/.stamp: requirements_lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements_lock.txt
	@touch $@

.PHONY: venv
venv: $(VENV)/.stamp # Build .venv from the hash-locked requirements_lock.txt.

.PHONY: lock
lock: ## Regenerate requirements_lock.txt (hashes for every package) from requirements*.in.
	$(PYTHON) -m venv .cache/lockenv
	.cache/lockenv/bin/pip install --quiet pip-tools==7.6.2
	.cache/lockenv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-find-links --resolver=backtracking -o requirements_lock.txt requirements-dev.in

PROTO_FILES := $(sort $(shell find proto -name '*.proto'))

$(GEN)/.stamp: $(VENV)/.stamp $(PROTO_FILES)
	rm -rf $(GEN) && mkdir -p $(GEN)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -Iproto --python_out=$(GEN) --grpc_python_out=$(GEN) \
		--mypy_out=$(GEN) --mypy_grpc_out=$(GEN) $(PROTO_FILES)
	@touch $@

.PHONY: proto
proto: $(GEN)/.stamp # Generate Python gRPC stubs from proto/ into gen/ (git-ignored).

# Whole-repository checks that read the source tree (import contract, action pins): not
# hermetic, so here and in `make test`, never in `bazel test`.
REPO_CHECKS = tools/tests/test_import_contract.py tools/tests/test_static_lint.py

.PHONY: lint
lint: proto ## Run ruff, mypy --strict, the import contract, buildifier and actionlint (read-only).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	PYTHONPATH=$(GEN):. $(VENV)/bin/lint-imports --no-cache
	$(INSTALL_TOOLS) buildifier actionlint >/dev/null
	"$(BUILDIFIER)" -mode=check -lint=warn $(STARLARK_FILES)
	"$(ACTIONLINT)" -no-color .github/workflows/*.yml
	PYTHONPATH=$(GEN):. $(PY) -m pytest -q -p no:cacheprovider $(REPO_CHECKS)

.PHONY: fmt
fmt: venv ## Format Python sources in place.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Tests that need nothing but the venv: no Go, no pinned tools, no cluster.
UNIT_SELECT = -m "not cluster and not tools"

.PHONY: test-unit
test-unit: venv proto ## Unit and static tests only: no Go, no tools, no cluster (seconds).
	PYTHONPATH=$(GEN):. $(PY) -m pytest $(UNIT_SELECT) $(PYTEST_ARGS)

.PHONY: test
test: venv proto tools ## Run every test in the venv: unit, static checks, chart, e2e on the local control plane.
	PYTHONPATH=$(GEN):. $(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-bazel
test-bazel: require-bazel ## bazel test //... (the hermetic suites; BAZEL_FLAGS passed through).
	"$(BAZEL_BIN)" test $(BAZEL_FLAGS) //...

##@ Tools

.PHONY: tools
tools: ## Build the pinned tools (tools/versions.env) from the Go module proxy; a no-op when cached.
	$(INSTALL_TOOLS)

##@ Local cluster

# envtest's idea (a real kube-apiserver and etcd as plain processes) plus the controller
# manager, the scheduler and kwok's fake node, all on 127.0.0.1, state in $(CLUSTER_DIR).
CLUSTER_DIR ?= $(CURDIR)/.cache/cluster
CLUSTER_KUBECONFIG = $(CLUSTER_DIR)/kubeconfig
CLUSTER_CMD = REPLICANT_BIN="$(TOOLS_BIN)" $(PY) -m tools.cluster --state-dir "$(CLUSTER_DIR)"
CLUSTER_KUBECTL = "$(KUBECTL)" --kubeconfig "$(CLUSTER_KUBECONFIG)"

.PHONY: cluster-up
cluster-up: tools venv ## Start the local control plane (kube-apiserver + etcd as processes, kwok node).
	$(CLUSTER_CMD) up

.PHONY: cluster-down
cluster-down: venv ## Stop only the processes cluster-up started, free their ports, remove the state.
	$(CLUSTER_CMD) down

##@ Server

CERTS_DIR ?= certs
RUN_GRPC_PORT ?= 8443
RUN_HTTP_PORT ?= 8080
RUN_NAMESPACE ?= default
GRPCURL_TLS = -cacert $(CERTS_DIR)/ca.crt -cert $(CERTS_DIR)/reader.crt -key $(CERTS_DIR)/reader.key

.PHONY: certs
certs: venv ## Generate the dev PKI (server and client CAs, server, reader/writer/nobody, untrusted) into certs/.
	$(PY) -m tools.devcerts --out "$(CERTS_DIR)"

.PHONY: run
run: venv proto certs cluster-up ## Run the server on 127.0.0.1 against the local cluster, with sample Deployments.
	@# The server is ready only once its ReplicaTarget cache syncs, so the CRD comes first.
	$(CLUSTER_KUBECTL) apply --server-side --force-conflicts -f $(CRD_FILE) >/dev/null
	$(CLUSTER_KUBECTL) wait --for=condition=Established --timeout=30s crd/replicatargets.replicant.dev >/dev/null
	@for d in web:3 api:2; do \
		$(CLUSTER_KUBECTL) -n "$(RUN_NAMESPACE)" create deployment "$${d%%:*}" --image=nginx \
			--replicas="$${d##*:}" --dry-run=client -o yaml | $(CLUSTER_KUBECTL) apply -f - >/dev/null; \
	done
	@echo "Try (grpcurl from make tools is $(GRPCURL)):"
	@echo "  $(GRPCURL) $(GRPCURL_TLS) 127.0.0.1:$(RUN_GRPC_PORT) list"
	@echo "  $(GRPCURL) $(GRPCURL_TLS) -d '{\"ref\":{\"namespace\":\"$(RUN_NAMESPACE)\",\"name\":\"web\"}}' 127.0.0.1:$(RUN_GRPC_PORT) replicant.v1.ReplicaService/GetReplicas"
	@echo "  $(GRPCURL) $(GRPCURL_TLS) -d '{\"page_size\":10}' 127.0.0.1:$(RUN_GRPC_PORT) replicant.v1.ReplicaService/ListDeployments"
	@echo "  $(GRPCURL) -cacert $(CERTS_DIR)/ca.crt -cert $(CERTS_DIR)/writer.crt -key $(CERTS_DIR)/writer.key -d '{\"ref\":{\"namespace\":\"$(RUN_NAMESPACE)\",\"name\":\"web\"},\"replicas\":5}' 127.0.0.1:$(RUN_GRPC_PORT) replicant.v1.ReplicaService/SetReplicas"
	@echo "  $(GRPCURL) $(GRPCURL_TLS) 127.0.0.1:$(RUN_GRPC_PORT) grpc.health.v1.Health/Check"
	@echo "  curl -s 127.0.0.1:$(RUN_HTTP_PORT)/readyz; curl -s 127.0.0.1:$(RUN_HTTP_PORT)/metrics"
	PYTHONPATH=$(GEN):. $(PY) -m server --kubeconfig "$(CLUSTER_KUBECONFIG)" \
		--grpc-port $(RUN_GRPC_PORT) --http-port $(RUN_HTTP_PORT) \
		--tls-cert-file $(CERTS_DIR)/server.crt --tls-key-file $(CERTS_DIR)/server.key \
		--client-ca-file $(CERTS_DIR)/client-ca.crt \
		--readers spiffe://replicant.dev/client/reader --writers spiffe://replicant.dev/client/writer

.PHONY: bench
bench: venv proto tools $(if $(KUBECONFIG),,cluster-up) ## Benchmark replicant against a bare grpc.aio server, interleaved (KUBECONFIG wins if set); ~4 min.
	KUBECONFIG="$(or $(KUBECONFIG),$(CLUSTER_KUBECONFIG))" REPLICANT_BIN="$(TOOLS_BIN)" PYTHONPATH=$(GEN):. $(PY) -m tools.bench

##@ kind (needs Docker)

KIND_CLUSTER ?= replicant

.PHONY: kind-up
kind-up: tools ## Create a kind cluster from the digest-pinned node image (needs a Docker engine).
	"$(KIND)" get clusters 2>/dev/null | grep -qx "$(KIND_CLUSTER)" || \
		"$(KIND)" create cluster --name "$(KIND_CLUSTER)" \
			--image "$(KIND_NODE_IMAGE)" --config tools/kind-config.yaml --wait 120s

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	"$(KIND)" delete cluster --name "$(KIND_CLUSTER)"

##@ Helm

# charts/replicant is installed by `make deploy` (kind, needs Docker).
CHART ?= charts/replicant
# The ReplicaTarget CRD's one source: the chart renders it (crds.enabled); `make run` applies it.
CRD_FILE := charts/replicant/files/replicatargets.replicant.dev.yaml
# Fixed, not a knob: the rollout wait and the dev certificates' Service names assume it.
RELEASE := replicant
DEPLOY_NAMESPACE ?= replicant-system
# The dev image: what //server:image_load loads into Docker (server/BUILD.bazel), fixed.
DEV_IMAGE := replicant:dev
# Extra `helm upgrade` arguments, e.g. HELM_ARGS='--set authorization.readers={spiffe://x}'.
HELM_ARGS ?=
# kubeconform's JSON schemas, generated offline (GitHub is unreachable here) from the
# OpenAPI v3 documents in the k8s.io/kubernetes module `make tools` builds from, plus the
# chart's CRD; charts/schemas/ holds hand-written subsets of cert-manager's Certificate and
# the Prometheus Operator's PodMonitor (only rendered when enabled).
# KUBE_OPENAPI_DIR=<dir> uses other OpenAPI v3 documents (e.g. from `kubectl get --raw`).
KUBE_OPENAPI_DIR ?=
HELM_SCHEMAS := .cache/kubeconform-schemas
SCHEMA_PATH := {{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json
KUBECONFORM_FLAGS := -strict -summary -schema-location '$(HELM_SCHEMAS)/$(SCHEMA_PATH)' \
	-schema-location 'charts/schemas/$(SCHEMA_PATH)'
# Offline, the defaults need the API server CIDRs (ci/offline-values.yaml): online the chart
# reads them from the cluster.
HELM_CHECK_VALUES := "$(CHART)/ci/offline-values.yaml" "$(CHART)/ci/all-options-values.yaml"
DEPLOY_DIR := .cache/deploy
KIND_KUBECONFIG := $(DEPLOY_DIR)/kind.kubeconfig

$(HELM_SCHEMAS)/.stamp: $(VENV)/.stamp charts/kubeconform_schemas.py $(CRD_FILE) tools/versions.env
	openapi="$(KUBE_OPENAPI_DIR)"; \
	if [[ -z "$$openapi" ]]; then \
		openapi="$$("$(GO)" mod download -json "k8s.io/kubernetes@$(KUBERNETES_VERSION)" | \
			$(PY) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/api/openapi-spec/v3"; \
	fi; \
	rm -rf "$(HELM_SCHEMAS)"; \
	$(PY) -m charts.kubeconform_schemas --openapi-dir "$$openapi" --out "$(HELM_SCHEMAS)" \
		--crd "$(CRD_FILE)"
	@touch $@

# Used by ci.yml's lint job (and the chart tests run the same checks).
.PHONY: helm-check
helm-check: $(HELM_SCHEMAS)/.stamp # Lint the chart and kubeconform -strict its manifests (ci/offline and ci/all-options values).
	@$(INSTALL_TOOLS) helm kubeconform
	@for values in $(HELM_CHECK_VALUES); do \
		args=(--kube-version "$(KUBERNETES_VERSION)" $${values:+--values "$$values"}); \
		echo "== $$values"; \
		"$(HELM)" lint --strict "$(CHART)" "$${args[@]}"; \
		"$(HELM)" template "$(RELEASE)" "$(CHART)" -n "$(DEPLOY_NAMESPACE)" "$${args[@]}" | \
			"$(KUBECONFORM)" $(KUBECONFORM_FLAGS) -; \
	done

# $(call helm-install,<kubeconfig>,<extra helm args>): namespace enforcing the restricted
# Pod Security Standard, dev-PKI Secrets (kept when present), the API server endpoints the
# NetworkPolicy allows (charts/helmtool.py), then `helm upgrade --install --wait` (the chart
# installs and upgrades the CRD), then `kubectl rollout status` (Helm's --wait returns before
# the old pods are gone).
define helm-install
	"$(KUBECTL)" --kubeconfig "$(1)" create namespace "$(DEPLOY_NAMESPACE)" --dry-run=client -o yaml | \
		"$(KUBECTL)" --kubeconfig "$(1)" apply -f -
	"$(KUBECTL)" --kubeconfig "$(1)" label --overwrite namespace "$(DEPLOY_NAMESPACE)" \
		pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
	$(PY) -m tools.devcerts --out "$(DEPLOY_DIR)/pki" --namespace "$(DEPLOY_NAMESPACE)"
	"$(KUBECTL)" --kubeconfig "$(1)" -n "$(DEPLOY_NAMESPACE)" create secret generic "$(RELEASE)-tls" \
		--from-file=tls.crt="$(DEPLOY_DIR)/pki/server.crt" --from-file=tls.key="$(DEPLOY_DIR)/pki/server.key" \
		--from-file=ca.crt="$(DEPLOY_DIR)/pki/ca.crt" --dry-run=client -o yaml | \
		"$(KUBECTL)" --kubeconfig "$(1)" apply -f -
	"$(KUBECTL)" --kubeconfig "$(1)" -n "$(DEPLOY_NAMESPACE)" create secret generic "$(RELEASE)-client-ca" \
		--from-file=ca.crt="$(DEPLOY_DIR)/pki/client-ca.crt" --dry-run=client -o yaml | \
		"$(KUBECTL)" --kubeconfig "$(1)" apply -f -
	"$(KUBECTL)" --kubeconfig "$(1)" -n "$(DEPLOY_NAMESPACE)" create secret generic "$(RELEASE)-test-client" \
		--from-file=tls.crt="$(DEPLOY_DIR)/pki/nobody.crt" --from-file=tls.key="$(DEPLOY_DIR)/pki/nobody.key" \
		--dry-run=client -o yaml | \
		"$(KUBECTL)" --kubeconfig "$(1)" apply -f -
	"$(HELM)" --kubeconfig "$(1)" upgrade --install "$(RELEASE)" "$(CHART)" -n "$(DEPLOY_NAMESPACE)" \
		--wait --timeout 5m --set tls.secretName="$(RELEASE)-tls" \
		--set tls.clientCA.secretName="$(RELEASE)-client-ca" \
		--set tests.secretName="$(RELEASE)-test-client" \
		--set-json 'authorization.readers=["spiffe://replicant.dev/client/reader"]' \
		--set-json 'authorization.writers=["spiffe://replicant.dev/client/writer"]' \
		--set-json "networkPolicy.egress.apiServer.cidrs=$$($(PY) -m charts.helmtool "$(1)")" \
		$(2) $(HELM_ARGS)
	"$(KUBECTL)" --kubeconfig "$(1)" -n "$(DEPLOY_NAMESPACE)" rollout status "deployment/$(RELEASE)" --timeout 5m
endef

.PHONY: deploy
deploy: require-bazel tools venv kind-up ## Build replicant:dev with Bazel, load it into kind, install/upgrade the chart (needs Docker).
	mkdir -p "$(DEPLOY_DIR)"
	"$(KIND)" get kubeconfig --name "$(KIND_CLUSTER)" > "$(KIND_KUBECONFIG)"
	"$(BAZEL_BIN)" run $(BAZEL_FLAGS) //server:image_load
	"$(KIND)" load docker-image "$(DEV_IMAGE)" --name "$(KIND_CLUSTER)"
	$(call helm-install,$(KIND_KUBECONFIG),--set image.repository=replicant \
		--set image.tag=dev --set image.pullPolicy=Never)
	"$(HELM)" --kubeconfig "$(KIND_KUBECONFIG)" test "$(RELEASE)" -n "$(DEPLOY_NAMESPACE)" --logs

.PHONY: upgrade-test
upgrade-test: venv proto tools ## Install replicant:dev, then upgrade it while polling (local control plane, or the KUBECONFIG cluster).
	PYTHONPATH=$(GEN):. $(PY) -m pytest e2e/test_chart_upgrade.py $(PYTEST_ARGS)

##@ Build and release

# Bazel (or Bazelisk, which runs the version in .bazelversion): test-bazel, image, release and
# deploy need it and fail without it; everything else runs from the venv. BAZEL_FLAGS reaches
# every Bazel call (for `make release` it replaces the default --config=release; release.yml
# sets --config=release --config=locked).
BAZEL ?= bazel
BAZEL_BIN = $(shell command -v "$(BAZEL)" 2>/dev/null || command -v bazelisk 2>/dev/null)
BAZEL_FLAGS ?=
NO_BAZEL = Bazel is not installed (need bazel or bazelisk on PATH; see docs/devenv.md)
# Release version: the vX.Y.Z tag on HEAD (without the v), else 0.0.0-dev.
VERSION ?= $(or $(shell git describe --tags --exact-match --match 'v*' 2>/dev/null | sed 's/^v//'),0.0.0-dev)
DIST ?= dist

.PHONY: image
image: require-bazel venv ## Build the linux/amd64+arm64 image index and the host image tarball; print their digests (needs Bazel).
	$(PY) -m tools.release image --bazel "$(BAZEL_BIN)" --bazel-flags="$(BAZEL_FLAGS)"

# The registry repository release.yml pushes the index to; the packaged chart's values
# name it together with the index digest.
RELEASE_REPOSITORY ?= ghcr.io/replicant-dev/replicant

.PHONY: require-bazel
require-bazel:
	@if [[ -z "$(BAZEL_BIN)" ]]; then \
		echo "make $(MAKECMDGOALS): $(NO_BAZEL). Nothing was built or written;" \
			"\`make release-dry-run\` packages the chart, SBOM and checksums without an image." >&2; \
		exit 1; \
	fi

.PHONY: release
release: require-bazel venv ## Write dist/<version>/: image index + tarball, chart pinned to its digest, SBOM, SHA256SUMS, notes (VERSION=x.y.z; fails without Bazel).
	$(INSTALL_TOOLS) helm
	$(PY) -m tools.release all --version "$(VERSION)" --out "$(DIST)/$(VERSION)" \
		--helm "$(HELM)" --bazel "$(BAZEL_BIN)" --bazel-flags="$(or $(BAZEL_FLAGS),--config=release)" \
		--image-repository "$(RELEASE_REPOSITORY)"

.PHONY: release-dry-run
release-dry-run: venv ## Chart, SBOM, SHA256SUMS and notes without the image, into dist/<version>-dry-run/ (not publishable).
	$(INSTALL_TOOLS) helm
	$(PY) -m tools.release dry-run --version "$(VERSION)" --out "$(DIST)/$(VERSION)-dry-run" \
		--helm "$(HELM)" --image-repository "$(RELEASE_REPOSITORY)"
