#!/usr/bin/env bash
# Builds target/windows/lectern-agent.msi (packaging/windows/lectern-agent.wxs)
# with wixl (Debian package `wixl`), and Authenticode-signs the agent and the
# MSI with osslsigncode when a signing key is supplied.
#
#   scripts/package-windows.sh [AGENT_EXE]
#
#   AGENT_EXE   the Windows agent to install as lectern-agent.exe; default
#               $LECTERN_AGENT_EXE, else
#               target/x86_64-pc-windows-gnu/release/lectern-agent.exe
#
# Environment:
#   LECTERN_WINDOWS_OUT         output folder (default target/windows)
#   LECTERN_WINDOWS_VERSION     product version (default: [workspace.package]
#                               version in Cargo.toml, numeric part)
#   Signing (either a PEM certificate chain and key, or a PKCS#12 file):
#   LECTERN_WINDOWS_SIGN_CERT   PEM certificate (chain) file
#   LECTERN_WINDOWS_SIGN_KEY    PEM private key file
#   LECTERN_WINDOWS_SIGN_PFX    PKCS#12 (.pfx) file instead of CERT+KEY
#   LECTERN_WINDOWS_SIGN_PASS   password of the key or PFX (optional)
#   LECTERN_WINDOWS_SIGN_TIMESTAMP  RFC 3161 timestamp server URL (optional;
#                               without it signatures expire with the cert)
#
# The agent exe is signed as staged (the input file is not modified), then
# packaged, then the MSI is signed. Without a key both stay unsigned and the
# script says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WXS="$ROOT/packaging/windows/lectern-agent.wxs"
OUT="${LECTERN_WINDOWS_OUT:-$ROOT/target/windows}"
EXE="${1:-${LECTERN_AGENT_EXE:-$ROOT/target/x86_64-pc-windows-gnu/release/lectern-agent.exe}}"
HOST_NAME="org.lectern.agent"

die() { echo "package-windows: $*" >&2; exit 1; }

[[ -f $EXE ]] || die "no agent exe at $EXE (give its path as the first argument or LECTERN_AGENT_EXE)"
command -v wixl >/dev/null || die "wixl not found (Debian package: wixl)"
command -v msibuild >/dev/null || die "msibuild not found (Debian package: msitools)"

workspace_version() {
    awk '/^\[workspace.package\]/{p=1;next} /^\[/{p=0} p&&/^version *=/{gsub(/[" ]/,"",$0);split($0,a,"=");print a[2];exit}' "$ROOT/Cargo.toml"
}
VERSION="${LECTERN_WINDOWS_VERSION:-$(workspace_version)}"
VERSION="${VERSION%%[-+]*}" # MSI versions are numeric: 0.1.0-rc1 -> 0.1.0
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad version '$VERSION'"

SIGNING=()
if [[ -n ${LECTERN_WINDOWS_SIGN_PFX:-} ]]; then
    SIGNING=(-pkcs12 "$LECTERN_WINDOWS_SIGN_PFX")
elif [[ -n ${LECTERN_WINDOWS_SIGN_CERT:-} || -n ${LECTERN_WINDOWS_SIGN_KEY:-} ]]; then
    [[ -n ${LECTERN_WINDOWS_SIGN_CERT:-} && -n ${LECTERN_WINDOWS_SIGN_KEY:-} ]] ||
        die "LECTERN_WINDOWS_SIGN_CERT and LECTERN_WINDOWS_SIGN_KEY go together"
    SIGNING=(-certs "$LECTERN_WINDOWS_SIGN_CERT" -key "$LECTERN_WINDOWS_SIGN_KEY")
fi
if ((${#SIGNING[@]})); then
    command -v osslsigncode >/dev/null || die "osslsigncode not found (Debian package: osslsigncode)"
    [[ -n ${LECTERN_WINDOWS_SIGN_PASS:-} ]] && SIGNING+=(-pass "$LECTERN_WINDOWS_SIGN_PASS")
    [[ -n ${LECTERN_WINDOWS_SIGN_TIMESTAMP:-} ]] && SIGNING+=(-ts "$LECTERN_WINDOWS_SIGN_TIMESTAMP")
fi

# sign IN OUT: an Authenticode signature (SHA-256) on a PE or MSI file.
sign() {
    osslsigncode sign "${SIGNING[@]}" -h sha256 -n "Lectern agent" \
        -in "$1" -out "$2" >"$OUT/sign.log" 2>&1 || { cat "$OUT/sign.log" >&2; die "signing $1 failed"; }
}

STAGE="$OUT/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"
# wixl resolves File sources relative to the .wxs and rejects absolute paths:
# stage everything next to a copy of it.
cp "$WXS" "$STAGE/lectern-agent.wxs"
if ((${#SIGNING[@]})); then
    sign "$EXE" "$STAGE/lectern-agent.exe"
else
    cp "$EXE" "$STAGE/lectern-agent.exe"
fi
# The native-messaging host: Chrome and Edge start `path` (relative to the
# manifest) through cmd.exe with the caller's origin as argument; the wrapper
# starts the agent itself in native-host mode, as on Linux.
printf '@"%%~dp0lectern-agent.exe" native-host %%*\r\n' >"$STAGE/native-host.cmd"
EXT_ID="$(tr -d '[:space:]' <"$ROOT/extension/EXTENSION_ID")"
printf '{\n  "name": "%s",\n  "description": "Lectern agent: web policy, tabs and activity for the Lectern extension",\n  "path": "native-host.cmd",\n  "type": "stdio",\n  "allowed_origins": ["chrome-extension://%s/"]\n}\n' \
    "$HOST_NAME" "$EXT_ID" >"$STAGE/$HOST_NAME.json"

MSI="$OUT/lectern-agent.msi"
rm -f "$MSI"
(cd "$STAGE" && wixl -a x64 -D "Version=$VERSION" -o "$MSI.tmp" lectern-agent.wxs) >"$OUT/wixl.log" 2>&1 ||
    { cat "$OUT/wixl.log" >&2; die "wixl failed"; }

# What wixl cannot express, set in the built database:
# - component conditions (a <Condition> inside <Component>): each property's
#   registry value is written only when the property is given (`OR REMOVE`:
#   a component whose condition is false at uninstall would be left behind);
# - our own SecureCustomProperties (wixl writes the property itself for
#   MajorUpgrade and fails on a second definition): the properties pass from
#   the command line into the elevated install.
msibuild "$MSI.tmp" \
    -q "UPDATE \`Component\` SET \`Condition\` = 'SERVER OR REMOVE' WHERE \`Component\` = 'ServerValue'" \
    -q "UPDATE \`Component\` SET \`Condition\` = 'FINGERPRINT OR REMOVE' WHERE \`Component\` = 'FingerprintValue'" \
    -q "UPDATE \`Component\` SET \`Condition\` = 'TOKEN OR REMOVE' WHERE \`Component\` = 'TokenValue'" \
    -q "UPDATE \`Component\` SET \`Condition\` = 'SCHOOL_CODE OR REMOVE' WHERE \`Component\` = 'SchoolCodeValue'" \
    -q "UPDATE \`Property\` SET \`Value\` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;SERVER;FINGERPRINT;TOKEN;SCHOOL_CODE' WHERE \`Property\` = 'SecureCustomProperties'" \
    || die "msibuild could not post-process the MSI"
msiinfo export "$MSI.tmp" Component | grep -q "	SCHOOL_CODE OR REMOVE	" || die "component conditions missing"
# - an ACL on HKLM\SOFTWARE\Lectern\Agent (the token must not be readable by
#   students; HKLM\SOFTWARE is readable by Users): a protected DACL for
#   SYSTEM and Administrators only, by SDDL (MsiLockPermissionsEx, Windows
#   Installer 5) so it works on every language of Windows. wixl has no
#   <PermissionEx>; the table is added here, one row per value of the key.
LOCK_SDDL='D:P(A;CIOI;GA;;;SY)(A;CIOI;GA;;;BA)'
lock_rows=()
while IFS=$'\t' read -r id root key _; do
    [[ $root == 2 && $key == 'SOFTWARE\Lectern\Agent' ]] || continue
    lock_rows+=(-q "INSERT INTO \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\`, \`LockObject\`, \`Table\`, \`SDDL\`) VALUES ('Lock_$id', '$id', 'Registry', '$LOCK_SDDL')")
done < <(msiinfo export "$MSI.tmp" Registry | tr -d '\r' | tail -n +4)
((${#lock_rows[@]} == 2 * 5)) || die "expected 5 registry values under SOFTWARE\\Lectern\\Agent, found $((${#lock_rows[@]} / 2))"
msibuild "$MSI.tmp" \
    -q "CREATE TABLE \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\` CHAR(72) NOT NULL, \`LockObject\` CHAR(72) NOT NULL, \`Table\` CHAR(32) NOT NULL, \`SDDL\` LONGCHAR NOT NULL, \`Condition\` CHAR(255) PRIMARY KEY \`MsiLockPermissionsEx\`)" \
    "${lock_rows[@]}" || die "msibuild could not add the registry ACL"

if ((${#SIGNING[@]})); then
    sign "$MSI.tmp" "$MSI"
    rm -f "$MSI.tmp"
    echo "package-windows: $MSI (version $VERSION, signed)"
else
    mv "$MSI.tmp" "$MSI"
    echo "package-windows: $MSI (version $VERSION, unsigned: no signing key given)"
fi
