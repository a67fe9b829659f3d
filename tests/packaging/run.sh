#!/usr/bin/env bash
# shellcheck disable=SC2317 # check/trap run functions indirectly
# Packaging test: builds the two .deb packages from already-built binaries,
# inspects them, verifies the systemd units, and (as root) installs them for
# real, runs the server and an agent that enrolls by itself, upgrades in place,
# purges, and checks that nothing is left behind.
#
#   bash tests/packaging/run.sh [BIN_DIR]     (default: target/debug; also $LECTERN_BIN_DIR)
#
# BIN_DIR must hold lectern-server and lectern-agent (cargo build -p lectern-server
# -p lectern-agent). Without root the install part is skipped (a SKIP line says
# so) and the test passes on the build and inspection checks alone.
#
# The root part changes the machine: it installs and purges the packages
# lectern-server and lectern-agent, uses /etc/lectern, /var/lib/lectern-*,
# /run/lectern-agent and the system user lectern. It refuses to touch an
# installation it did not make (set LECTERN_PACKAGING_TEST_FORCE=1 to override).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="${1:-${LECTERN_BIN_DIR:-$ROOT/target/debug}}"
BIN_DIR="$(cd "$BIN_DIR" 2>/dev/null && pwd || echo "$BIN_DIR")"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

SERVER_DATA=/var/lib/lectern-server
AGENT_STATE=/var/lib/lectern-agent
AGENT_CONF=/etc/lectern/agent.toml
TOKEN_FILE=/etc/lectern/enrollment-token
TEST_MARK="# written by tests/packaging/run.sh"
DATA_MARK="$SERVER_DATA/.lectern-packaging-test"
SYSTEMD=0
[[ -d /run/systemd/system ]] && SYSTEMD=1

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; }
info() { printf '      %s\n' "$*"; }
step() { printf '\n-- %s\n' "$*"; }
# check DESCRIPTION CMD...: PASS when CMD (a command or function) succeeds.
check() {
    local what="$1"
    shift
    if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}
not() { ! "$@"; }
# fatal MESSAGE: a failure the rest cannot go on from.
fatal() {
    fail "$*"
    finish
}
finish() {
    printf '\n%d passed, %d failed\n' "$PASSED" "$FAILED"
    if [[ $FAILED -eq 0 ]]; then
        echo "packaging test: OK"
        exit 0
    fi
    echo "packaging test: FAILED"
    exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lectern-packaging-test.XXXXXX")
chmod 0755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
STARTED_PIDS=()
declare -A PIDS=() # unit name -> pid, when started without systemd
ETC_BACKUP=""

# ---------------------------------------------------------------------------
step "binaries in $BIN_DIR"
for b in lectern-server lectern-agent; do
    [[ -x "$BIN_DIR/$b" ]] || {
        echo "tests/packaging: $BIN_DIR/$b is missing; build it first:" >&2
        echo "  cargo build -p lectern-server -p lectern-agent" >&2
        fatal "binary $BIN_DIR/$b exists"
    }
done
pass "both binaries exist"

# ---------------------------------------------------------------------------
step "build the packages"
VERSION=$(awk '/^\[/ { s = $0; next } s == "[workspace.package]" && $1 == "version" { gsub(/^[^"]*"|".*$/, ""); print; exit }' "$ROOT/Cargo.toml")
VERSION="${VERSION//-/\~}"
ARCH=$(dpkg --print-architecture)
DEBS="$WORK/debs"
if bash "$ROOT/packaging/build-debs.sh" --bin-dir "$BIN_DIR" --out "$DEBS" --compress gzip; then
    pass "build-debs.sh"
else
    fatal "build-debs.sh"
fi
SERVER_DEB="$DEBS/lectern-server_${VERSION}_${ARCH}.deb"
AGENT_DEB="$DEBS/lectern-agent_${VERSION}_${ARCH}.deb"
check "lectern-server_${VERSION}_${ARCH}.deb built" test -s "$SERVER_DEB"
check "lectern-agent_${VERSION}_${ARCH}.deb built" test -s "$AGENT_DEB"
[[ -s "$SERVER_DEB" && -s "$AGENT_DEB" ]] || finish

# ---------------------------------------------------------------------------
step "inspect the packages"
for deb in "$SERVER_DEB" "$AGENT_DEB"; do
    name=$(dpkg-deb -f "$deb" Package)
    dpkg-deb -I "$deb" >"$WORK/$name.info"
    dpkg-deb -c "$deb" >"$WORK/$name.contents"
    # "PERMS OWNER SIZE DATE TIME PATH" -> "PERMS OWNER PATH"
    awk '{ print $1, $2, $6 }' "$WORK/$name.contents" >"$WORK/$name.list"
    check "$name: Version is $VERSION" test "$(dpkg-deb -f "$deb" Version)" = "$VERSION"
    check "$name: Architecture is $ARCH" test "$(dpkg-deb -f "$deb" Architecture)" = "$ARCH"
    check "$name: Maintainer is Lectern developers" test "$(dpkg-deb -f "$deb" Maintainer)" = "Lectern developers"
    check "$name: Section is admin" test "$(dpkg-deb -f "$deb" Section)" = "admin"
    check "$name: Depends names libc6" grep -Eq '(^|, )libc6( |,|$)' <<<"$(dpkg-deb -f "$deb" Depends)"
    check "$name: has a Description" test -n "$(dpkg-deb -f "$deb" Description)"
    check "$name: every file is root:root" test -z "$(awk '$2 != "root/root"' "$WORK/$name.list")"
    check "$name: ships /usr/bin/$name 0755" grep -qx -- "-rwxr-xr-x root/root ./usr/bin/$name" "$WORK/$name.list"
    check "$name: ships /usr/lib/systemd/system/$name.service 0644" \
        grep -qx -- "-rw-r--r-- root/root ./usr/lib/systemd/system/$name.service" "$WORK/$name.list"
    check "$name: ships its copyright file" grep -q "./usr/share/doc/$name/copyright$" "$WORK/$name.list"
    # Only the browsers' native-messaging registrations live in /etc (the
    # agent.toml an admin places is never the package's).
    check "$name: ships nothing else under /etc" \
        test -z "$(awk '$3 ~ /^\.\/etc\// && $3 !~ /native-messaging-hosts/ && $1 !~ /^d/' "$WORK/$name.list")"
    check "$name: declares no conffiles" not dpkg-deb -I "$deb" conffiles
    if [[ $name == lectern-agent ]]; then
        for d in etc/chromium etc/opt/chrome etc/opt/edge; do
            check "$name: registers the native-messaging host for $d" \
                grep -q "./$d/native-messaging-hosts/org.lectern.agent.json$" "$WORK/$name.list"
        done
        check "$name: registers the native-messaging host for Firefox (/usr/lib/mozilla)" \
            grep -qx -- "-rw-r--r-- root/root ./usr/lib/mozilla/native-messaging-hosts/org.lectern.agent.json" "$WORK/$name.list"
        check "$name: ships the native-host wrapper 0755" \
            grep -qx -- "-rwxr-xr-x root/root ./usr/lib/lectern-agent/native-host" "$WORK/$name.list"
    fi
    mkdir -p "$WORK/ctl/$name"
    dpkg-deb -e "$deb" "$WORK/ctl/$name"
    for s in postinst prerm postrm; do
        check "$name: $s is executable" test -x "$WORK/ctl/$name/$s"
        check "$name: $s parses as POSIX sh" sh -n "$WORK/ctl/$name/$s"
        if command -v dash >/dev/null; then
            check "$name: $s parses with dash" dash -n "$WORK/ctl/$name/$s"
        fi
        check "$name: $s uses set -e" grep -qx 'set -e' "$WORK/ctl/$name/$s"
        if command -v shellcheck >/dev/null; then
            check "$name: shellcheck -s sh $s" shellcheck -s sh "$WORK/ctl/$name/$s"
        fi
    done
    (cd "$WORK" && mkdir -p "x/$name" && dpkg-deb -x "$deb" "x/$name" &&
        cd "x/$name" && md5sum --quiet -c "$WORK/ctl/$name/md5sums") >/dev/null 2>&1 &&
        pass "$name: md5sums match the contents" || fail "$name: md5sums match the contents"
    check "$name: packaged binary runs (--help)" "$WORK/x/$name/usr/bin/$name" --help
done
check "lectern-agent: ships /usr/share/lectern-agent/agent.toml.example" \
    grep -q "./usr/share/lectern-agent/agent.toml.example$" "$WORK/lectern-agent.list"
check "lectern-agent: Recommends xdg-utils, pulseaudio-utils" \
    test "$(dpkg-deb -f "$AGENT_DEB" Recommends)" = "xdg-utils, pulseaudio-utils"
if command -v lintian >/dev/null; then
    # Informational: a locally built package without changelog always draws some tags.
    info "lintian (informational):"
    lintian --no-tag-display-limit "$SERVER_DEB" "$AGENT_DEB" 2>&1 | sed 's/^/        /' || true
fi

# ---------------------------------------------------------------------------
step "systemd units"
if [[ $(id -u) -eq 0 ]] && ! command -v systemd-analyze >/dev/null; then
    apt-get install -y -q systemd >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q systemd >/dev/null 2>&1; } || true
fi
if command -v systemd-analyze >/dev/null; then
    # Verify inside a root holding the packages' files and the host's own units
    # (for the targets ours refer to): systemd need not be running.
    VROOT="$WORK/vroot"
    mkdir -p "$VROOT/usr/lib/systemd/system"
    for d in /lib/systemd/system /usr/lib/systemd/system; do
        [[ -d "$d" ]] && cp -a "$d/." "$VROOT/usr/lib/systemd/system/" 2>/dev/null || true
    done
    dpkg-deb -x "$SERVER_DEB" "$VROOT"
    dpkg-deb -x "$AGENT_DEB" "$VROOT"
    for u in lectern-server lectern-agent; do
        # verify exits 0 even on unknown keys or bad values: any line is a failure.
        if out=$(cd "$WORK" && systemd-analyze verify --root="$VROOT" "$u.service" 2>&1) && [[ -z "$out" ]]; then
            pass "systemd-analyze verify $u.service"
        else
            fail "systemd-analyze verify $u.service"
            printf '%s\n' "$out" | sed 's/^/        /'
        fi
        if exposure=$(systemd-analyze security --offline=yes --root="$VROOT" "$u.service" 2>/dev/null |
            sed -n 's/.*Overall exposure level for [^:]*: //p') && [[ -n "$exposure" ]]; then
            info "systemd-analyze security $u.service: $exposure"
        fi
    done
    u="$VROOT/usr/lib/systemd/system"
    check "server unit: ExecStart as specified" grep -qx 'ExecStart=/usr/bin/lectern-server serve --data-dir /var/lib/lectern-server' "$u/lectern-server.service"
    check "server unit: User=lectern" grep -qx 'User=lectern' "$u/lectern-server.service"
    check "server unit: no capabilities" grep -qx 'CapabilityBoundingSet=' "$u/lectern-server.service"
    check "server unit: ProtectSystem=strict" grep -qx 'ProtectSystem=strict' "$u/lectern-server.service"
    check "agent unit: ExecStart as specified" grep -qx 'ExecStart=/usr/bin/lectern-agent service --config /etc/lectern/agent.toml' "$u/lectern-agent.service"
    check "agent unit: runs as root (no User=)" not grep -q '^User=' "$u/lectern-agent.service"
    check "agent unit: KillMode=control-group" grep -qx 'KillMode=control-group' "$u/lectern-agent.service"
    check "agent unit: PrivateTmp=no (X11 sockets in /tmp)" grep -qx 'PrivateTmp=no' "$u/lectern-agent.service"
else
    skip "systemd-analyze is not installed: the units were not verified"
fi

# ---------------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
    skip "not root: installing, running and purging the packages needs root (run this test as root for the full check)"
    finish
fi

# ---------------------------------------------------------------------------
# Root part. Helpers first.

# pids_of_exe PATH: processes whose executable is PATH (also after dpkg removed it).
pids_of_exe() {
    local d exe
    for d in /proc/[0-9]*; do
        exe=$(readlink "$d/exe" 2>/dev/null) || continue
        if [[ "$exe" == "$1" || "$exe" == "$1 (deleted)" ]]; then echo "${d#/proc/}"; fi
    done
}
# alive PID: PID runs (a zombie, killed but not yet reaped, does not count).
alive() { [[ -n "$1" && -n "$(readlink "/proc/$1/exe" 2>/dev/null)" ]]; }
ours_running() { [[ -n "$(pids_of_exe /usr/bin/lectern-server)$(pids_of_exe /usr/bin/lectern-agent)" ]]; }
# pids_of_uid UID: processes whose real user id is UID.
pids_of_uid() {
    local d
    for d in /proc/[0-9]*; do
        awk -v u="$1" '$1 == "Uid:" && $2 == u { found = 1 } END { exit !found }' "$d/status" 2>/dev/null &&
            echo "${d#/proc/}"
    done
    return 0
}
kill_ours() {
    local pids
    pids="$(pids_of_exe /usr/bin/lectern-server) $(pids_of_exe /usr/bin/lectern-agent)"
    # shellcheck disable=SC2086
    [[ -n "${pids// /}" ]] && kill -KILL $pids 2>/dev/null || true
}
installed() { # PACKAGE: known to dpkg at all (installed or config-files)
    local st
    st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$st" != *not-installed* ]]
}
ensure_cmd() { # BINARY PACKAGE
    command -v "$1" >/dev/null && return 0
    apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$2" >/dev/null; }
}
# install_debs DEB...: dpkg -i; when dependencies are missing, apt-get fetches them.
install_debs() {
    if dpkg -i "$@" >"$WORK/dpkg.log" 2>&1; then
        cat "$WORK/dpkg.log" >>"$WORK/dpkg-all.log"
        return 0
    fi
    cat "$WORK/dpkg.log" >>"$WORK/dpkg-all.log"
    if grep -q 'dependency problems' "$WORK/dpkg.log"; then
        apt-get install -f -y -q >>"$WORK/dpkg-all.log" 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && apt-get install -f -y -q >>"$WORK/dpkg-all.log" 2>&1; }
        return
    fi
    sed 's/^/        /' "$WORK/dpkg.log"
    return 1
}
purge_all() {
    local p pkgs=()
    for p in lectern-agent lectern-server; do installed "$p" && pkgs+=("$p"); done
    [[ ${#pkgs[@]} -eq 0 ]] || dpkg --purge --force-remove-reinstreq "${pkgs[@]}" >>"$WORK/dpkg-all.log" 2>&1
}
# unit_value FILE KEY: the last KEY= value in a unit file.
unit_value() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# start_unit NAME: starts the installed unit: with systemctl under systemd,
# otherwise by running its ExecStart as its User= in the background (with its
# StateDirectory=, RuntimeDirectory=, WorkingDirectory= and UMask=).
start_unit() {
    local name="$1" unit="/usr/lib/systemd/system/$1.service"
    if [[ $SYSTEMD -eq 1 ]]; then
        systemctl restart "$name.service" || true
        return 0
    fi
    local exec user group sd sdmode rd rdmode wd umask_ argv
    exec=$(unit_value "$unit" ExecStart)
    user=$(unit_value "$unit" User)
    group=$(unit_value "$unit" Group)
    sd=$(unit_value "$unit" StateDirectory)
    sdmode=$(unit_value "$unit" StateDirectoryMode)
    rd=$(unit_value "$unit" RuntimeDirectory)
    rdmode=$(unit_value "$unit" RuntimeDirectoryMode)
    wd=$(unit_value "$unit" WorkingDirectory)
    umask_=$(unit_value "$unit" UMask)
    [[ -n "$sd" ]] && install -d -m "${sdmode:-0755}" -o "${user:-root}" -g "${group:-${user:-root}}" "/var/lib/$sd"
    [[ -n "$rd" ]] && install -d -m "${rdmode:-0755}" -o "${user:-root}" -g "${group:-${user:-root}}" "/run/$rd"
    read -ra argv <<<"$exec"
    if [[ -n "$user" ]]; then
        argv=(setpriv --reuid="$user" --regid="${group:-$user}" --init-groups -- "${argv[@]}")
    fi
    (
        cd "${wd:-/}"
        umask "${umask_:-0022}"
        exec "${argv[@]}"
    ) </dev/null >>"$WORK/$name.log" 2>&1 &
    STARTED_PIDS+=($!)
    PIDS[$name]=$!
}
# reap PID: collects a process this shell started, killing it first if it
# still runs (so that wait cannot block).
reap() {
    [[ -n "$1" ]] || return 0
    alive "$1" && kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null || true
}
unit_alive() { # NAME
    if [[ $SYSTEMD -eq 1 ]]; then systemctl is-active --quiet "$1.service"; return; fi
    alive "${PIDS[$1]:-}"
}
show_log() { # NAME
    info "last lines of $1's output:"
    if [[ $SYSTEMD -eq 1 ]]; then
        journalctl -u "$1.service" -n 20 --no-pager 2>&1 | sed 's/^/        /'
    else
        tail -n 20 "$WORK/$1.log" 2>/dev/null | sed 's/^/        /'
    fi
}

# Our own leftovers in /etc/lectern (from an interrupted run) go; anything
# else there is set aside and put back at the end.
clean_etc() {
    if [[ -f "$AGENT_CONF" ]] && grep -qxF "$TEST_MARK" "$AGENT_CONF"; then
        rm -f "$AGENT_CONF" "$TOKEN_FILE"
    fi
    rmdir /etc/lectern 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    for p in "${STARTED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${STARTED_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    purge_all
    kill_ours
    clean_etc
    if [[ -n "$ETC_BACKUP" && -d "$ETC_BACKUP" ]]; then
        rm -rf /etc/lectern
        mv "$ETC_BACKUP" /etc/lectern
    fi
    if [[ $FAILED -gt 0 && -f "$WORK/dpkg-all.log" ]]; then
        echo "dpkg output (for the failures above):"
        sed 's/^/    /' "$WORK/dpkg-all.log" | tail -n 60
    fi
    rm -rf "$WORK"
    exit "$rc"
}

# ---------------------------------------------------------------------------
step "prepare (as root; systemd running: $([[ $SYSTEMD -eq 1 ]] && echo yes || echo no))"
# A server whose data directory lacks our marker, or an agent whose agent.toml
# lacks it, belongs to someone: leave it alone unless told otherwise.
if [[ "${LECTERN_PACKAGING_TEST_FORCE:-0}" != 1 ]]; then
    if installed lectern-server && [[ -e "$SERVER_DATA" && ! -e "$DATA_MARK" ]]; then
        echo "tests/packaging: lectern-server is installed and not by this test; refusing to purge it" >&2
        echo "  (LECTERN_PACKAGING_TEST_FORCE=1 purges it and its data anyway)" >&2
        fatal "machine free of a real lectern-server installation"
    fi
    if installed lectern-agent && [[ -e "$AGENT_CONF" ]] && ! grep -qxF "$TEST_MARK" "$AGENT_CONF"; then
        echo "tests/packaging: lectern-agent is installed and not by this test; refusing to purge it" >&2
        echo "  (LECTERN_PACKAGING_TEST_FORCE=1 purges it anyway)" >&2
        fatal "machine free of a real lectern-agent installation"
    fi
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
purge_all || true
kill_ours
clean_etc
if [[ -e /etc/lectern ]]; then
    ETC_BACKUP="$WORK/etc-lectern.backup"
    mv /etc/lectern "$ETC_BACKUP"
    info "set aside the existing /etc/lectern until the end"
fi
no_leftovers() { ! getent passwd lectern && [[ ! -e $SERVER_DATA && ! -e $AGENT_STATE ]] && ! ours_running; }
check "no leftovers from an earlier run" no_leftovers
ensure_cmd curl curl || true
ensure_cmd jq jq || true
check "curl available" command -v curl
check "jq available" command -v jq

# ---------------------------------------------------------------------------
step "install lectern-server"
if install_debs "$SERVER_DEB"; then pass "dpkg -i lectern-server"; else fatal "dpkg -i lectern-server"; fi
: >"$DATA_MARK"
check "lectern-server installed" test "$(dpkg-query -W -f='${Status}' lectern-server)" = "install ok installed"
check "/usr/bin/lectern-server in place" test -x /usr/bin/lectern-server
check "unit file in place" test -f /usr/lib/systemd/system/lectern-server.service
check "unit enabled (multi-user.target.wants link)" test -L /etc/systemd/system/multi-user.target.wants/lectern-server.service
check "system user lectern exists" getent passwd lectern
check "group lectern exists" getent group lectern
system_user() {
    local uid shell
    IFS=: read -r _ _ uid _ _ _ shell < <(getent passwd lectern) || return 1
    [[ $uid -lt 1000 && ( $shell == */nologin || $shell == */false ) ]]
}
check "user lectern is a system user without a login shell" system_user
check "$SERVER_DATA owned by lectern, mode 0700" test "$(stat -c '%U:%G %a' "$SERVER_DATA")" = "lectern:lectern 700"
check "$SERVER_DATA/server.toml exists" test -f "$SERVER_DATA/server.toml"
check "$SERVER_DATA/lectern.db exists" test -f "$SERVER_DATA/lectern.db"
check "database owned by lectern" test "$(stat -c %U "$SERVER_DATA/lectern.db")" = lectern
check "initial-admin.txt mode 0600" test "$(stat -c %a "$SERVER_DATA/initial-admin.txt")" = 600
check "no temporary file left beside it" test -z "$(find "$SERVER_DATA" -name '.initial-admin.*')"
PASSWORD=$(awk '/^Admin password:/ { print $3 }' "$SERVER_DATA/initial-admin.txt" 2>/dev/null || true)
FP_FILE=$(sed -n 's/^Certificate SHA-256 fingerprint[^:]*: *//p' "$SERVER_DATA/initial-admin.txt" 2>/dev/null || true)
check "initial-admin.txt holds the admin password" test -n "$PASSWORD"
check "initial-admin.txt holds the certificate fingerprint" test -n "$FP_FILE"
check "the password was not printed by dpkg" not grep -qF -- "${PASSWORD:-no password}" "$WORK/dpkg-all.log"
as_lectern() { setpriv --reuid=lectern --regid=lectern --init-groups -- "$@"; }
FP=$(cd / && as_lectern /usr/bin/lectern-server fingerprint --data-dir "$SERVER_DATA" 2>/dev/null || true)
check "lectern-server fingerprint matches initial-admin.txt" test -n "$FP" -a "$FP" = "$FP_FILE"

# ---------------------------------------------------------------------------
step "run the server"
port_free() { ! ss -Hltn "sport = :$1" | grep -q . && ! ss -Hlun "sport = :$1" | grep -q .; }
PORT=30016
if ! port_free $PORT; then
    for _ in $(seq 50); do
        PORT=$((31000 + RANDOM % 20000))
        port_free $PORT && break
    done
    info "port 30016 is busy; using $PORT"
fi
sed -i "s/^listen = .*/listen = \"127.0.0.1:$PORT\"/" "$SERVER_DATA/server.toml"
check "server.toml listens on 127.0.0.1:$PORT" grep -qx "listen = \"127.0.0.1:$PORT\"" "$SERVER_DATA/server.toml"
URL="https://127.0.0.1:$PORT"
start_unit lectern-server
# wait_http URL: up to 15 s for an answer.
wait_http() {
    for _ in $(seq 150); do
        curl -ksf --max-time 2 -o /dev/null "$1" && return 0
        unit_alive lectern-server || return 1
        sleep 0.1
    done
    return 1
}
if wait_http "$URL/api/v1/openapi.json"; then
    pass "server answers HTTPS on port $PORT"
else
    show_log lectern-server
    fatal "server answers HTTPS on port $PORT"
fi
openapi_ok() { curl -ksf "$URL/api/v1/openapi.json" | jq -e '.openapi and .paths'; }
check "GET /api/v1/openapi.json is an OpenAPI document" openapi_ok
if [[ $SYSTEMD -eq 0 ]]; then
    check "server runs as user lectern" test "$(stat -c %U "/proc/${PIDS[lectern-server]}")" = lectern
fi
if command -v openssl >/dev/null; then
    served=$(openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null |
        openssl x509 -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
    check "the served certificate has the pinned fingerprint" test "$served" = "$FP"
fi
LOGIN=$(curl -ksf "$URL/api/v1/session" -H 'content-type: application/json' \
    -d "$(jq -nc --arg p "$PASSWORD" '{username: "admin", password: $p}')" || true)
API_TOKEN=$(jq -r '.token // empty' <<<"$LOGIN" 2>/dev/null || true)
check "admin logs in with the password from initial-admin.txt" test -n "$API_TOKEN"
devices() { curl -ksf -H "authorization: Bearer $API_TOKEN" "$URL/api/v1/devices"; }
no_devices() { devices | jq -e 'length == 0'; }
check "GET /api/v1/devices lists no device yet" no_devices

# ---------------------------------------------------------------------------
step "install lectern-agent without configuration"
if install_debs "$AGENT_DEB"; then pass "dpkg -i lectern-agent (no agent.toml)"; else fatal "dpkg -i lectern-agent (no agent.toml)"; fi
check "/usr/bin/lectern-agent in place" test -x /usr/bin/lectern-agent
check "unit enabled (multi-user.target.wants link)" test -L /etc/systemd/system/multi-user.target.wants/lectern-agent.service
check "$AGENT_STATE is root's, mode 0700" test "$(stat -c '%U:%G %a' "$AGENT_STATE")" = "root:root 700"
check "postinst copied the example to $AGENT_CONF" cmp -s /usr/share/lectern-agent/agent.toml.example "$AGENT_CONF"
check "postinst says that the enrollment token is missing" grep -q "no enrollment token in $TOKEN_FILE" "$WORK/dpkg.log"
FIREFOX_HOST=/usr/lib/mozilla/native-messaging-hosts/org.lectern.agent.json
GECKO_ID="$(tr -d '[:space:]' <"$ROOT/extension/GECKO_ID")"
firefox_host_ok() {
    jq -e --arg id "$GECKO_ID" '.name == "org.lectern.agent" and .type == "stdio"
        and .path == "/usr/lib/lectern-agent/native-host" and .allowed_extensions == [$id]' "$FIREFOX_HOST"
}
check "the Firefox native host names the gecko id $GECKO_ID and the host binary" firefox_host_ok
if purge_all_agent=$(dpkg --purge lectern-agent 2>&1); then pass "dpkg --purge lectern-agent"; else fail "dpkg --purge lectern-agent"; info "$purge_all_agent"; fi
check "purge removed the agent.toml postinst wrote" test ! -e "$AGENT_CONF"
check "purge removed the empty /etc/lectern" test ! -e /etc/lectern
check "purge removed $AGENT_STATE" test ! -e "$AGENT_STATE"
check "purge removed the Firefox native host" test ! -e "$FIREFOX_HOST"

# ---------------------------------------------------------------------------
step "pre-seed agent.toml and a token, then install lectern-agent"
ENROLL_TOKEN=$(cd / && as_lectern /usr/bin/lectern-server token create --data-dir "$SERVER_DATA" \
    --uses 1 --hours 1 --label packaging-test 2>/dev/null | tail -n 1 || true)
check "lectern-server token create (as lectern) prints a token" test -n "$ENROLL_TOKEN"
install -d -m 0755 /etc/lectern
cat >"$AGENT_CONF" <<EOF
$TEST_MARK
server = "127.0.0.1:$PORT"
fingerprint = "$FP"
trust_on_first_use = false
token_file = "$TOKEN_FILE"
state_dir = "$AGENT_STATE"
backend = "headless"
sessions = "static"
socket = "/run/lectern-agent/agent.sock"
EOF
(umask 077 && printf '%s\n' "$ENROLL_TOKEN" >"$TOKEN_FILE")
cp "$AGENT_CONF" "$WORK/agent.toml.seeded"
if install_debs "$AGENT_DEB"; then pass "dpkg -i lectern-agent (pre-seeded)"; else fatal "dpkg -i lectern-agent (pre-seeded)"; fi
check "postinst kept the pre-seeded agent.toml" cmp -s "$WORK/agent.toml.seeded" "$AGENT_CONF"
check "postinst kept the enrollment token" test -s "$TOKEN_FILE"

step "run the agent: it enrolls by itself"
if [[ $SYSTEMD -eq 0 ]]; then
    start_unit lectern-agent
else
    systemctl restart lectern-agent.service || true
fi
CRED="$AGENT_STATE/credential.json"
for _ in $(seq 300); do
    [[ -s "$CRED" ]] && break
    unit_alive lectern-agent || break
    sleep 0.1
done
if [[ -s "$CRED" ]]; then
    pass "agent enrolled: $CRED written"
else
    show_log lectern-agent
    fail "agent enrolled: $CRED written (lectern-agent service --config $AGENT_CONF)"
fi
check "credential.json mode 0600" test "$(stat -c %a "$CRED" 2>/dev/null)" = 600
HOST=$(uname -n)
wait_online() { # up to 15 s for the device to be listed online under this hostname
    for _ in $(seq 75); do
        devices 2>/dev/null | jq -e --arg h "$HOST" 'map(select(.online and .hostname == $h)) | length == 1' >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
if [[ -s "$CRED" ]] && wait_online; then
    pass "the API lists the device online as $HOST"
else
    fail "the API lists the device online as $HOST"
    info "GET /api/v1/devices: $(devices 2>&1 | head -c 400)"
    [[ -s "$CRED" ]] && show_log lectern-agent
fi
check "agent socket /run/lectern-agent/agent.sock exists" test -S /run/lectern-agent/agent.sock
# The server lists the device as soon as it accepts the hello; the agent
# says "connected" once it has the server's answer, a moment later on a
# loaded machine: up to 15 s.
agent_status() { /usr/bin/lectern-agent status --config "$AGENT_CONF" --json 2>/dev/null || true; }
status_connected() { jq -e '.connection == "connected"' <<<"$STATUS" >/dev/null 2>&1; }
for _ in $(seq 75); do
    STATUS=$(agent_status)
    status_connected && break
    sleep 0.2
done
info "lectern-agent status --json: $(jq -c . <<<"$STATUS" 2>/dev/null | head -c 300)"
check "lectern-agent status says connected" status_connected

# ---------------------------------------------------------------------------
step "reinstall both packages over the running services (upgrade path)"
sum() { sha256sum "$@" 2>/dev/null | cut -d' ' -f1 | tr '\n' ' '; return 0; }
BEFORE=$(sum "$SERVER_DATA/server.toml" "$SERVER_DATA/initial-admin.txt" "$SERVER_DATA/cert.pem" "$AGENT_CONF" "$CRED")
if install_debs "$SERVER_DEB" "$AGENT_DEB"; then pass "dpkg -i both again"; else fail "dpkg -i both again"; fi
if [[ $SYSTEMD -eq 0 ]]; then
    for n in lectern-server lectern-agent; do
        check "prerm (upgrade) stopped the running $n" not alive "${PIDS[$n]:-}"
        reap "${PIDS[$n]:-}"
    done
    check "no lectern process left after prerm" not ours_running
fi
check "upgrade kept server.toml, initial-admin.txt, cert, agent.toml and credential" \
    test "$(sum "$SERVER_DATA/server.toml" "$SERVER_DATA/initial-admin.txt" "$SERVER_DATA/cert.pem" "$AGENT_CONF" "$CRED")" = "$BEFORE"
start_unit lectern-server
check "server answers again after the upgrade" wait_http "$URL/api/v1/openapi.json"
if [[ -s "$CRED" ]]; then
    [[ $SYSTEMD -eq 0 ]] && start_unit lectern-agent
    # The token allowed one use: coming back online proves the credential is reused.
    if wait_online; then pass "agent reconnects with its stored credential"; else
        fail "agent reconnects with its stored credential"
        show_log lectern-agent
    fi
fi

# ---------------------------------------------------------------------------
step "purge both packages while they run"
LECTERN_UID=$(getent passwd lectern | cut -d: -f3 || true)
if out=$(dpkg --purge lectern-agent lectern-server 2>&1); then pass "dpkg --purge lectern-agent lectern-server"; else
    fail "dpkg --purge lectern-agent lectern-server"
    printf '%s\n' "$out" | sed 's/^/        /'
fi
for p in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 30); do alive "$p" || break; sleep 0.1; done
    if alive "$p"; then fail "process $p ($(readlink "/proc/$p/exe")), started by this test, survived the purge"; fi
    reap "$p"
done
STARTED_PIDS=()
check "no lectern-server process left" test -z "$(pids_of_exe /usr/bin/lectern-server)"
check "no lectern-agent process left" test -z "$(pids_of_exe /usr/bin/lectern-agent)"
check "no process of the former lectern user left" test -n "$LECTERN_UID" -a -z "$(pids_of_uid "${LECTERN_UID:-x}")"
check "lectern-server is gone from dpkg" not installed lectern-server
check "lectern-agent is gone from dpkg" not installed lectern-agent
check "$SERVER_DATA removed" test ! -e "$SERVER_DATA"
check "$AGENT_STATE removed" test ! -e "$AGENT_STATE"
check "/run/lectern-agent removed" test ! -e /run/lectern-agent
check "user lectern removed" not getent passwd lectern
check "group lectern removed" not getent group lectern
check "binaries removed" test ! -e /usr/bin/lectern-server -a ! -e /usr/bin/lectern-agent
check "unit files removed" test ! -e /usr/lib/systemd/system/lectern-server.service -a ! -e /usr/lib/systemd/system/lectern-agent.service
check "no enablement links or masks left" test -z "$(find /etc/systemd/system -name 'lectern-*' 2>/dev/null)"
check "no deb-systemd-helper state left" test -z "$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name '*lectern-*' 2>/dev/null)"
check "purge removed the enrollment token" test ! -e "$TOKEN_FILE"
check "purge kept the admin's pre-seeded agent.toml" cmp -s "$WORK/agent.toml.seeded" "$AGENT_CONF"
rm -f "$AGENT_CONF"
rmdir /etc/lectern 2>/dev/null || true

finish
