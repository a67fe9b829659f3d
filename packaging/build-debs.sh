#!/usr/bin/env bash
# Builds lectern-server_<ver>_<arch>.deb and lectern-agent_<ver>_<arch>.deb
# with dpkg-deb from staged trees (no cargo-deb, no debhelper).
#
#   packaging/build-debs.sh [--bin-dir DIR] [--out DIR] [--version V]
#                           [--compress xz|gzip|zstd|none]
#
#   --bin-dir DIR   take lectern-server and lectern-agent from DIR; default:
#                   `cargo build --release --locked -p lectern-server -p lectern-agent`,
#                   then $CARGO_TARGET_DIR (or target)/release
#   --out DIR       where the .deb files go (default target/debian)
#   --version V     package version (default: [workspace.package] version in
#                   Cargo.toml)
#   --compress C    dpkg-deb compressor (default xz; tests use gzip for speed)
#
# Debug information is stripped from the packaged copies (symbols stay, so
# panics still show function names); the binaries in --bin-dir are not touched.
# Runs as any user: --root-owner-group makes every file root:root in the .deb.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG_DIR="$ROOT/packaging"

BIN_DIR=""
OUT="$ROOT/target/debian"
VERSION=""
COMPRESS="xz"

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    --bin-dir=*) BIN_DIR="${1#*=}"; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    --version) VERSION="$2"; shift 2 ;;
    --version=*) VERSION="${1#*=}"; shift ;;
    --compress) COMPRESS="$2"; shift 2 ;;
    --compress=*) COMPRESS="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-debs: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

for tool in dpkg-deb dpkg; do
    command -v "$tool" >/dev/null || { echo "build-debs: $tool is required" >&2; exit 1; }
done

if [[ -z "$VERSION" ]]; then
    # version = "..." inside [workspace.package] of the workspace manifest.
    VERSION=$(awk '
        /^\[/ { section = $0; next }
        section == "[workspace.package]" && $1 == "version" {
            gsub(/^[^"]*"|".*$/, ""); print; exit
        }' "$ROOT/Cargo.toml")
    [[ -n "$VERSION" ]] || { echo "build-debs: no version in $ROOT/Cargo.toml" >&2; exit 1; }
fi
# Debian versions must start with a digit and may not contain '_' or spaces;
# Cargo's pre-release "-" becomes "~" so that 1.0.0~rc1 sorts before 1.0.0.
DEB_VERSION="${VERSION//-/\~}"
[[ "$DEB_VERSION" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || {
    echo "build-debs: '$VERSION' is not usable as a Debian version" >&2
    exit 1
}
ARCH=$(dpkg --print-architecture)

if [[ -z "$BIN_DIR" ]]; then
    echo "build-debs: cargo build --release -p lectern-server -p lectern-agent"
    (cd "$ROOT" && cargo build --release --locked -p lectern-server -p lectern-agent)
    BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
for b in lectern-server lectern-agent; do
    [[ -x "$BIN_DIR/$b" ]] || { echo "build-debs: $BIN_DIR/$b is missing (build it first)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lectern-debs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# strip_copy SRC DEST: installs SRC as DEST (0755) without debug information.
strip_copy() {
    install -m 0755 "$1" "$2"
    if command -v objcopy >/dev/null; then
        objcopy --strip-debug --remove-section=.comment "$2"
    elif command -v strip >/dev/null; then
        strip --strip-debug "$2"
    fi
}

# shlib_depends BINARY...: the Depends a binary's shared libraries need, as
# dpkg-shlibdeps computes them from the installed libraries' symbols files.
shlib_depends() {
    local deps=""
    if command -v dpkg-shlibdeps >/dev/null; then
        local d="$WORK/shlibdeps"
        mkdir -p "$d/debian"
        printf 'Source: lectern\n\nPackage: lectern\nArchitecture: any\n' >"$d/debian/control"
        deps=$(cd "$d" && dpkg-shlibdeps -O "${@/#/-e}" 2>/dev/null |
            sed -n 's/^shlibs:Depends=//p') || deps=""
    fi
    if [[ -z "$deps" ]]; then
        # Fallback: a Rust binary needs the C library and libgcc's unwinder.
        deps="libc6, libgcc-s1"
    fi
    echo "$deps"
}

# build_pkg NAME DEPENDS RECOMMENDS SHORT LONG: writes DEBIAN/ of the staged
# tree $WORK/NAME and builds the package.
build_pkg() {
    local name="$1" depends="$2" recommends="$3" short="$4" long="$5"
    local tree="$WORK/$name"
    install -d -m 0755 "$tree/DEBIAN"
    for s in postinst prerm postrm; do
        install -m 0755 "$PKG_DIR/debian/${name#lectern-}/$s" "$tree/DEBIAN/$s"
    done
    local size
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    {
        echo "Package: $name"
        echo "Version: $DEB_VERSION"
        echo "Architecture: $ARCH"
        echo "Maintainer: Lectern developers"
        echo "Installed-Size: $size"
        echo "Depends: $depends"
        [[ -n "$recommends" ]] && echo "Recommends: $recommends"
        echo "Section: admin"
        echo "Priority: optional"
        echo "Description: $short"
        printf '%s\n' "$long" | fold -s -w 72 | sed -e 's/ *$//' -e 's/^$/./' -e 's/^/ /'
    } >"$tree/DEBIAN/control"
    (cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
        LC_ALL=C sort -z | xargs -0 -r md5sum) >"$tree/DEBIAN/md5sums"
    chmod 0644 "$tree/DEBIAN/control" "$tree/DEBIAN/md5sums"
    local deb="$OUT/${name}_${DEB_VERSION}_${ARCH}.deb"
    dpkg-deb --build --root-owner-group -Z"$COMPRESS" "$tree" "$deb" >/dev/null
    echo "built $deb"
}

# stage_common NAME BINARY UNIT: files both packages have.
stage_common() {
    local name="$1" tree="$WORK/$1"
    install -d -m 0755 "$tree/usr/bin" "$tree/usr/lib/systemd/system" "$tree/usr/share/doc/$name"
    strip_copy "$BIN_DIR/$name" "$tree/usr/bin/$name"
    install -m 0644 "$PKG_DIR/systemd/$name.service" "$tree/usr/lib/systemd/system/$name.service"
    install -m 0644 "$ROOT/docs/deployment.md" "$tree/usr/share/doc/$name/deployment.md"
    cat >"$tree/usr/share/doc/$name/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Lectern
Upstream-Contact: Lectern developers

Files: *
Copyright: Lectern developers
License: AGPL-3.0-or-later
 This program is free software: you can redistribute it and/or modify it
 under the terms of the GNU Affero General Public License as published by the
 Free Software Foundation, either version 3 of the License, or (at your
 option) any later version.
EOF
    chmod 0644 "$tree/usr/share/doc/$name/copyright"
}

umask 022

stage_common lectern-server
build_pkg lectern-server \
    "$(shlib_depends "$WORK/lectern-server/usr/bin/lectern-server"), adduser | passwd" "" \
    "classroom management server (console, API, agent gateway)" \
    "Lectern is an open classroom-management and online-safety system. This package is the school's server: the teachers' web console, the REST API and the gateway student computers' agents connect to, over TLS on one port (30016).

On first installation it creates the system user lectern, initializes /var/lib/lectern-server (database, school, first admin, certificate) and starts lectern-server.service. The admin password and the certificate fingerprint are in /var/lib/lectern-server/initial-admin.txt."

stage_common lectern-agent
install -d -m 0755 "$WORK/lectern-agent/usr/share/lectern-agent"
install -m 0644 "$PKG_DIR/agent.toml.example" "$WORK/lectern-agent/usr/share/lectern-agent/agent.toml.example"
# Chrome native messaging: browsers start the host for the Lectern extension.
# The manifest's path takes no arguments, hence the wrapper (which execs the
# agent itself, so the service recognises the binary).
install -d -m 0755 "$WORK/lectern-agent/usr/lib/lectern-agent"
printf '#!/bin/sh\nexec /usr/bin/lectern-agent native-host "$@"\n' >"$WORK/lectern-agent/usr/lib/lectern-agent/native-host"
chmod 0755 "$WORK/lectern-agent/usr/lib/lectern-agent/native-host"
EXT_ID="$(tr -d '[:space:]' <"$ROOT/extension/EXTENSION_ID")"
for d in etc/chromium/native-messaging-hosts etc/opt/chrome/native-messaging-hosts etc/opt/edge/native-messaging-hosts; do
    install -d -m 0755 "$WORK/lectern-agent/$d"
    printf '{\n  "name": "org.lectern.agent",\n  "description": "Lectern agent: web policy, tabs and activity for the Lectern extension",\n  "path": "/usr/lib/lectern-agent/native-host",\n  "type": "stdio",\n  "allowed_origins": ["chrome-extension://%s/"]\n}\n' "$EXT_ID" \
        >"$WORK/lectern-agent/$d/org.lectern.agent.json"
    chmod 0644 "$WORK/lectern-agent/$d/org.lectern.agent.json"
done
# Firefox reads its native-messaging hosts from /usr/lib/mozilla (not /etc),
# and names the extension by its gecko id (extension/GECKO_ID, the id the
# Firefox build in scripts/package-extension.sh gives it).
GECKO_ID="$(tr -d '[:space:]' <"$ROOT/extension/GECKO_ID")"
install -d -m 0755 "$WORK/lectern-agent/usr/lib/mozilla/native-messaging-hosts"
printf '{\n  "name": "org.lectern.agent",\n  "description": "Lectern agent: web policy, tabs and activity for the Lectern extension",\n  "path": "/usr/lib/lectern-agent/native-host",\n  "type": "stdio",\n  "allowed_extensions": ["%s"]\n}\n' "$GECKO_ID" \
    >"$WORK/lectern-agent/usr/lib/mozilla/native-messaging-hosts/org.lectern.agent.json"
chmod 0644 "$WORK/lectern-agent/usr/lib/mozilla/native-messaging-hosts/org.lectern.agent.json"
build_pkg lectern-agent \
    "$(shlib_depends "$WORK/lectern-agent/usr/bin/lectern-agent")" \
    "xdg-utils, pulseaudio-utils" \
    "classroom management agent for student computers" \
    "Lectern is an open classroom-management and online-safety system. This package is the agent every student computer runs: it connects to the school's Lectern server and carries out teachers' commands (screen thumbnails, lock, messages, websites).

The service reads /etc/lectern/agent.toml and enrolls by itself with the token in /etc/lectern/enrollment-token; place both before installing for an unattended roll-out. xdg-utils opens websites, pulseaudio-utils (pactl) mutes sound."
