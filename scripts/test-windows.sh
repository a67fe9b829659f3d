#!/usr/bin/env bash
# The Windows leg: cross-builds for x86_64-pc-windows-gnu, lints the Windows
# code with clippy (-D warnings), and runs the tests
# under Wine on a private Xvfb display (proto, policy, desktop, windows, wfp,
# agent), then locks the screen with the Windows backend, takes an X
# screenshot of the lock and types Alt+Tab, the Windows key and `a` with
# xdotool (the hook must swallow the first two and the lock window must get
# the `a`). Then, on the same display, scripts/test-windows-agent.sh (the
# agent as a service against a real server: lock, keys, message, thumbnails,
# web block reported unsupported) and scripts/test-windows-msi.sh (the MSI
# with the real agent: install, enroll, uninstall).
#
# Installs what is missing: Wine (wine, wine64), the mingw-w64 C/C++
# cross-compilers, msitools, osslsigncode, xdotool, Xvfb, ImageMagick
# (`import`, for the screenshot) and the Rust target. Output, including
# target/windows-out/lock.png, goes to target/windows-out/. Budget: 10 min on
# 2 cores (scripts/test-all.sh).
#
# Wine cannot show: DXGI desktop duplication (DuplicateOutput returns
# E_NOTIMPL, so capture runs on GDI), session 0 isolation and real user
# tokens, Ctrl+Alt+Del, UIPI between integrity levels, multiple monitors
# (Xvfb has one screen). Check those on a real Windows machine.
set -euo pipefail
trap 'echo "test-windows.sh: line $LINENO failed (status $?)" >&2' ERR
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh
# shellcheck source=scripts/wine-env.sh
source scripts/wine-env.sh

TARGET=x86_64-pc-windows-gnu
OUT=target/windows-out

ensure_deb wine wine64 gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 msitools osslsigncode \
    xdotool xvfb imagemagick fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
    rustup target add "$TARGET" </dev/null

# A display nobody else uses (other checkouts run this at the same time).
display=
for n in $(seq 90 140); do
    if [[ ! -e /tmp/.X11-unix/X$n && ! -e /tmp/.X$n-lock ]]; then
        display=:$n
        break
    fi
done
[[ -n $display ]] || {
    echo "no free X display between :90 and :140" >&2
    exit 1
}
xvfb_pid=
cleanup() {
    wine_stop
    [[ -n $xvfb_pid ]] && kill "$xvfb_pid" 2>/dev/null
    true
}
trap cleanup EXIT
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 </dev/null &
xvfb_pid=$!
export DISPLAY=$display
for _ in $(seq 100); do
    xdotool getdisplaygeometry >/dev/null 2>&1 && break
    sleep 0.1
done
xdotool getdisplaygeometry >/dev/null || {
    echo "Xvfb did not start on $display" >&2
    exit 1
}
# Not a bare call: under `set -e` its `wineserver -p` would end this script
# silently (status 2) when a wineserver already runs for the prefix.
wine_env || {
    echo "cannot prepare the Wine prefix $WINEPREFIX" >&2
    exit 1
}

rm -rf "$OUT"
mkdir -p "$OUT"
# The Linux clippy leg never sees the Windows-only code: lint it here.
cargo clippy --locked --target "$TARGET" --all-targets -p lectern-desktop -p lectern-student-ui \
    -p lectern-windows -p lectern-wfp -p lectern-agent -- -D warnings
cargo test --locked --target "$TARGET" -p lectern-proto -p lectern-policy -p lectern-desktop \
    -p lectern-windows -p lectern-wfp -p lectern-agent

# The lock on the X display, and what the hook makes of keys typed there.
demo=target/$TARGET/debug/examples/lock_demo.exe
[[ -f $demo ]] || cargo build --locked --target "$TARGET" -p lectern-windows --example lock_demo
wine "$demo" "$(winepath -w "$PWD/$OUT")" >"$OUT/lock_demo.log" 2>&1 </dev/null &
demo_pid=$!
for _ in $(seq 600); do
    [[ -f $OUT/ready ]] && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
[[ -f $OUT/ready ]] || {
    echo "the lock demo did not lock the screen:" >&2
    cat "$OUT/lock_demo.log" >&2
    exit 1
}
# The windows are mapped when lock() returns; their first paint follows:
# screenshots until the lock's background colour (LOCK_BG) is on screen.
for _ in $(seq 50); do
    import -window root "$OUT/lock.png"
    [[ $(convert "$OUT/lock.png" -format '%[pixel:p{1270,790}]' info:) == "srgb(24,28,64)" ]] && break
    sleep 0.2
done
xdotool key alt+Tab
xdotool key super
xdotool key a
touch "$OUT/keys-sent"
rc=0
wait "$demo_pid" || rc=$?
cat "$OUT/lock_demo.log"
if [[ $rc -ne 0 ]]; then
    echo "the keyboard hook did not handle the keys typed with xdotool" >&2
    exit 1
fi
echo "lock demo passed; lock screenshot: $OUT/lock.png"

# The agent end to end, and its MSI (each with its own Wine prefix).
bash scripts/test-windows-agent.sh
bash scripts/test-windows-msi.sh
echo "windows leg passed in ${SECONDS}s; screenshots in $OUT"
