#!/usr/bin/env bash
# Console grid at scale: the longest main-thread stall in real Chromium while
# the classroom page renders, filters and scrolls 500 simulated devices
# (bench/console-grid.mjs). Builds the server (debug, as the e2e tests use),
# installs the e2e test's node modules if missing, and runs 3 times.
#   bash bench/console-grid.sh              # AGENTS=500 RUNS=3
#   AGENTS=1000 RUNS=5 bash bench/console-grid.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[[ -x /usr/bin/chromium || -n "${CHROMIUM:-}" ]] || { echo "Chromium not found: apt-get install -y chromium (or set CHROMIUM)" >&2; exit 1; }
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build -p lectern-server
fi
[[ -d tests/e2e/node_modules/playwright-core ]] || (cd tests/e2e && npm install --no-audit --no-fund)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
exec node bench/console-grid.mjs "$@"
