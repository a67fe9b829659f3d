#!/usr/bin/env bash
# Checks that the platform-free crates build for Windows: the protocol, the
# policy engine, the Desktop boundary and the agent (everything but its Linux
# module, which is compiled out there). Cross-checked with the mingw-w64 linker
# (ring's C parts build with x86_64-w64-mingw32-gcc); installs the Rust target
# and the Debian package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-lib.sh

TARGET=x86_64-pc-windows-gnu

ensure_windows_target() {
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
        rustup target add "$TARGET" </dev/null
}

ensure_pkg x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
ensure_windows_target
cargo check --locked --target "$TARGET" \
    -p lectern-proto -p lectern-policy -p lectern-desktop -p lectern-agent --lib
# The whole agent package too: its binary (platform-free commands only so
# far), unit tests and the platform-free service test.
cargo check --locked --target "$TARGET" -p lectern-agent --all-targets
echo "check-windows: the agent core builds for $TARGET"
