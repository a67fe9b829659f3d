#!/usr/bin/env bash
# Browser leg: the extension's unit tests (node) and the end-to-end tests in
# headless Chromium against the debug server and agent (tests/e2e/run.sh,
# which installs playwright-core and Chromium when missing).
# Budget: 6 min on 2 cores, binaries built (the wasm keyword engine's
# release build is about 1 min of it).
#
# Chromium reads managed policy machine-wide from /etc/chromium/policies, and
# the extension tests write one there (as root). As root, the tests therefore
# run in a mount namespace of their own with an empty policy folder: another
# run on the same machine, or a file left behind, cannot leak into this one,
# and nothing is left behind in the real folder.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh

build_binaries
export LECTERN_SERVER_BIN="$PWD/target/debug/lectern-server"
if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null 2>&1; then
    exec bash tests/e2e/run.sh </dev/null
fi
# run.sh may install Chromium: do it out here, where the install is kept.
[[ -n ${CHROMIUM:-} ]] || ensure_pkg chromium chromium
policies=$(mktemp -d "${TMPDIR:-/tmp}/lectern-e2e-policies.XXXXXX")
trap 'rm -rf "$policies"' EXIT
mkdir -p /etc/chromium/policies
unshare --mount --propagation private sh -c \
    'mount --bind "$1" /etc/chromium/policies && exec bash tests/e2e/run.sh' sh "$policies" </dev/null
