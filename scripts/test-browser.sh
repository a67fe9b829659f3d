#!/usr/bin/env bash
# Browser leg: the extension's unit tests (node) and the end-to-end tests in
# headless Chromium against the debug server and agent (tests/e2e/run.sh,
# which installs playwright-core and Chromium when missing).
# Budget: 4 min on 2 cores, binaries built (measured: 1:29 with the
# Chromium install).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh

build_binaries
LECTERN_SERVER_BIN="$PWD/target/debug/lectern-server" exec bash tests/e2e/run.sh </dev/null
