#!/usr/bin/env bash
# Lock screen benchmark (X11 backend): starts its own Xvfb at 1920x1080 on a
# free display and times how long the lock takes to show (first in the
# process, then lock/unlock cycles) and the CPU the process spends while the
# lock stays up untouched (crates/x11/examples/lock_bench.rs, release build).
#   bash bench/lock.sh                 # 20 cycles, 10 s idle
#   bash bench/lock.sh --idle-secs 30
# Extra arguments go to lock_bench (--cycles N, --idle-secs S).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v Xvfb >/dev/null || { echo "Xvfb not found: apt-get install -y xvfb" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build --release -p lectern-x11 --example lock_bench
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
"$target/release/examples/lock_bench" --display "$display" "$@"
