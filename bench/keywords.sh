#!/usr/bin/env bash
# Keyword scanning on one core: lectern-keywords beside ripgrep and a regex
# alternation, same text, same terms, same run.
#
#   bash bench/keywords.sh              # the recorded settings (median of 5)
#   RUNS=3 bash bench/keywords.sh       # quicker
#
# 1. Process against process: `rg -F -i -w -f TERMS TEXT` (Debian's ripgrep)
#    and lectern's `scan_stdin` example (reads the library CSV, builds the
#    scanner, scans the text line by line, prints one JSON object per match)
#    on the same 4 MB text and the same terms, for the default library (298
#    terms) and a generated 10,000-term library. Each is timed RUNS times;
#    the median CPU time (user + sys) and wall time are reported, with the
#    ratio rg / lectern (above 1: lectern is faster).
# 2. rg's steady state: rg on the text repeated ten times (40 MB), so its
#    start-up and cache warm-up weigh a tenth as much (default library);
#    and scan_stdin on the same 40 MB, with the ratio of the CPU times.
# 3. In process (crates/keywords/examples/keyword_bench.rs): lectern's
#    Scanner per line and on the whole text, the folding alone, and the
#    `regex` alternation `(?i)\b(?:term|…)\b` (ASCII and Unicode \b), as MB
#    per CPU second of the scanning thread.
#
# CPU time, not wall time, is the headline: the machine is shared, and wall
# time also counts the time other processes held the core. Load average is
# printed at the start and the end. Results: bench/results/keywords.json and
# bench/results/keywords.txt. Pinned to CPU 0 with taskset when present.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${RUNS:-5}"
target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build --release -p lectern-keywords --example keyword_bench --example scan_stdin
fi
command -v rg >/dev/null || { echo "ripgrep (rg) is not installed: apt-get install ripgrep" >&2; exit 1; }

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out_txt=bench/results/keywords.txt
mkdir -p bench/results

log() { echo "$*" | tee -a "$out_txt"; }
: >"$out_txt"
log "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc $(nproc), $(uname -sr)"
log "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
rg_version="$(rg --version 2>/dev/null | sed -n 1p)"
log "ripgrep: $rg_version; runs: $runs (median)"

"$target/release/examples/keyword_bench" --write-inputs "$work"
for _ in $(seq 10); do cat "$work/text.txt"; done >"$work/text40.txt"
text_bytes=$(stat -c %s "$work/text.txt")

# Seconds in bash's `times` format (0m0.052s).
secs() { local m="${1%%m*}" rest="${1#*m}"; echo "$m * 60 + ${rest%s}" | bc -l; }

# Runs a command N times; prints "median_cpu_s median_wall_s" (CPU time =
# the children's user + sys from getrusage, millisecond resolution).
time_runs() {
    local n="$1"; shift
    local cpus=() walls=()
    for _ in $(seq "$n"); do
        local t0 t1 line
        t0=$(date +%s.%N)
        line=$( { "${pin[@]}" "$@" >"$work/out" 2>/dev/null || true; times; } | tail -1 )
        t1=$(date +%s.%N)
        read -r cu cs <<<"$line"
        cpus+=("$(printf '%.3f' "$(echo "$(secs "$cu") + $(secs "$cs")" | bc -l)")")
        walls+=("$(printf '%.3f' "$(echo "$t1 - $t0" | bc -l)")")
    done
    local mc mw
    mc=$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "$(( (n + 1) / 2 ))p")
    mw=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(( (n + 1) / 2 ))p")
    echo "$mc $mw"
}

mbps() { printf '%.2f' "$(echo "$1 / 1000000 / $2" | bc -l)"; }

json_rows=()
log ""
log "process against process, $(mbps "$text_bytes" 1) MB text, MB per CPU second (wall in brackets):"
for lib in default 10k; do
    read -r rg_cpu rg_wall < <(time_runs "$runs" rg -F -i -w -f "$work/terms-$lib.txt" "$work/text.txt")
    rg_lines=$(rg -F -i -w -c -f "$work/terms-$lib.txt" "$work/text.txt" || true)
    read -r lec_cpu lec_wall < <(time_runs "$runs" sh -c "'$target/release/examples/scan_stdin' --library '$work/library-$lib.csv' <'$work/text.txt'")
    lec_matches=$("$target/release/examples/scan_stdin" --library "$work/library-$lib.csv" <"$work/text.txt" | wc -l)
    ratio=$(printf '%.2f' "$(echo "$rg_cpu / $lec_cpu" | bc -l)")
    log "  $lib: rg $(mbps "$text_bytes" "$rg_cpu") ($(mbps "$text_bytes" "$rg_wall")) MB/s, $rg_lines lines;" \
        "lectern $(mbps "$text_bytes" "$lec_cpu") ($(mbps "$text_bytes" "$lec_wall")) MB/s, $lec_matches matches;" \
        "rg/lectern CPU time ratio $ratio"
    json_rows+=("{\"library\":\"$lib\",\"rg_cpu_s\":$rg_cpu,\"rg_wall_s\":$rg_wall,\"rg_matching_lines\":$rg_lines,\"lectern_cpu_s\":$lec_cpu,\"lectern_wall_s\":$lec_wall,\"lectern_matches\":$lec_matches,\"ratio_rg_over_lectern\":$ratio}")
done

read -r rg40_cpu rg40_wall < <(time_runs 3 rg -F -i -w -f "$work/terms-default.txt" "$work/text40.txt")
log "  rg steady state (default library, 40 MB, median of 3): $(mbps $((text_bytes * 10)) "$rg40_cpu") MB/s CPU ($(mbps $((text_bytes * 10)) "$rg40_wall") wall)"
read -r lec40_cpu lec40_wall < <(time_runs 3 sh -c "'$target/release/examples/scan_stdin' --library '$work/library-default.csv' <'$work/text40.txt' >/dev/null")
ratio40=$(printf '%.2f' "$(echo "$rg40_cpu / $lec40_cpu" | bc -l)")
log "  lectern on the same 40 MB (default library, median of 3): $(mbps $((text_bytes * 10)) "$lec40_cpu") MB/s CPU ($(mbps $((text_bytes * 10)) "$lec40_wall") wall); rg/lectern CPU time ratio $ratio40"

log ""
log "in process (keyword_bench), MB per CPU second of the scanning thread:"
"${pin[@]}" "$target/release/examples/keyword_bench" --mb 4 --runs "$runs" --regex-mb 0.2 --regex-runs 3 \
    --json-out "$work/inprocess.json" | tee -a "$out_txt"
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

{
    echo "{\"date\":\"$(date -u '+%Y-%m-%dT%H:%MZ')\",\"ripgrep\":\"$rg_version\",\"runs\":$runs,"
    echo "\"text_bytes\":$text_bytes,\"process\":[$(IFS=,; echo "${json_rows[*]}")],"
    echo "\"rg_steady_state_default\":{\"bytes\":$((text_bytes * 10)),\"cpu_s\":$rg40_cpu,\"wall_s\":$rg40_wall},"
    echo "\"lectern_40mb_default\":{\"bytes\":$((text_bytes * 10)),\"cpu_s\":$lec40_cpu,\"wall_s\":$lec40_wall,\"ratio_rg_over_lectern\":$ratio40},"
    echo "\"in_process\":"
    cat "$work/inprocess.json"
    echo "}"
} >bench/results/keywords.json
echo "wrote bench/results/keywords.json and $out_txt"
