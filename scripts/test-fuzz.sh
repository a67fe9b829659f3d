#!/usr/bin/env bash
# Fuzz leg: replays each target's seed corpus and saved regressions, then
# fuzzes it for LECTERN_FUZZ_SECS seconds (default 20). Six targets (agent and
# server control frames, media frames, console watch and upload messages, the
# native-messaging host): 3 min of fuzzing plus a few seconds of replay.
# Budget: 3 min on 2 cores (the fuzzer uses one). A failing input is saved
# under crates/fuzz/regressions/<target>/ (a failing test until fixed) and the
# leg fails.
#
#   scripts/test-fuzz.sh [TARGET...]            all targets without arguments
#   LECTERN_FUZZ_SECS=600 scripts/test-fuzz.sh native_host     a longer hunt
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -q -p lectern-fuzz
exec target/debug/lectern-fuzz --secs "${LECTERN_FUZZ_SECS:-20}" "$@" </dev/null
