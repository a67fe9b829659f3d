#!/usr/bin/env bash
# Runs every Lectern test on a fresh machine: formatting, lints, unit and
# integration tests (real TLS, SQLite, WebSockets on loopback), then the browser
# test in headless Chromium. Installs Chromium and playwright-core when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "browser test (headless Chromium)"
cargo build -p lectern-server --locked
LECTERN_SERVER_BIN="$PWD/target/debug/lectern-server" bash tests/e2e/run.sh

step "all tests passed"
