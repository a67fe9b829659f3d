#!/usr/bin/env bash
# Packaging leg: builds the .deb packages from the debug binaries, inspects
# them, verifies the systemd units and, as root, installs, runs, upgrades and
# purges them (tests/packaging/run.sh).
# Budget: 2 min on 2 cores, binaries built (measured: 0:33 as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh

ensure_pkg dpkg-deb dpkg
ensure_pkg systemd-analyze systemd # unit verification only; systemd need not run
build_binaries
exec bash tests/packaging/run.sh target/debug </dev/null
