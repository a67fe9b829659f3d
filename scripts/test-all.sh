#!/usr/bin/env bash
# Runs every Lectern test on a fresh machine: formatting, lints, unit and
# integration tests (real TLS, SQLite, WebSockets on loopback), then the browser
# test in headless Chromium. Installs Chromium and playwright-core when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

# ensure_pkg BINARY PACKAGE: installs the Debian PACKAGE when BINARY is not on
# PATH (sudo when not root; refreshes the package lists and retries once).
ensure_pkg() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y "$2" || { $sudo apt-get update && $sudo apt-get install -y "$2"; }
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
ensure_pkg Xvfb xvfb # the X11 backend's tests run under their own Xvfb
ensure_pkg ip iproute2 # the discovery tests make network namespaces (as root)
cargo test --workspace --locked

step "browser tests (headless Chromium: console, extension)"
cargo build -p lectern-server -p lectern-agent --locked
LECTERN_SERVER_BIN="$PWD/target/debug/lectern-server" bash tests/e2e/run.sh

step "packaging (.deb build, install, run, purge)"
ensure_pkg dpkg-deb dpkg
ensure_pkg systemd-analyze systemd # unit verification only; systemd need not run
cargo build -p lectern-server -p lectern-agent --locked
bash tests/packaging/run.sh target/debug

step "all tests passed"
