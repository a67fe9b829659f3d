#!/usr/bin/env bash
# Thumbnail capture benchmark (X11 backend): starts its own Xvfb at 1920x1080
# on a free display, covers it with random-ish rectangles, and times grab,
# scale to 320 px and JPEG encoding (crates/x11/examples/capture_bench.rs,
# release build). Prints one block per run.
#   bash bench/capture.sh                  # 3 runs of 200 iterations, MIT-SHM
#   RUNS=5 bash bench/capture.sh --core    # core GetImage instead of MIT-SHM
# Extra arguments go to capture_bench (--iterations N, --width PX, --core).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v Xvfb >/dev/null || { echo "Xvfb not found: apt-get install -y xvfb" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build --release -p lectern-x11 --example capture_bench
fi

tmp=$(mktemp -d)
xvfb_pid=
cleanup() {
    [[ -n "$xvfb_pid" ]] && kill "$xvfb_pid" 2>/dev/null && wait "$xvfb_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# -displayfd: Xvfb picks a free display and writes its number once it is ready.
Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$tmp/display" 2>"$tmp/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 100); do
    [[ -s "$tmp/display" ]] && break
    sleep 0.1
done
[[ -s "$tmp/display" ]] || { echo "Xvfb did not start:" >&2; cat "$tmp/xvfb.log" >&2; exit 1; }
display=":$(tr -d '[:space:]' <"$tmp/display")"

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
for run in $(seq "${RUNS:-3}"); do
    echo "== run $run =="
    "$target/release/examples/capture_bench" --display "$display" --iterations 200 "$@"
done
