#!/usr/bin/env bash
# Builds the extension's keyword engine: crates/keywords-wasm (lectern-keywords
# with a plain C ABI) for wasm32-unknown-unknown, in the size-optimised
# wasm-release profile, and copies it to extension/keywords.wasm.
#
# The .wasm is a build output, not committed (.gitignore): run this before the
# extension's tests (node --test extension/test/, tests/e2e/run.sh does) and
# before packaging the extension. Adds the wasm32 target with rustup when it is
# missing. Prints the module's size.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=wasm32-unknown-unknown
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi
cargo build -p lectern-keywords-wasm --target "$TARGET" --profile wasm-release
out="${CARGO_TARGET_DIR:-target}/$TARGET/wasm-release/lectern_keywords_wasm.wasm"
install -m 0644 "$out" extension/keywords.wasm
echo "extension/keywords.wasm: $(wc -c < extension/keywords.wasm) bytes"
