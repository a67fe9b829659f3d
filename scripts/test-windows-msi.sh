#!/usr/bin/env bash
# The Windows MSI leg: builds target/windows/lectern-agent.msi around a
# Windows program, checks its tables, signs it (and the program) with a
# throwaway self-signed certificate and verifies the signatures, then installs
# and uninstalls it under Wine in a fresh prefix, checking files, registry,
# native-messaging hosts and the service each way.
#
#   scripts/test-windows-msi.sh [AGENT_EXE]
#
# AGENT_EXE (or $LECTERN_TEST_AGENT_EXE) is the program packaged as
# lectern-agent.exe; it must run as a service when started with `service`
# (the MSI starts the service on install). Default: the real agent
# (cargo build --target x86_64-pc-windows-gnu -p lectern-agent, stripped
# here to keep packaging and signing quick), installed with
# `msiexec /i … SERVER=127.0.0.1:<port> FINGERPRINT=… TOKEN=… /qn` against a
# real lectern-server on loopback: the service starts, enrolls with the
# token from the registry and shows online through the REST API; `msiexec
# /x` then stops and removes it. `stub` as AGENT_EXE packages
# scripts/windows/service-stub.c instead (no server; it records its command
# line so the service's arguments are checked).
# Needs no X display (msiexec /qn). Budget: 3 min on 2 cores (measured with
# the stub: 43 s on 2 shared cores, of which about 10 s make the fresh Wine
# prefix).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh
# shellcheck source=scripts/wine-env.sh
source scripts/wine-env.sh

ensure_pkg wixl wixl
ensure_pkg msiinfo msitools
ensure_pkg osslsigncode osslsigncode
ensure_pkg openssl openssl
ensure_pkg x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
ensure_pkg wine wine

WORK=$ROOT/target/windows-msi-test
rm -rf "$WORK"
mkdir -p "$WORK"
fail() {
    echo "test-windows-msi: FAIL: $*" >&2
    echo "test-windows-msi: logs in $WORK (Wine prefix $WINEPREFIX)" >&2
    exit 1
}
step() { echo "test-windows-msi: $*"; }

EXE=${1:-${LECTERN_TEST_AGENT_EXE:-}}
STUB=0
REAL=0
if [[ $EXE == stub ]]; then
    EXE=$WORK/service-stub.exe
    x86_64-w64-mingw32-gcc -O2 -Wall -Werror -o "$EXE" scripts/windows/service-stub.c
    STUB=1
elif [[ -z $EXE ]]; then
    step "building the real agent (x86_64-pc-windows-gnu) and lectern-server"
    cargo build --locked -q --target x86_64-pc-windows-gnu -p lectern-agent --bin lectern-agent
    cargo build --locked -q -p lectern-server
    # Debug info is most of the debug build's 100 MB; the MSI needs none.
    x86_64-w64-mingw32-strip -o "$WORK/lectern-agent.exe" \
        target/x86_64-pc-windows-gnu/debug/lectern-agent.exe
    EXE=$WORK/lectern-agent.exe
    REAL=1
fi

# --- build, signed with a throwaway certificate -----------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Lectern test signing" \
    -addext "extendedKeyUsage=codeSigning" \
    -keyout "$WORK/sign-key.pem" -out "$WORK/sign-cert.pem" >"$WORK/openssl.log" 2>&1 ||
    fail "openssl could not make a signing certificate"
LECTERN_WINDOWS_SIGN_CERT=$WORK/sign-cert.pem LECTERN_WINDOWS_SIGN_KEY=$WORK/sign-key.pem \
    scripts/package-windows.sh "$EXE" >"$WORK/package.log" 2>&1 ||
    { cat "$WORK/package.log" >&2; fail "package-windows.sh"; }
MSI=$ROOT/target/windows/lectern-agent.msi
[[ -f $MSI ]] || fail "no $MSI"
grep -q "signed)" "$WORK/package.log" || fail "the MSI was not signed"
step "built $(basename "$MSI") ($(stat -c %s "$MSI") bytes)"

# --- tables -------------------------------------------------------------------
table() { msiinfo export "$MSI" "$1" | tr -d '\r'; }
expect_row() { # TABLE REGEX: some row of TABLE matches the (ERE) REGEX
    table "$1" | grep -Eq "$2" || { table "$1" >&2; fail "$1 has no row matching: $2"; }
}
T=$'\t'
VERSION=$(awk '/^\[workspace.package\]/{p=1;next} /^\[/{p=0} p&&/^version *=/{gsub(/[" ]/,"");split($0,a,"=");print a[2];exit}' Cargo.toml)
expect_row Property "^ProductVersion${T}${VERSION%%[-+]*}\$"
expect_row Property "^UpgradeCode${T}\{9455aac4-d163-4901-ac2f-c7950042b097\}\$"
expect_row Property "^SecureCustomProperties${T}.*SERVER;FINGERPRINT;TOKEN;SCHOOL_CODE"
expect_row Property "^MsiHiddenProperties${T}TOKEN\$"
expect_row ServiceInstall "^LecternAgentService${T}LecternAgent${T}Lectern agent${T}16${T}2${T}1${T}${T}${T}LocalSystem${T}${T}service${T}AgentExe${T}"
expect_row ServiceControl "^LecternAgentControl${T}LecternAgent${T}163${T}${T}1${T}AgentExe\$"
expect_row Directory "^INSTALLDIR${T}ProgramFiles64Folder${T}Lectern\$"
expect_row File "^LecternAgentExe${T}AgentExe${T}lectern-agent.exe${T}"
expect_row Registry "${T}2${T}SOFTWARE\\\\Google\\\\Chrome\\\\NativeMessagingHosts\\\\org.lectern.agent${T}${T}\[INSTALLDIR\]org.lectern.agent.json${T}NativeHost\$"
expect_row Registry "${T}2${T}SOFTWARE\\\\Microsoft\\\\Edge\\\\NativeMessagingHosts\\\\org.lectern.agent${T}${T}\[INSTALLDIR\]org.lectern.agent.json${T}NativeHost\$"
for p in Server:SERVER Fingerprint:FINGERPRINT Token:TOKEN SchoolCode:SCHOOL_CODE; do
    expect_row Registry "${T}2${T}SOFTWARE\\\\Lectern\\\\Agent${T}${p%%:*}${T}\[${p#*:}\]${T}"
done
expect_row Component "^ServerValue${T}.*${T}SERVER OR REMOVE${T}"
expect_row Component "^SchoolCodeValue${T}.*${T}SCHOOL_CODE OR REMOVE${T}"
TOKEN_ROW=$(table Registry | awk -F'\t' '$4 == "Token" { print $1 }')
expect_row MsiLockPermissionsEx "^Lock_${TOKEN_ROW}${T}${TOKEN_ROW}${T}Registry${T}D:P\(A;CIOI;GA;;;SY\)\(A;CIOI;GA;;;BA\)${T}\$"
[[ $(table MsiLockPermissionsEx | tail -n +4 | wc -l) == 5 ]] || fail "MsiLockPermissionsEx: want 5 rows"
step "tables: Property, ServiceInstall, ServiceControl, Directory, File, Registry, Component, MsiLockPermissionsEx ok"

# --- signatures -----------------------------------------------------------------
osslsigncode verify -in "$MSI" -CAfile "$WORK/sign-cert.pem" >"$WORK/verify-msi.log" 2>&1 ||
    { cat "$WORK/verify-msi.log" >&2; fail "the MSI's signature does not verify"; }
grep -q "Signature verification: ok" "$WORK/verify-msi.log" || fail "MSI: no 'Signature verification: ok'"
mkdir -p "$WORK/extract"
(cd "$WORK/extract" && msiextract "$MSI" >"$WORK/msiextract.log" 2>&1) || fail "msiextract"
PACKED=$(find "$WORK/extract" -name lectern-agent.exe | head -1)
[[ -n $PACKED ]] || fail "lectern-agent.exe not in the MSI"
osslsigncode verify -in "$PACKED" -CAfile "$WORK/sign-cert.pem" >"$WORK/verify-exe.log" 2>&1 ||
    { cat "$WORK/verify-exe.log" >&2; fail "the packaged exe's signature does not verify"; }
osslsigncode verify -in "$EXE" >"$WORK/verify-input.log" 2>&1 &&
    fail "package-windows.sh signed its input file in place"
# The PKCS#12 route (a .pfx with a password), into its own folder.
openssl pkcs12 -export -inkey "$WORK/sign-key.pem" -in "$WORK/sign-cert.pem" -passout pass:test-pass \
    -out "$WORK/sign.pfx" >>"$WORK/openssl.log" 2>&1 || fail "openssl could not make a PFX"
LECTERN_WINDOWS_OUT=$WORK/pfx LECTERN_WINDOWS_SIGN_PFX=$WORK/sign.pfx LECTERN_WINDOWS_SIGN_PASS=test-pass \
    scripts/package-windows.sh "$EXE" >"$WORK/package-pfx.log" 2>&1 ||
    { cat "$WORK/package-pfx.log" >&2; fail "package-windows.sh with a PFX"; }
osslsigncode verify -in "$WORK/pfx/lectern-agent.msi" -CAfile "$WORK/sign-cert.pem" >"$WORK/verify-pfx.log" 2>&1 ||
    { cat "$WORK/verify-pfx.log" >&2; fail "the PFX-signed MSI does not verify"; }
step "signatures: MSI and packaged lectern-agent.exe verify (PEM and PFX keys); the input exe is untouched"

# --- install and uninstall under Wine --------------------------------------------
export WINEPREFIX=$ROOT/target/wine-msi
wineserver -k >/dev/null 2>&1 </dev/null || true
rm -rf "$WINEPREFIX"
wine_env || fail "could not prepare the Wine prefix"
# The service manager started by the prefix's first boot (wineboot --init)
# fails to start services created afterwards (StartService: 1053, so the MSI's
# StartServices rolls the install back); one started on a later boot does not.
wineserver -k >/dev/null 2>&1 </dev/null || true
wine_env || fail "could not restart the Wine prefix"
WIN_MSI='Z:'${MSI//\//\\}
DRIVE=$WINEPREFIX/drive_c
DIR="$DRIVE/Program Files/Lectern"
# Wine's output goes to files, never to a pipe (scripts/wine-env.sh).
wreg() { wine reg query "$@" >"$WORK/reg.out" 2>&1 </dev/null; }
reg_value() { # KEY NAME: prints the REG_SZ data
    wreg "$1" /v "$2" || return 1
    tr -d '\r' <"$WORK/reg.out" | awk -v n="$2" '$1 == n && $2 == "REG_SZ" { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }'
}
expect_value() { # KEY NAME DATA
    local got
    got=$(reg_value "$1" "$2") || fail "no registry value $1\\$2"
    [[ $got == "$3" ]] || fail "$1\\$2 is '$got', want '$3'"
}
# Whether the installed agent runs in this prefix (not another test's).
service_running() {
    local pid
    for pid in $(pgrep -f 'Program Files.Lectern.lectern-agent.exe'); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "WINEPREFIX=$WINEPREFIX" && return 0
    done
    return 1
}
SVC='HKLM\System\CurrentControlSet\Services\LecternAgent'
AGENT='HKLM\SOFTWARE\Lectern\Agent'
CHROME='HKLM\SOFTWARE\Google\Chrome\NativeMessagingHosts\org.lectern.agent'
EDGE='HKLM\SOFTWARE\Microsoft\Edge\NativeMessagingHosts\org.lectern.agent'

SERVER_PID=
stop_all() {
    WINEPREFIX=$WINEPREFIX wine_stop
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null
    true
}
trap stop_all EXIT
SERVER_ADDR=127.0.0.1:30016
TOKEN=abc
FPRINT=()
if [[ $REAL == 1 ]]; then
    # A real server on loopback for the installed agent to enroll with.
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    SERVER_ADDR=127.0.0.1:$PORT
    SRV=$ROOT/target/debug/lectern-server
    "$SRV" init --data-dir "$WORK/data" --school "MSI School" --password msi-test-password \
        --listen "$SERVER_ADDR" >"$WORK/init.out" 2>&1 || fail "server init"
    FINGERPRINT=$("$SRV" fingerprint --data-dir "$WORK/data" | awk '{print $NF}')
    TOKEN=$("$SRV" token create --data-dir "$WORK/data" --uses 1 --hours 1 | awk '{print $NF}')
    FPRINT=("FINGERPRINT=$FINGERPRINT")
    "$SRV" serve --data-dir "$WORK/data" --listen "$SERVER_ADDR" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    API=https://$SERVER_ADDR
    for _ in $(seq 100); do
        curl -ksf "$API/healthz" >/dev/null && break
        sleep 0.2
    done
    BEARER=$(curl -ksf "$API/api/v1/session" -H 'content-type: application/json' \
        -d '{"username":"admin","password":"msi-test-password"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || fail "server login"
fi
wine msiexec /i "$WIN_MSI" SERVER="$SERVER_ADDR" "${FPRINT[@]}" TOKEN="$TOKEN" /qn /l*v 'C:\install.log' \
    >"$WORK/msiexec-install.out" 2>&1 </dev/null || fail "msiexec /i exited $? (log: $DRIVE/install.log)"
for f in lectern-agent.exe org.lectern.agent.json native-host.cmd; do
    [[ -f "$DIR/$f" ]] || fail "$f not installed in Program Files\\Lectern"
done
cmp -s "$PACKED" "$DIR/lectern-agent.exe" || fail "the installed exe is not the signed one"
grep -q '"path": "native-host.cmd"' "$DIR/org.lectern.agent.json" || fail "host manifest path"
grep -q "chrome-extension://$(tr -d '[:space:]' <extension/EXTENSION_ID)/" "$DIR/org.lectern.agent.json" ||
    fail "host manifest origin"
grep -q 'lectern-agent.exe" native-host %\*' "$DIR/native-host.cmd" || fail "native-host.cmd"
expect_value "$AGENT" Server "$SERVER_ADDR"
expect_value "$AGENT" InstallDir 'C:\Program Files\Lectern\'
if [[ $REAL == 1 ]]; then
    expect_value "$AGENT" Fingerprint "$FINGERPRINT"
else
    expect_value "$AGENT" Token abc
    reg_value "$AGENT" Fingerprint >/dev/null && fail "Fingerprint written though not given"
fi
reg_value "$AGENT" SchoolCode >/dev/null && fail "SchoolCode written though not given"
wreg "$CHROME" /ve || fail "Chrome native host key missing"
grep -q 'C:\\Program Files\\Lectern\\org.lectern.agent.json' "$WORK/reg.out" || fail "Chrome native host value"
wreg "$EDGE" /ve || fail "Edge native host key missing"
grep -q 'C:\\Program Files\\Lectern\\org.lectern.agent.json' "$WORK/reg.out" || fail "Edge native host value"
expect_value "$SVC" ObjectName LocalSystem
expect_value "$SVC" DisplayName 'Lectern agent'
wreg "$SVC" /v Start || fail "service key missing"
grep -Eq 'Start +REG_DWORD +0x2' "$WORK/reg.out" || fail "service is not auto-start"
ipath=$(reg_value "$SVC" ImagePath)
[[ $ipath == *'C:\Program Files\Lectern\lectern-agent.exe'*' service' ]] || fail "service ImagePath '$ipath'"
if [[ $STUB == 1 ]]; then
    # The MSI started the service (ServiceControl Start=install) with its arguments.
    grep -q 'lectern-agent.exe" service' "$DRIVE/lectern-service-stub.txt" 2>/dev/null ||
        fail "the service was not started with 'service'"
    service_running || fail "the service is not running"
fi
if [[ $REAL == 1 ]]; then
    # The service the MSI started enrolls with the registry's token.
    online=
    for _ in $(seq 240); do
        if curl -ksf -H "authorization: Bearer $BEARER" "$API/api/v1/devices" >"$WORK/devices.json" &&
            python3 -c 'import json,sys; sys.exit(0 if any(d.get("online") for d in json.load(open(sys.argv[1]))) else 1)' "$WORK/devices.json"; then
            online=1
            break
        fi
        sleep 0.5
    done
    [[ -n $online ]] || fail "the installed agent did not enroll and come online (service log: $(find "$DRIVE" -name service.log | head -1))"
    service_running || fail "the service is not running"
    step "the installed service enrolled and is online: $(python3 -c 'import json,sys; d=[d for d in json.load(open(sys.argv[1])) if d.get("online")][0]; print("device", d["id"], repr(d.get("hostname")))' "$WORK/devices.json")"
fi
step "install: files, HKLM\\SOFTWARE\\Lectern\\Agent (Server, Token or Fingerprint; no SchoolCode), Chrome and Edge hosts (manifest for chrome-extension://$(tr -d '[:space:]' <extension/EXTENSION_ID)/), LecternAgent service (LocalSystem, auto, started) ok"

wine msiexec /x "$WIN_MSI" /qn /l*v 'C:\uninstall.log' >"$WORK/msiexec-uninstall.out" 2>&1 </dev/null ||
    fail "msiexec /x exited $? (log: $DRIVE/uninstall.log)"
if [[ -e $DIR ]]; then
    # Stopping a service waits for it to say "stopped", not for its process to
    # end. When the process is still ending as its files go (seen under load),
    # Windows Installer, like Windows, cannot delete the running program and
    # schedules it for removal at the next restart. That is accepted only with
    # the schedule in the registry and the process then gone.
    for _ in $(seq 40); do service_running || break; sleep 0.5; done
    # No schedule at all leaves reg.out without the file: the check below
    # fails with the reason, instead of set -e ending the script silently.
    wreg 'HKLM\System\CurrentControlSet\Control\Session Manager' /v PendingFileRenameOperations || true
    unscheduled=""
    for f in "$DIR"/*; do
        grep -qiF "Lectern\\${f##*/}" "$WORK/reg.out" || unscheduled+="${f##*/} "
    done
    if [[ -n $unscheduled ]]; then
        # Wine's Installer does not always record the restart schedule that
        # Windows would. Accepted only when the service process is gone and
        # the leftover is then deleted; said here.
        service_running && fail "Program Files\\Lectern left behind while the service still runs: $unscheduled"
        for f in $unscheduled; do
            rm -f "$DIR/$f" || fail "Program Files\\Lectern\\$f left behind and cannot be deleted"
        done
        step "uninstall: ${unscheduled}was still ending when removed and Wine did not schedule it for removal at restart; deleted afterwards, the service process gone"
    else
        step "uninstall: $(ls "$DIR" | tr '\n' ' ')still ending when removed, scheduled for removal at restart"
    fi
fi
# ServiceControl Stop=both: the service process ends before its files go.
service_running && fail "the service still runs"
for k in 'HKLM\SOFTWARE\Lectern' "$SVC" "$CHROME" "$EDGE"; do
    wreg "$k" && fail "$k left behind"
done
if [[ $REAL == 1 ]]; then
    for _ in $(seq 60); do
        curl -ksf -H "authorization: Bearer $BEARER" "$API/api/v1/devices" >"$WORK/devices.json" &&
            python3 -c 'import json,sys; sys.exit(0 if not any(d.get("online") for d in json.load(open(sys.argv[1]))) else 1)' "$WORK/devices.json" &&
            break
        sleep 0.5
    done
    python3 -c 'import json,sys; sys.exit(0 if not any(d.get("online") for d in json.load(open(sys.argv[1]))) else 1)' "$WORK/devices.json" ||
        fail "the device is still online after the uninstall"
fi
# The service's state (credential, queue, logs) is the machine's, like any
# service's data under %ProgramData%: left for a reinstall, said here.
left=$(find "$DRIVE" -path '*/Lectern/*' -newer "$MSI" -printf '%P ' 2>/dev/null | cut -c1-300)
[[ -n $left ]] && step "left by design (service state, not installed files): $left"
step "uninstall: files, registry keys and service removed$([[ $REAL == 1 ]] && echo '; the device went offline')"

stop_all
trap - EXIT
rm -rf "$WINEPREFIX"
step "ok (${SECONDS}s)"
