#!/usr/bin/env bash
# The safeguarding dashboard's summary query (GET /safeguarding/summary's SQL,
# crates/store/examples/dashboard_bench.rs) on 1,000,000 generated activity
# events and 20,000 violations over 90 days on 300 computers: median of 5
# runs for 7, 30, 90 and 366 days, for every computer and for one room of 30,
# and SQLite's query plans. Release build (SQLite's C is unoptimised in debug).
#   bash bench/dashboard.sh                               # the recorded settings
#   bash bench/dashboard.sh --rows 100000 --runs 3        # quicker
#   LECTERN_BENCH_DEBUG=1 bash bench/dashboard.sh         # the debug build
# Arguments replace the defaults. Pinned to CPU 0 with taskset when present.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
profile=release
flag=(--release)
if [[ -n "${LECTERN_BENCH_DEBUG:-}" ]]; then
    profile=debug
    flag=()
fi
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build "${flag[@]}" -p lectern-store --example dashboard_bench
fi

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc $(nproc), $(uname -sr)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg); build: $profile"
exec "${pin[@]}" "$target/$profile/examples/dashboard_bench" "$@"
