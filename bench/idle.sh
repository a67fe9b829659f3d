#!/usr/bin/env bash
# Idle cost of the desktop agent next to Veyon's student side (issue 13.2).
#
# Starts its own Xvfb (1920x1080) with openbox, a real lectern-server, and the
# real Linux agent: `lectern-agent service` (root) with a static session on
# that display, which starts the session helper as `nobody`. Once the helper
# is connected and nobody watches, it measures for IDLE_SECS (default 300):
# CPU % of one core from /proc/<pid>/stat (utime+stime over the window), RSS
# (VmRSS) and PSS (smaps_rollup) at the end, for each agent process. In the
# same window, on the same display, Veyon's student side (`veyon-server`,
# with its built-in x11vnc, and any workers it starts) is measured the same
# way when installed (apt-get install -y veyon-service).
#
#   bash bench/idle.sh                    # 5 minutes, debug build
#   IDLE_SECS=60 bash bench/idle.sh       # shorter
#   AGENT_BIN=/path/lectern-agent SERVER_BIN=/path/lectern-server bash bench/idle.sh
#   NO_VEYON=1 bash bench/idle.sh         # the agent only
# Needs root (the service starts its helper as another user), Xvfb, openbox.
# Prints one line per process and a JSON summary on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${IDLE_SECS:-300}"
settle="${SETTLE_SECS:-20}"
target="${CARGO_TARGET_DIR:-target}"
agent="${AGENT_BIN:-$target/debug/lectern-agent}"
server="${SERVER_BIN:-$target/debug/lectern-server}"
[[ $(id -u) == 0 ]] || { echo "needs root: the service starts its helper as nobody" >&2; exit 1; }
for tool in Xvfb openbox; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y xvfb openbox" >&2; exit 1; }
done
if [[ -z "${LECTERN_BENCH_NO_BUILD:-}" && -z "${AGENT_BIN:-}" ]]; then
    CARGO_INCREMENTAL=0 cargo build -p lectern-server -p lectern-agent
fi

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
    # BENCH_LOGS=DIR: keep the server's, service's and Veyon's logs there.
    [[ -n "${BENCH_LOGS:-}" ]] && cp "$tmp"/*.log "$BENCH_LOGS/" 2>/dev/null
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$tmp/display" 2>"$tmp/xvfb.log" &
pids+=($!)
for _ in $(seq 100); do
    [[ -s "$tmp/display" ]] && break
    sleep 0.1
done
[[ -s "$tmp/display" ]] || { echo "Xvfb did not start:" >&2; cat "$tmp/xvfb.log" >&2; exit 1; }
display=":$(tr -d '[:space:]' <"$tmp/display")"
DISPLAY=$display openbox >"$tmp/openbox.log" 2>&1 &
pids+=($!)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" init --data-dir "$tmp/server" --school "Idle Bench" --password "idle-bench-pw" \
    --listen "127.0.0.1:$port" >"$tmp/init.log" 2>&1
token=$("$server" token create --data-dir "$tmp/server" | tail -1 | awk '{print $NF}')
fingerprint=$("$server" fingerprint --data-dir "$tmp/server" | tail -1 | awk '{print $NF}')
"$server" serve --data-dir "$tmp/server" >"$tmp/server.log" 2>&1 &
pids+=($!)

mkdir -p "$tmp/agent"
chmod 755 "$tmp/agent"
printf '%s\n' "$token" >"$tmp/agent/enrollment-token"
cat >"$tmp/agent/agent.toml" <<EOF
token_file = "$tmp/agent/enrollment-token"
state_dir = "$tmp/agent/state"
socket = "$tmp/agent/run/agent.sock"
server = "127.0.0.1:$port"
fingerprint = "$fingerprint"
hostname = "IDLE-BENCH"
backend = "x11"
sessions = "static"
[[session]]
display = "$display"
user = "nobody"
EOF
RUST_LOG="${BENCH_RUST_LOG:-info}" LECTERN_LOG=stderr "$agent" service --config "$tmp/agent/agent.toml" \
    </dev/null >/dev/null 2>"$tmp/service.log" &
service_pid=$!
pids+=($service_pid)

# The helper is connected once the service's status shows it with a user.
helper_pid=
for _ in $(seq 600); do
    helper_pid=$(pgrep -P "$service_pid" -f session-helper | head -1 || true)
    if [[ -n "$helper_pid" ]] && grep -q connected "$tmp/service.log" \
        && "$agent" status --json --config "$tmp/agent/agent.toml" 2>/dev/null | grep -q '"nobody"'; then
        break
    fi
    sleep 0.2
done
[[ -n "$helper_pid" ]] || { echo "no session helper started:" >&2; cat "$tmp/service.log" >&2; exit 1; }

veyon_pid=
if [[ -z "${NO_VEYON:-}" ]] && command -v veyon-server >/dev/null; then
    DISPLAY=$display veyon-server >"$tmp/veyon.log" 2>&1 &
    veyon_pid=$!
    pids+=($veyon_pid)
fi

sleep "$settle"

# A process and its descendants, for Veyon (server, workers).
tree() {
    local p=$1
    echo "$p"
    for c in $(pgrep -P "$p" || true); do tree "$c"; done
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/$3" 2>/dev/null || echo 0; }

declare -A start
watched=("service:$service_pid" "helper:$helper_pid")
if [[ -n "$veyon_pid" ]]; then
    for p in $(tree "$veyon_pid"); do watched+=("veyon-$(cat /proc/$p/comm 2>/dev/null || echo gone):$p"); done
fi
t0=$(date +%s.%N)
for w in "${watched[@]}"; do start[$w]=$(ticks "${w#*:}"); done
sleep "$secs"
t1=$(date +%s.%N)
# BENCH_SMAPS=DIR: keep each agent process's smaps there, to see where memory goes.
if [[ -n "${BENCH_SMAPS:-}" ]]; then
    cp "/proc/$service_pid/smaps" "$BENCH_SMAPS/service.smaps"
    cp "/proc/$helper_pid/smaps" "$BENCH_SMAPS/helper.smaps"
fi
hz=$(getconf CLK_TCK)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "window: ${secs}s idle on $display (openbox), after ${settle}s settling; agent $agent"
json="{\"secs\":$secs,\"processes\":["
sep=
for w in "${watched[@]}"; do
    name=${w%%:*} pid=${w#*:}
    if [[ ! -d /proc/$pid ]]; then
        echo "$name (pid $pid): exited during the window"
        continue
    fi
    used=$(($(ticks "$pid") - ${start[$w]}))
    cpu=$(awk -v u="$used" -v hz="$hz" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", 100 * u / hz / (b - a)}')
    rss=$(kib "$pid" VmRSS status)
    pss=$(kib "$pid" Pss smaps_rollup)
    anon=$(kib "$pid" RssAnon status)
    threads=$(kib "$pid" Threads status)
    printf '%-22s pid %-7s cpu %7s %%  rss %6.1f MB (anon %5.1f)  pss %6.1f MB  threads %s\n' \
        "$name" "$pid" "$cpu" "$(bc -l <<<"$rss/1024")" "$(bc -l <<<"$anon/1024")" \
        "$(bc -l <<<"$pss/1024")" "$threads"
    json+="$sep{\"name\":\"$name\",\"cpu_pct\":$cpu,\"rss_kib\":$rss,\"rss_anon_kib\":$anon,\"pss_kib\":$pss,\"threads\":$threads}"
    sep=,
done
echo "$json]}"
