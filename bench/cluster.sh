#!/usr/bin/env bash
# Cluster benchmark: N gateway nodes on one PostgreSQL and one nats-server
# (bench/cluster.py), then the single-server benchmark (bench/agents.py) with
# the same agents, for the figures side by side. Arguments go to cluster.py:
#   bash bench/cluster.sh --gateways 2 --agents 1000 --runs 5
#   bash bench/cluster.sh --gateways 4 --agents 20000 --json-out bench/results/cluster-20000.json
# LECTERN_BENCH_SINGLE=0 skips the single-server run.
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

python3 bench/cluster.py "$@"
if [[ "${LECTERN_BENCH_SINGLE:-1}" != 0 ]]; then
    agents=1000 runs=5
    for ((i = 1; i <= $#; i++)); do
        case "${!i}" in
            --agents) j=$((i + 1)); agents=${!j} ;;
            --runs) j=$((i + 1)); runs=${!j} ;;
        esac
    done
    echo "== the same on one server (bench/agents.py)" >&2
    python3 bench/agents.py --agents "$agents" --runs "$runs" | tail -n 30
fi
