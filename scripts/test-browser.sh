#!/usr/bin/env bash
# Browser leg: a type check of the console's JavaScript (tsc over its JSDoc,
# crates/server/tsconfig.json), the extension's unit tests (node) and the
# end-to-end tests in
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

# The console's JavaScript against its JSDoc types (typescript is pinned in
# tests/e2e/package.json; installed with playwright-core when missing).
if ! node tests/e2e/deps-ok.cjs; then
    (cd tests/e2e && npm install --no-audit --no-fund)
fi
echo "== console type check (tsc --noEmit --checkJs)"
tests/e2e/node_modules/.bin/tsc -p crates/server/tsconfig.json

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
