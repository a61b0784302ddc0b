#!/usr/bin/env bash
# Bazel --workspace_status_command for --config=release (see .bazelrc).
# Prints "KEY value" lines; STABLE_* keys invalidate stamped actions when they change.
#
# A version is stamped only for a tag push on GitHub Actions (GITHUB_REF_TYPE=tag,
# tag vX.Y.Z -> X.Y.Z); every other build gets 0.0.0-dev, so stamping never makes
# ordinary builds differ from run to run.
set -euo pipefail

version="0.0.0-dev"
if [[ "${GITHUB_REF_TYPE:-}" == "tag" && -n "${GITHUB_REF_NAME:-}" ]]; then
	version="${GITHUB_REF_NAME#v}"
fi
echo "STABLE_REPLICANT_VERSION ${version}"
echo "STABLE_GIT_COMMIT $(git rev-parse HEAD 2>/dev/null || echo unknown)"
