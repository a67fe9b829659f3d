#!/usr/bin/env bash
# Classroom-scale load benchmark: builds the release binaries, raises the
# open-file limit (server and simulator each hold one socket per agent) and runs
# bench/agents.py. Arguments go to the Python script, e.g.
#   bash bench/agents.sh --agents 1000 --runs 3
#   bash bench/agents.sh --json-out bench/results/agents-10000.json
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" ]]; then
    cargo build --release -p lectern-server -p lectern-sim
fi

hard=$(ulimit -Hn)
if [[ "$hard" == "unlimited" || "$hard" -ge 1048576 ]]; then
    ulimit -n 1048576
else
    ulimit -n "$hard"
fi
echo "open-file limit: $(ulimit -n) (hard $(ulimit -Hn))" >&2

exec python3 bench/agents.py "$@"
