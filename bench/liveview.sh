#!/usr/bin/env bash
# Live view benchmark (bench/liveview.mjs): a real X11 agent on a 1920x1080
# Xvfb streams to the console in headless Chromium on loopback, H.264 and
# JPEG side by side; agent CPU, bytes/s, pictures/s and glass-to-glass
# latency, medians of RUNS runs (bench/results/liveview.json).
#   bash bench/liveview.sh                  # RUNS=3 WINDOW_S=10
#   LECTERN_BENCH_NO_BUILD=1 bash bench/liveview.sh
# Needs Xvfb, Chromium and tests/e2e/node_modules (cd tests/e2e && npm install).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v Xvfb >/dev/null || { echo "Xvfb not found: apt-get install -y xvfb" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build --release -p lectern-server -p lectern-agent
    cargo build --release -p lectern-x11 --example screen_painter
fi
export LECTERN_SERVER_BIN="${LECTERN_SERVER_BIN:-$target/release/lectern-server}"
export LECTERN_AGENT_BIN="${LECTERN_AGENT_BIN:-$target/release/lectern-agent}"
export SCREEN_PAINTER="${SCREEN_PAINTER:-$target/release/examples/screen_painter}"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
node bench/liveview.mjs
