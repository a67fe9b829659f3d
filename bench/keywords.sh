#!/usr/bin/env bash
# Keyword scanning throughput on one core (crates/keywords/examples/keyword_bench.rs,
# release build): lectern-keywords' Scanner beside a naive `regex` alternation of
# the same terms, for the default library and a generated 10,000-term library,
# over a few MB of synthetic chat/web text. Prints the median MB/s of the runs.
#   bash bench/keywords.sh                                   # the recorded settings
#   bash bench/keywords.sh --mb 1 --runs 3 --engines lectern,regex-ascii   # quicker
# Arguments replace the defaults below. Pinned to CPU 0 with taskset when present.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build --release -p lectern-keywords --example keyword_bench
fi

args=("$@")
if [[ ${#args[@]} -eq 0 ]]; then
    # The regex alternation with Unicode \b (regex's default) runs at a few KB/s
    # with 10,000 terms, so it scans only the first 0.2 MB, three times.
    args=(--mb 4 --runs 5 --regex-mb 0.2 --regex-runs 3 --json-out bench/results/keywords.json)
fi

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc $(nproc), $(uname -sr)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exec "${pin[@]}" "$target/release/examples/keyword_bench" "${args[@]}"
