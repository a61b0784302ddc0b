#!/usr/bin/env bash
# Builds every external tool pinned in tools/versions.env from the Go module proxy
# and installs it into a cache folder keyed by version:
#
#   ${REPLICANT_CACHE:-~/.cache/replicant}/tools/<name>-<version>/<binary>
#
# then points the stable symlinks in <repo>/.cache/bin/ at them, which is what the
# Makefile, tools/cluster/ and the tests use. A tool already in the cache is only
# re-linked, so a second run is a no-op that takes about a second.
#
# Why build instead of downloading release binaries: only the language registries are
# reachable from developer machines and CI here, and a build with -trimpath,
# CGO_ENABLED=0 and go.sum-verified modules is reproducible anyway.
#
# Usage:
#   tools/install.sh                  build/link every tool
#   tools/install.sh kwok helm        only these tools (names as in `--list`)
#   tools/install.sh --node           build/link the real-node tools (kubelet,
#                                     kube-proxy, containerd, pause) and the Debian
#                                     packages they need (runc, CNI plugins, nft)
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

# The real node (`make cluster-up NODE=real`): not built by default, since the kwok
# cluster the rest of the suite uses needs none of it. kubelet and kube-proxy come from
# the same k8s.io/kubernetes module as the control plane; containerd from its own module.
node_tool_table() {
	local k="${KUBERNETES_VERSION}"
	cat <<EOF
kubelet ${k} kube:kubelet
kube-proxy ${k} kube:kube-proxy
containerd ${CONTAINERD_VERSION} containerd
pause $(pause_version) pause
EOF
}

# The pause program is the project's own source (tools/pause/), so its cache key is
# the hash of that source.
pause_version() {
	cat "${TOOLS_DIR}"/pause/go.mod "${TOOLS_DIR}"/pause/*.go | sha256sum | cut -c1-12
}

# Debian packages the real node runs but the project does not build: the OCI runtime,
# the CNI plugins (bridge, host-local, loopback), nft for kube-proxy's nftables mode,
# iptables for the kubelet's canary chains, and the Debian archive keyring that verifies
# the Debian 12 packages of the e2e image (tools/cluster/images.py), also on Ubuntu.
NODE_DEBIAN_PACKAGES=(runc containernetworking-plugins nftables iptables debian-archive-keyring)

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
	containerd)
		# Static, without the storage drivers that need cgo or kernel headers; the
		# version stamp is what containerd's own Makefile injects.
		local pkg=github.com/containerd/containerd/v2 cmd
		for cmd in containerd containerd-shim-runc-v2 ctr; do
			GOFLAGS="-buildvcs=false" GOBIN="${out}" "${GO}" install -trimpath \
				-tags "no_btrfs no_devmapper no_zfs no_aufs" \
				-ldflags "${LDFLAGS_COMMON} -X ${pkg}/version.Version=${version}" \
				"${pkg}/cmd/${cmd}@${version}"
		done
		;;
	pause)
		(cd "${TOOLS_DIR}/pause" && "${GO}" build -trimpath -ldflags "${LDFLAGS_COMMON}" -o "${out}/pause" .)
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
		# -T: never move into a dest that a concurrent `make tools` finished first;
		# then keep that one (same inputs, same binary) and drop ours.
		mv -T "${tmp}" "${dest}" 2>/dev/null || rm -rf "${tmp}"
		log "${name} ${version}: built in $((SECONDS - start))s"
	fi
	mkdir -p "${BIN_DIR}"
	local bin
	# Every executable of the tool (containerd brings ctr and its shim; kwok's stages are data).
	for bin in "${dest}"/*; do
		if [[ -x "${bin}" && -f "${bin}" ]]; then
			ln -sfn "${bin}" "${BIN_DIR}/${bin##*/}"
		fi
	done
}

# apt-get only for what is missing, so a prepared machine (or a second run) needs no
# root and no network.
install_node_packages() {
	local missing=() pkg
	for pkg in "${NODE_DEBIAN_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'ok installed' || missing+=("${pkg}")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "Debian packages present: ${NODE_DEBIAN_PACKAGES[*]}"
		return
	fi
	command -v apt-get >/dev/null || die "the real node needs the Debian packages ${missing[*]}"
	log "installing Debian packages: ${missing[*]}"
	local sudo=()
	[[ ${EUID} -eq 0 ]] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
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
		node_tool_table
		return
		;;
	--node)
		install_node_packages
		shift
		set -- kubelet kube-proxy containerd pause
		;;
	--regen-mods)
		regen_kube_mod
		regen_etcd_mod
		log "regenerated tools/kube and tools/etcd go.mod/go.sum; commit them"
		return
		;;
	-h | --help)
		sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
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
	done < <(
		tool_table
		[[ $# -eq 0 ]] || node_tool_table
	)
	[[ ${found} -gt 0 ]] || die "no such tool: $*; see tools/install.sh --list"
	log "${found} tool(s) ready in ${BIN_DIR} ($((SECONDS - total_start))s)"
}

main "$@"
