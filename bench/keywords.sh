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
# 2. Steady state: rg and scan_stdin on the text repeated ten times (40 MB),
#    so that start-up and rg's cache warm-up weigh a tenth as much, taken in
#    turns, for both libraries, with the ratio of the CPU times; and
#    the default library on 400 MB, where rg's lazy DFA is warm; and
#    scan_stdin with the narrow block classifier (LECTERN_KEYWORDS_SIMD),
#    as on CPUs without AVX2.
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

# rg's steady state: the 40 MB, interleaved (rg, lectern, rg, …) so that
# both see the same load.
median_of() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
steady_rows=()
for lib in default 10k; do
    rg40=() lec40=()
    for _ in $(seq "$runs"); do
        rg40+=("$(time_runs 1 rg -F -i -w -f "$work/terms-$lib.txt" "$work/text40.txt")")
        lec40+=("$(time_runs 1 sh -c "'$target/release/examples/scan_stdin' --library '$work/library-$lib.csv' <'$work/text40.txt' >/dev/null")")
    done
    rg40_cpu=$(median_of $(printf '%s\n' "${rg40[@]}" | cut -d' ' -f1))
    rg40_wall=$(median_of $(printf '%s\n' "${rg40[@]}" | cut -d' ' -f2))
    lec40_cpu=$(median_of $(printf '%s\n' "${lec40[@]}" | cut -d' ' -f1))
    lec40_wall=$(median_of $(printf '%s\n' "${lec40[@]}" | cut -d' ' -f2))
    ratio40=$(printf '%.2f' "$(echo "$rg40_cpu / $lec40_cpu" | bc -l)")
    log "  steady state, $lib, 40 MB (median of $runs, interleaved): rg $(mbps $((text_bytes * 10)) "$rg40_cpu") ($(mbps $((text_bytes * 10)) "$rg40_wall")) MB/s;" \
        "lectern $(mbps $((text_bytes * 10)) "$lec40_cpu") ($(mbps $((text_bytes * 10)) "$lec40_wall")) MB/s; rg/lectern CPU time ratio $ratio40"
    steady_rows+=("{\"library\":\"$lib\",\"bytes\":$((text_bytes * 10)),\"rg_cpu_s\":$rg40_cpu,\"rg_wall_s\":$rg40_wall,\"lectern_cpu_s\":$lec40_cpu,\"lectern_wall_s\":$lec40_wall,\"ratio_rg_over_lectern\":$ratio40}")
    if [[ "$lib" == default ]]; then
        rg40_default_cpu=$rg40_cpu
    fi
done

# And on 400 MB (default library, 3 runs in turns): by then rg's lazy DFA
# is warm, and what is compared is the two inner loops.
for _ in $(seq 10); do cat "$work/text40.txt"; done >"$work/text400.txt"
rg400=() lec400=()
for _ in 1 2 3; do
    rg400+=("$(time_runs 1 rg -F -i -w -f "$work/terms-default.txt" "$work/text400.txt")")
    lec400+=("$(time_runs 1 sh -c "'$target/release/examples/scan_stdin' --library '$work/library-default.csv' <'$work/text400.txt' >/dev/null")")
done
rm -f "$work/text400.txt"
rg400_cpu=$(median_of $(printf '%s\n' "${rg400[@]}" | cut -d' ' -f1))
lec400_cpu=$(median_of $(printf '%s\n' "${lec400[@]}" | cut -d' ' -f1))
ratio400=$(printf '%.2f' "$(echo "$rg400_cpu / $lec400_cpu" | bc -l)")
log "  steady state, default, 400 MB (median of 3, interleaved): rg $(mbps $((text_bytes * 100)) "$rg400_cpu") MB/s;" \
    "lectern $(mbps $((text_bytes * 100)) "$lec400_cpu") MB/s; rg/lectern CPU time ratio $ratio400"
steady_rows+=("{\"library\":\"default\",\"bytes\":$((text_bytes * 100)),\"rg_cpu_s\":$rg400_cpu,\"lectern_cpu_s\":$lec400_cpu,\"ratio_rg_over_lectern\":$ratio400}")

# The same on CPUs without AVX2: the narrow block classifier, asked for
# with LECTERN_KEYWORDS_SIMD=narrow (the default is AVX2 where the CPU has it).
widest=narrow
grep -qw avx2 /proc/cpuinfo && widest=avx2
log "  lectern's block classifier on this CPU: $widest"
simd_rows=()
for path in narrow; do
    [[ "$path" == "$widest" ]] && continue
    read -r p_cpu p_wall < <(time_runs 3 sh -c "LECTERN_KEYWORDS_SIMD=$path '$target/release/examples/scan_stdin' --library '$work/library-default.csv' <'$work/text40.txt' >/dev/null")
    p_ratio=$(printf '%.2f' "$(echo "$rg40_default_cpu / $p_cpu" | bc -l)")
    log "  lectern with LECTERN_KEYWORDS_SIMD=$path, same 40 MB (median of 3): $(mbps $((text_bytes * 10)) "$p_cpu") MB/s CPU ($(mbps $((text_bytes * 10)) "$p_wall") wall); rg/lectern CPU time ratio $p_ratio"
    simd_rows+=("{\"path\":\"$path\",\"cpu_s\":$p_cpu,\"wall_s\":$p_wall,\"ratio_rg_over_lectern\":$p_ratio}")
done

log ""
log "in process (keyword_bench), MB per CPU second of the scanning thread:"
"${pin[@]}" "$target/release/examples/keyword_bench" --mb 4 --runs "$runs" --regex-mb 0.2 --regex-runs 3 \
    --json-out "$work/inprocess.json" | tee -a "$out_txt"
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

{
    echo "{\"date\":\"$(date -u '+%Y-%m-%dT%H:%MZ')\",\"ripgrep\":\"$rg_version\",\"runs\":$runs,"
    echo "\"text_bytes\":$text_bytes,\"process\":[$(IFS=,; echo "${json_rows[*]}")],"
    echo "\"steady_state_40mb\":[$(IFS=,; echo "${steady_rows[*]}")],\"simd\":\"$widest\","
    echo "\"lectern_40mb_narrower\":[$(IFS=,; echo "${simd_rows[*]}")],"
    echo "\"in_process\":"
    cat "$work/inprocess.json"
    echo "}"
} >bench/results/keywords.json
echo "wrote bench/results/keywords.json and $out_txt"
