#!/usr/bin/env bash
# End-to-end test of the Windows agent service under Wine: a real Linux
# lectern-server on loopback, the Windows lectern-agent.exe installed as the
# LecternAgent service (`lectern-agent.exe service install`), configured the
# way the MSI does it (HKLM\SOFTWARE\Lectern\Agent), started with
# `net start`. The service enrolls with the token from the registry (and then
# removes it), starts a helper in the console session (Wine fallback: Wine
# has no Terminal Services sessions), and the device shows online with its
# user. Lock, unlock and a message go through the REST API and must come back
# Done, and show on the X display: the helper's desktop is lectern-windows'
# WindowsDesktop, so an X screenshot (import) shows the lock window (PNGs in
# target/windows-out/agent-*.png), Alt+Tab and the Windows key typed with
# xdotool are swallowed by its keyboard hook (the helper logs the count at
# unlock), the message window shows, and a console watching the device over
# the stream (examples/watch_thumbnail) receives thumbnails of the same. `status` is read over the control pipe; `net stop` stops the
# service cleanly, `service uninstall` removes it.
#
# Needs Wine 8, mingw-w64 and the x86_64-pc-windows-gnu target (see
# scripts/wine-env.sh); starts its own Xvfb unless DISPLAY is set. Uses a
# fresh Wine prefix under a temporary directory, so it leaves no service or
# state behind. Usage: scripts/test-windows-agent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=x86_64-pc-windows-gnu
T0=$(date +%s)

step() { echo "== $(($(date +%s) - T0))s: $*"; }

step "building lectern-server (Linux), the watching console and lectern-agent.exe ($TARGET)"
cargo build --locked -q -p lectern-server
cargo build --locked -q -p lectern-server --example watch_thumbnail
WATCH=$ROOT/target/debug/examples/watch_thumbnail
cargo build --locked -q --target "$TARGET" -p lectern-agent --bin lectern-agent
SERVER_BIN=$ROOT/target/debug/lectern-server
AGENT_EXE=$ROOT/target/$TARGET/debug/lectern-agent.exe

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lectern-win-agent.XXXXXX")
export WINEPREFIX=$WORK/wine
SERVER_PID= XVFB_PID=
cleanup() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "--- service log"
        find "$WINEPREFIX/drive_c" -name service.log -exec tail -40 {} \; 2>/dev/null || true
        echo "--- helper log"
        find "$WINEPREFIX/drive_c/users" -name lectern-helper.log -exec tail -20 {} \; 2>/dev/null || true
        for f in "$WORK"/*.log; do
            echo "--- $f"
            tail -5 "$f"
        done
    fi
    [[ -n ${WINEPREFIX:-} ]] && wineserver -k >/dev/null 2>&1 </dev/null || true
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
    [[ -n $XVFB_PID ]] && kill "$XVFB_PID" 2>/dev/null || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

if [[ -z ${DISPLAY:-} ]]; then
    n=${LECTERN_XVFB_DISPLAY:-95}
    while [[ -e /tmp/.X$n-lock ]]; do n=$((n + 1)); done
    export DISPLAY=:$n
    Xvfb "$DISPLAY" -screen 0 1024x768x24 >"$WORK/xvfb.log" 2>&1 &
    XVFB_PID=$!
fi

# shellcheck source=scripts/wine-env.sh
source scripts/wine-env.sh
step "making a fresh Wine prefix"
wine_env

# wine_out NAME ARGS...: runs wine with its output in $WORK/NAME.log (never a pipe).
wine_out() {
    local name=$1
    shift
    wine "$@" >"$WORK/$name.log" 2>&1 </dev/null
}

step "starting a real server on loopback"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PASSWORD=wine-e2e-password
"$SERVER_BIN" init --data-dir "$WORK/data" --school "Wine School" --password "$PASSWORD" \
    --listen "127.0.0.1:$PORT" >"$WORK/init.out" 2>&1
FINGERPRINT=$("$SERVER_BIN" fingerprint --data-dir "$WORK/data" | awk '{print $NF}')
TOKEN=$("$SERVER_BIN" token create --data-dir "$WORK/data" --uses 1 --hours 1 | awk '{print $NF}')
"$SERVER_BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
API=https://127.0.0.1:$PORT
for _ in $(seq 100); do
    curl -ksf "$API/healthz" >/dev/null && break
    sleep 0.2
done
BEARER=$(curl -ksf "$API/api/v1/session" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
api() { curl -ksf -H "authorization: Bearer $BEARER" -H 'content-type: application/json' "$@"; }

step "installing the LecternAgent service and the MSI's registry values"
INSTALL_DIR="$WINEPREFIX/drive_c/Program Files/Lectern"
mkdir -p "$INSTALL_DIR"
cp "$AGENT_EXE" "$INSTALL_DIR/lectern-agent.exe"
WIN_EXE='C:\Program Files\Lectern\lectern-agent.exe'
wine_out install "$WIN_EXE" service install
grep -q "installed the LecternAgent service" "$WORK/install.log"
KEY='HKLM\SOFTWARE\Lectern\Agent'
wine_out reg1 reg add "$KEY" /v Server /t REG_SZ /d "127.0.0.1:$PORT" /f
wine_out reg2 reg add "$KEY" /v Fingerprint /t REG_SZ /d "$FINGERPRINT" /f
wine_out reg3 reg add "$KEY" /v Token /t REG_SZ /d "$TOKEN" /f

# Under Wine 8 a service created while services.exe runs cannot be started
# right away (net start: "Could not get handle to service", then sc start:
# 1055 database locked, and the started process's RegisterServiceCtrlHandlerEx
# answers 1060). Restarting the prefix, as a machine restarts after an
# install, makes services.exe load LecternAgent from the registry; its start
# type is automatic, so it starts at this "boot".
step "restarting Wine (boot): the service starts by itself"
wineserver -k >/dev/null 2>&1 </dev/null || true
wineserver -w >/dev/null 2>&1 </dev/null || true
wine_env
wine_out boot wineboot

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
    local what=$1 secs=$2
    shift 2
    local end=$(($(date +%s) + secs))
    until "$@"; do
        if [[ $(date +%s) -ge $end ]]; then
            echo "timed out waiting for $what" >&2
            return 1
        fi
        sleep 0.5
    done
}

device_online_with_user() {
    api "$API/api/v1/devices" >"$WORK/devices.json" || return 1
    python3 - "$WORK/devices.json" <<'EOF'
import json, sys
ds = json.load(open(sys.argv[1]))
ok = [d for d in ds if d.get("online") and (d.get("state") or {}).get("user")]
if not ok:
    sys.exit(1)
open(sys.argv[1] + ".id", "w").write(str(ok[0]["id"]))
print(f"device {ok[0]['id']} {ok[0].get('hostname')!r} online, user {ok[0]['state']['user']!r}")
EOF
}
# Wine's services.exe has, once in several runs, not started the automatic
# service at this boot (no process, no log): then start it as an
# administrator would, with `net start`, and say so.
if ! wait_for "the service to start by itself at boot" 45 device_online_with_user; then
    echo "note: Wine did not start LecternAgent at boot; starting it with net start" >&2
    wine_out start0 net start LecternAgent
    wait_for "the device to be online with a user" 120 device_online_with_user
fi
DEVICE=$(cat "$WORK/devices.json.id")

offline() {
    api "$API/api/v1/devices/$DEVICE" >"$WORK/device.json" || return 1
    python3 -c 'import json,sys; sys.exit(0 if not json.load(open(sys.argv[1])).get("online") else 1)' "$WORK/device.json"
}
# The service's %ProgramData% (C:\users\Public under Wine's services.exe).
SVC_LOG=$(find "$WINEPREFIX/drive_c" -name service.log -path '*Lectern*' | head -1)
stops() { [[ $(grep -c "agent service stopped" "$SVC_LOG") -ge $1 ]]; }

step "net stop / net start LecternAgent"
wine_out stop1 net stop LecternAgent
wait_for "the service to stop" 30 stops 1
wait_for "the device to go offline" 30 offline
wine_out start net start LecternAgent
wait_for "the device to be online again" 60 device_online_with_user

step "the enrollment token was removed from the registry"
if wine_out regq reg query "$KEY" /v Token; then
    echo "the Token value is still in $KEY" >&2
    exit 1
fi

step "status over the control pipe"
wine_out status "$WIN_EXE" status --json
python3 - "$WORK/status.log" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
st = json.loads(text[text.index("{"):text.rindex("}") + 1])
assert st["connection"] == "connected", st
assert len(st["sessions"]) == 1 and st["sessions"][0]["helper_pid"], st
print(f"status: {st['connection']}, session {st['sessions'][0]['session']} ({st['sessions'][0]['display']}), helper pid {st['sessions'][0]['helper_pid']}")
open(sys.argv[1] + ".pid", "w").write(str(st["sessions"][0]["helper_pid"]))
EOF

step "a helper that dies is started again"
HELPER_PID=$(cat "$WORK/status.log.pid")
wine_out kill taskkill /F /PID "$HELPER_PID"
helper_restarted() {
    wine_out status2 "$WIN_EXE" status --json || return 1
    python3 - "$WORK/status2.log" "$HELPER_PID" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
st = json.loads(text[text.index("{"):text.rindex("}") + 1])
s = st["sessions"][0]
sys.exit(0 if s["helper_pid"] and s["helper_pid"] != int(sys.argv[2]) and s["starts"] >= 2 else 1)
EOF
}
wait_for "a new helper" 30 helper_restarted

# command JSON: sends it to the device and waits for its target to be done.
command() {
    local id
    id=$(api "$API/api/v1/commands" -d "{\"devices\":[$DEVICE],\"command\":$1}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    command_done() {
        api "$API/api/v1/commands/$id" >"$WORK/cmd.json" || return 1
        python3 - "$WORK/cmd.json" <<'EOF'
import json, sys
rec = json.load(open(sys.argv[1]))
status = rec["targets"][0]["status"]
if status in ("pending", "sent", "queued"):
    sys.exit(1)
if status != "done":
    print(f"command not done: {rec}", file=sys.stderr)
    sys.exit(2)
EOF
    }
    wait_for "command $1" 30 command_done
    echo "   $1: done"
}

OUT=$ROOT/target/windows-out
mkdir -p "$OUT"
LOCK_RGB=24,28,64      # lectern_student_ui::SURFACE_COLOURS.lock
MESSAGE_RGB=250,215,80 # SURFACE_COLOURS.message
# screen_share NAME R,G,B: an X screenshot of the whole display into
# $OUT/NAME.png; prints the share of its pixels within 24 of the colour.
screen_share() {
    import -window root "$OUT/$1.png"
    convert "$OUT/$1.png" -depth 8 "rgb:$WORK/$1.rgb"
    python3 - "$WORK/$1.rgb" "$2" <<'EOF'
import sys
px = open(sys.argv[1], "rb").read()
want = [int(v) for v in sys.argv[2].split(",")]
n = len(px) // 3
near = sum(1 for i in range(0, n * 3, 3)
           if all(abs(px[i + k] - want[k]) <= 24 for k in range(3)))
print(f"{near / n:.3f}")
EOF
}
# screen_shows NAME R,G,B MIN: the screenshot's share of the colour is >= MIN.
screen_shows() {
    local share
    share=$(screen_share "$1" "$2")
    echo "   X screen $1: share of rgb($2) = $share"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$share" "$3"
}
# screen_lacks NAME R,G,B MAX: the screenshot's share of the colour is < MAX.
screen_lacks() {
    local share
    share=$(screen_share "$1" "$2")
    echo "   X screen $1: share of rgb($2) = $share"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$share" "$3"
}
# thumbnail_shows R,G,B MIN: the device's next thumbnail, as a console
# watching it over the stream receives it, has at least MIN of the colour.
thumbnail_shows() {
    local out
    out=$("$WATCH" "127.0.0.1:$PORT" "$FINGERPRINT" "$BEARER" "$DEVICE" "$1" 30) || return 1
    echo "   thumbnail: $out (rgb($1))"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1].split("share=")[1]) >= float(sys.argv[2]) else 1)' "$out" "$2"
}
helper_log() { find "$WINEPREFIX/drive_c" -name lectern-helper.log | head -1; }

step "lock through the REST API: the lock window covers the X screen"
command '{"type":"lock","text":"Yeux vers le tableau — 请看黑板 👀"}'
wait_for "the lock on the X screen" 60 screen_shows agent-lock "$LOCK_RGB" 0.9
echo "   X focus: $(xdotool getwindowfocus getwindowname 2>/dev/null || echo '?')"
step "Alt+Tab and the Windows key typed on the X display are swallowed"
xdotool key alt+Tab
xdotool key super
xdotool key alt+Tab
screen_shows agent-lock-after-keys "$LOCK_RGB" 0.9
step "a watching console's thumbnail shows the lock too"
wait_for "a thumbnail of the lock" 90 thumbnail_shows "$LOCK_RGB" 0.9
command '{"type":"unlock"}'
wait_for "the lock gone from the X screen" 30 screen_lacks agent-unlocked "$LOCK_RGB" 0.05
# The helper logs, at unlock, how many shortcuts its keyboard hook swallowed.
swallowed=$(sed -n 's/.*keyboard hook swallowed \([0-9]*\) shortcuts.*/\1/p' "$(helper_log)" | tail -1)
echo "   the hook swallowed ${swallowed:-no} shortcuts while locked"
[[ ${swallowed:-0} -ge 2 ]] || {
    echo "the keyboard hook did not swallow Alt+Tab and the Windows key" >&2
    exit 1
}

step "a message through the REST API shows on the X screen and in the thumbnail"
command '{"type":"message","text":"Rendez vos devoirs — 交作业 ✍️"}'
wait_for "the message on the X screen" 30 screen_shows agent-message "$MESSAGE_RGB" 0.05
wait_for "a thumbnail of the message" 90 thumbnail_shows "$MESSAGE_RGB" 0.05

step "web block through the REST API: Wine has no WFP, and the device says so"
# The service puts the web settings in force for every program through the
# Windows Filtering Platform (lectern-wfp); Wine has none, so with no browser
# extension connected nothing enforces the block: the command fails with the
# reason, the device lists internet_blocked as unsupported and does not claim
# the internet_block capability.
BLOCK_ID=$(api "$API/api/v1/commands" -d "{\"devices\":[$DEVICE],\"command\":{\"type\":\"block_internet\"}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
block_answered() {
    api "$API/api/v1/commands/$BLOCK_ID" >"$WORK/block.json" || return 1
    python3 - "$WORK/block.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["targets"][0]
sys.exit(1 if t["status"] in ("pending", "sent", "queued") else 0)
EOF
}
wait_for "the block_internet result" 30 block_answered
api "$API/api/v1/devices/$DEVICE" >"$WORK/device.json"
python3 - "$WORK/block.json" "$WORK/device.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["targets"][0]
d = json.load(open(sys.argv[2]))
print(f"   block_internet: {t}")
assert t["status"] != "done", t
assert "Filtering Platform" in json.dumps(t), t
st = d.get("state") or {}
print(f"   unsupported: {st.get('unsupported')}, capabilities: {d.get('capabilities')}")
assert "internet_blocked" in st.get("unsupported", []), st
assert "internet_block" not in d.get("capabilities", []), d
EOF
grep -q "Windows Filtering Platform unavailable: Wine" "$SVC_LOG"
command '{"type":"unblock_internet"}'

step "net stop LecternAgent"
wine_out stop net stop LecternAgent
wait_for "the service to stop" 30 stops 2
wait_for "the device to go offline" 30 offline

step "uninstalling"
wine_out uninstall "$WIN_EXE" service uninstall
grep -q "removed the LecternAgent service" "$WORK/uninstall.log"
if wine_out query2 reg query 'HKLM\System\CurrentControlSet\Services\LecternAgent'; then
    echo "the service is still registered" >&2
    exit 1
fi
step "test-windows-agent: passed in $(($(date +%s) - T0)) s"
