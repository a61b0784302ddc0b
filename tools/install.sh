#!/usr/bin/env bash
# Builds every tool pinned in tools/versions.env from the Go module proxy (the only kind of
# registry reachable here; -trimpath, CGO_ENABLED=0 and go.sum keep it reproducible) into
# ${REPLICANT_CACHE:-~/.cache/replicant}/tools/<name>-<version>/ and links it into
# <repo>/.cache/bin/. A cached tool is only re-linked (docs/devenv.md, "Pinned tools").
#
# Usage:
#   tools/install.sh                  build/link every tool
#   tools/install.sh kwok helm        only these tools (names as in `--list`)
#   tools/install.sh --list           print "name version recipe" per tool
#   tools/install.sh --regen-mods     rewrite tools/kube and tools/etcd go.mod/go.sum
#                                     after bumping KUBERNETES_VERSION or ETCD_VERSION
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${TOOLS_DIR}/.." && pwd)"
# shellcheck source=versions.env
source "${TOOLS_DIR}/versions.env"

CACHE_ROOT="${REPLICANT_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/replicant}/tools"
BIN_DIR="${REPLICANT_BIN:-${REPO_ROOT}/.cache/bin}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

# Reproducible, static builds; never let the go command fetch another toolchain or
# silently edit the wrapper modules' go.mod/go.sum.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
LDFLAGS_COMMON="-s -w"

# name | version | how to build: "kube:<cmd>", "etcd", or "go:<package>"
tool_table() {
	local k="${KUBERNETES_VERSION}"
	cat <<EOF
kube-apiserver ${k} kube:kube-apiserver
kube-controller-manager ${k} kube:kube-controller-manager
kube-scheduler ${k} kube:kube-scheduler
kubectl ${k} kube:kubectl
etcd ${ETCD_VERSION} etcd
kwok ${KWOK_VERSION} go:sigs.k8s.io/kwok/cmd/kwok
helm ${HELM_VERSION} go:helm.sh/helm/v3/cmd/helm
grpcurl ${GRPCURL_VERSION} go:github.com/fullstorydev/grpcurl/cmd/grpcurl
ghz ${GHZ_VERSION} go:github.com/bojand/ghz/cmd/ghz
kubeconform ${KUBECONFORM_VERSION} go:github.com/yannh/kubeconform/cmd/kubeconform
actionlint ${ACTIONLINT_VERSION} go:github.com/rhysd/actionlint/cmd/actionlint
buildifier ${BUILDTOOLS_VERSION} go:github.com/bazelbuild/buildtools/buildifier
kind ${KIND_VERSION} go:sigs.k8s.io/kind
EOF
}

log() { printf '[tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The version stamp Kubernetes' own build (hack/lib/version.sh) injects, so
# `kubectl version` and the API server's /version report the real release.
kube_ldflags() {
	local v="${KUBERNETES_VERSION}" major minor
	major="${v#v}"; major="${major%%.*}"
	minor="${v#v*.}"; minor="${minor%%.*}"
	local flags="${LDFLAGS_COMMON}" pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X ${pkg}.gitVersion=${v} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
		flags+=" -X ${pkg}.gitTreeState=clean"
	done
	printf '%s' "${flags}"
}

# Fails early (before a 20-minute build) when versions.env and the committed
# wrapper go.mod disagree.
check_wrapper() {
	local dir="$1" module="$2" version="$3"
	grep -qE "^(require)?[[:space:]]*${module//./\\.} ${version}( |\$)" "${TOOLS_DIR}/${dir}/go.mod" ||
		die "tools/${dir}/go.mod does not require ${module} ${version}; run: tools/install.sh --regen-mods"
}

build_one() {
	local name="$1" version="$2" recipe="$3" out="$4"
	case "${recipe}" in
	kube:*)
		check_wrapper kube k8s.io/kubernetes "${KUBERNETES_VERSION}"
		(cd "${TOOLS_DIR}/kube" && "${GO}" build -trimpath -ldflags "$(kube_ldflags)" \
			-o "${out}/${name}" "k8s.io/kubernetes/cmd/${recipe#kube:}")
		;;
	etcd)
		check_wrapper etcd go.etcd.io/etcd/server/v3 "${ETCD_VERSION}"
		(cd "${TOOLS_DIR}/etcd" && "${GO}" build -trimpath -ldflags "${LDFLAGS_COMMON}" -o "${out}/etcd" .)
		;;
	go:*)
		# `go install pkg@version` builds outside any main module, with the tool's own
		# go.sum-verified requirements; -mod=readonly is meaningless (and rejected) there.
		GOFLAGS="-buildvcs=false" GOBIN="${out}" "${GO}" install -trimpath \
			-ldflags "${LDFLAGS_COMMON}" "${recipe#go:}@${version}"
		;;
	*) die "unknown recipe ${recipe}" ;;
	esac
	if [[ "${name}" == kwok ]]; then
		kwok_stages "${out}"
	fi
}

# The kwok binary ships no default stages (kwokctl adds them when it starts kwok),
# so take the upstream stage definitions of the same, go.sum-verified module version
# from the module cache: nodes become Ready and keep heart-beating, pods become
# Running/Ready, complete, and are deleted when asked to.
kwok_stages() {
	local out="$1" dir stage
	dir="$(cd "${out}" && GOFLAGS=-buildvcs=false GOWORK=off "${GO}" mod download -json \
		"sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
	[[ -d "${dir}/kustomize/stage" ]] || die "kwok ${KWOK_VERSION} module has no kustomize/stage"
	for stage in node/fast/node-initialize node/heartbeat/node-heartbeat \
		pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
		printf -- '---\n# from sigs.k8s.io/kwok@%s kustomize/stage/%s.yaml\n' "${KWOK_VERSION}" "${stage}"
		cat "${dir}/kustomize/stage/${stage}.yaml"
	done >"${out}/stages.yaml"
}

# Builds into a temporary folder and renames it into place, so an interrupted build
# never leaves a half-written binary that a later run would mistake for done.
install_one() {
	local name="$1" version="$2" recipe="$3"
	local dest="${CACHE_ROOT}/${name}-${version}"
	if [[ -x "${dest}/${name}" ]]; then
		log "${name} ${version}: cached"
	else
		local tmp="${dest}.tmp.$$" start=${SECONDS}
		rm -rf "${tmp}" "${dest}" # a dest without its binary is a broken leftover
		mkdir -p "${tmp}"
		log "${name} ${version}: building ..."
		if ! build_one "${name}" "${version}" "${recipe}" "${tmp}"; then
			rm -rf "${tmp}"
			die "${name} ${version}: build failed after $((SECONDS - start))s"
		fi
		# A concurrent `make tools` may have finished first: keep that one (same inputs,
		# same binary) and drop ours. (No `mv -T`: macOS's mv has none.)
		if [[ -e "${dest}" ]]; then rm -rf "${tmp}"; else mv "${tmp}" "${dest}"; fi
		log "${name} ${version}: built in $((SECONDS - start))s"
	fi
	mkdir -p "${BIN_DIR}"
	local bin
	# Every executable of the tool (kwok's stages are data, not linked).
	for bin in "${dest}"/*; do
		if [[ -x "${bin}" && -f "${bin}" ]]; then
			ln -sfn "${bin}" "${BIN_DIR}/${bin##*/}"
		fi
	done
}

# Regenerates the Kubernetes wrapper: require k8s.io/kubernetes vX.Y.Z and replace
# every staging module (upstream: => ./staging/...) with its published v0.Y.Z.
regen_kube_mod() {
	local v="${KUBERNETES_VERSION}" gomod staging
	staging="v0.${v#v1.}"
	gomod="$("${GO}" mod download -json "k8s.io/kubernetes@${v}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
	[[ -f "${gomod}" ]] || die "could not download k8s.io/kubernetes@${v}"
	local godirective
	godirective="$(sed -n 's/^go //p' "${gomod}")"
	{
		echo "// Wrapper module: builds the Kubernetes control-plane binaries from the published"
		echo "// k8s.io/kubernetes module. Upstream's go.mod replaces every k8s.io/* staging"
		echo "// module with ./staging, which only exists inside its own repository, so each one"
		echo "// is pinned here to its published tag instead. Generated by"
		echo "// \`tools/install.sh --regen-mods\` from tools/versions.env; do not edit by hand."
		echo "module replicant.local/tools/kube"
		echo
		echo "go ${godirective}"
		echo
		echo "require k8s.io/kubernetes ${v}"
		echo
		echo "replace ("
		awk -v s="${staging}" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " " s}' "${gomod}"
		echo ")"
		echo
		echo "tool ("
		local cmd
		for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
			echo "	k8s.io/kubernetes/cmd/${cmd}"
		done
		echo ")"
	} >"${TOOLS_DIR}/kube/go.mod"
	rm -f "${TOOLS_DIR}/kube/go.sum"
	(cd "${TOOLS_DIR}/kube" && GOFLAGS=-buildvcs=false "${GO}" mod tidy)
}

regen_etcd_mod() {
	(cd "${TOOLS_DIR}/etcd" &&
		GOFLAGS=-buildvcs=false "${GO}" get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" &&
		GOFLAGS=-buildvcs=false "${GO}" mod tidy)
}

main() {
	case "${1:-}" in
	--list)
		tool_table
		return
		;;
	--regen-mods)
		regen_kube_mod
		regen_etcd_mod
		log "regenerated tools/kube and tools/etcd go.mod/go.sum; commit them"
		return
		;;
	-h | --help)
		sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		return
		;;
	esac
	[[ -x "${GO}" ]] || die "go not found (set GO=/path/to/go); Go >= 1.26 is needed"
	local wanted=" $* " total_start=${SECONDS} name version recipe found=0
	while read -r name version recipe; do
		if [[ $# -eq 0 || "${wanted}" == *" ${name} "* ]]; then
			install_one "${name}" "${version}" "${recipe}"
			found=$((found + 1))
		fi
	done < <(tool_table)
	[[ ${found} -gt 0 ]] || die "no such tool: $*; see tools/install.sh --list"
	log "${found} tool(s) ready in ${BIN_DIR} ($((SECONDS - total_start))s)"
}

main "$@"
