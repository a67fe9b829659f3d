#!/usr/bin/env bash
# Runs every Lectern test on a fresh machine, leg by leg, and prints each
# leg's time against its budget at the end. Installs what it needs when
# missing (apt packages, playwright-core; cargo-nextest with
# LECTERN_INSTALL_NEXTEST=1, see scripts/test-lib.sh); needs no
# stdin and runs the same with CI=true. Exit status 1 when any leg failed.
#
#   scripts/test-all.sh              every leg
#   scripts/test-all.sh rust fuzz    only these legs (the build leg is implied)
#
# Legs and their budgets on 2 cores (docs/testing.md), 45 min in all; the
# times in brackets were measured on a warm 2-core machine (Dec 2026):
#   setup       3 min  tools: apt packages (Chromium, Firefox ESR, Noto fonts,
#                      openbox, xdotool, CUPS with a PDF printer, usbguard's
#                      rule parser, slapd, sqlite3, aiosmtpd for the mail
#                      tests, the word lists for the keyword false-positive
#                      test), the wasm32 target, npm packages; cargo-nextest only
#                      with LECTERN_INSTALL_NEXTEST=1
#   fmt         1 min  cargo fmt --check                                [0:01]
#   clippy      3 min  cargo clippy --workspace --all-targets -D warnings
#   build       7 min  one debug build of every binary and test binary, shared
#                      by all later legs (nothing is built twice)     [5:07]
#   rust      8.5 min  scripts/test-rust.sh: nextest (process per test,
#                      retries off, flaky recheck), then doctests     [8:26]
#   fuzz        3 min  scripts/test-fuzz.sh: 6 targets x 20 s
#   browser     9 min  scripts/test-browser.sh: extension unit tests, the
#                      wasm keyword engine build, headless Chromium
#   extpack     2 min  scripts/test-extension-packages.sh: CRX3, update
#                      manifest, XPI, web-ext lint, force-install in
#                      Chromium and Firefox ESR
#   packaging   1 min  scripts/test-packaging.sh: .deb build, install, run,
#                      purge                                            [0:33]
#   windows     8 min  scripts/test-windows.sh: cross-build for
#                      x86_64-pc-windows-gnu, cargo test under Wine + Xvfb
#                      (proto, policy, desktop, windows, wfp, agent), X
#                      screenshot of the lock, xdotool keys vs the hook, the
#                      agent as a service against a real server
#                      (test-windows-agent.sh) and its MSI installed and
#                      removed (test-windows-msi.sh)
# A leg over its budget is flagged in the summary (not failed: machines vary);
# a leg still running at twice its budget plus 10 min is stopped and failed, so
# that a hang (say, a test under Wine) ends the run with a summary instead of
# using up CI's time;
# a new leg (Wine, slapd, SMTP, PostgreSQL, NATS...) gets its own
# scripts/test-<leg>.sh, a line here and a budget, and the total must stay
# within 45 min.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh
exec </dev/null
# A whole run builds everything once: incremental state would only take disk
# (~4 GB per target) that the CI machine does not have to spare.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

ALL_LEGS=(setup fmt clippy build rust fuzz browser packaging extpack windows)
declare -A BUDGET=([setup]=60 [fmt]=30 [clippy]=180 [build]=420 [rust]=510 [fuzz]=150 [browser]=720 [packaging]=45 [extpack]=90 [windows]=495)
TOTAL_BUDGET=2700
# Legs that need the build leg's binaries.
declare -A NEEDS_BUILD=([rust]=1 [fuzz]=1 [browser]=1 [packaging]=1 [extpack]=1 [windows]=1)

leg_setup() {
    ensure_pkg Xvfb xvfb &&
        ensure_pkg ip iproute2 &&
        ensure_pkg dpkg-deb dpkg &&
        ensure_pkg systemd-analyze systemd &&
        ensure_pkg node nodejs &&
        ensure_pkg npm npm &&
        ensure_pkg xterm xterm &&
        ensure_pkg openbox openbox &&
        ensure_pkg xmessage x11-utils &&
        ensure_pkg xmodmap x11-xserver-utils &&
        ensure_pkg xdotool xdotool &&
        ensure_pkg import imagemagick &&
        ensure_deb cups cups-client printer-driver-cups-pdf &&
        ensure_pkg usbguard-rule-parser usbguard &&
        ensure_pkg dbus-daemon dbus-daemon &&
        ensure_deb slapd ldap-utils &&
        ensure_pkg sqlite3 sqlite3 &&
        ensure_deb nats-server &&
        ensure_deb postgresql &&
        ensure_deb python3-aiosmtpd wamerican wbritish &&
        { [[ -n ${CHROMIUM:-} ]] || ensure_pkg chromium chromium; } &&
        ensure_pkg firefox-esr firefox-esr &&
        ensure_deb fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji &&
        ensure_wasm_target &&
        { ensure_nextest || true; } &&
        { node tests/e2e/deps-ok.cjs ||
            (cd tests/e2e && npm install --no-audit --no-fund); }
}
leg_fmt() { cargo fmt --all -- --check; }
leg_clippy() { cargo clippy --workspace --all-targets --locked -- -D warnings; }
leg_build() {
    # The test binaries and the workspace's binaries they start, then the
    # server, agent and fuzzer as the later legs ask for them (their own
    # cargo calls then find everything built).
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --locked --no-run || return 1
    else
        cargo test --workspace --locked --no-run || return 1
    fi
    cargo build --locked -p lectern-fuzz && build_binaries
}
leg_rust() { bash scripts/test-rust.sh; }
leg_fuzz() { bash scripts/test-fuzz.sh; }
leg_browser() { bash scripts/test-browser.sh; }
leg_packaging() { bash scripts/test-packaging.sh; }
leg_extpack() { LECTERN_REQUIRE_FIREFOX=1 bash scripts/test-extension-packages.sh; }
leg_windows() { bash scripts/test-windows.sh; }

# One leg in a process of its own, so that `timeout` can stop all of it.
if [[ -n ${LECTERN_ONE_LEG:-} ]]; then
    "leg_$LECTERN_ONE_LEG"
    exit $?
fi
self="$PWD/scripts/test-all.sh"

# The legs asked for, in the canonical order; a leg that needs binaries
# brings the build leg along.
declare -A WANTED=()
for leg in "$@"; do
    [[ -n ${BUDGET[$leg]:-} ]] || {
        echo "unknown leg '$leg' (legs: ${ALL_LEGS[*]})" >&2
        exit 2
    }
    WANTED[$leg]=1
    [[ -z ${NEEDS_BUILD[$leg]:-} ]] || WANTED[build]=1
done
legs=()
for leg in "${ALL_LEGS[@]}"; do
    [[ $# -eq 0 || -n ${WANTED[$leg]:-} ]] && legs+=("$leg")
done

declare -A RESULT=() TIME=()
failed=0
build_ok=1
started=$SECONDS
for leg in "${legs[@]}"; do
    printf '\n==== %s (budget %d min) ====\n' "$leg" $((BUDGET[$leg] / 60))
    if [[ -n ${NEEDS_BUILD[$leg]:-} && $build_ok -eq 0 ]]; then
        RESULT[$leg]="skipped"
        TIME[$leg]=0
        echo "skipped: the build failed"
        continue
    fi
    t0=$SECONDS
    limit=$((BUDGET[$leg] * 2 + 600))
    LECTERN_ONE_LEG=$leg timeout -k 30 "$limit" bash "$self"
    rc=$?
    if [[ $rc -eq 0 ]]; then
        RESULT[$leg]="ok"
    else
        RESULT[$leg]="FAILED"
        failed=1
        [[ $rc -eq 124 || $rc -eq 137 ]] && echo "leg $leg stopped after ${limit}s: it did not end" >&2
    fi
    TIME[$leg]=$((SECONDS - t0))
    [[ $leg == build && ${RESULT[$leg]} != ok ]] && build_ok=0
done

mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
printf '\n==== summary ====\n'
printf '%-10s %-8s %7s %7s\n' leg result time budget
for leg in "${legs[@]}"; do
    over=""
    [[ ${TIME[$leg]} -gt ${BUDGET[$leg]} ]] && over="  over budget"
    printf '%-10s %-8s %7s %7s%s\n' "$leg" "${RESULT[$leg]}" "$(mmss "${TIME[$leg]}")" "$(mmss "${BUDGET[$leg]}")" "$over"
done
total=$((SECONDS - started))
over=""
[[ $total -gt $TOTAL_BUDGET ]] && over="  over budget"
printf '%-10s %-8s %7s %7s%s\n' total "" "$(mmss "$total")" "$(mmss "$TOTAL_BUDGET")" "$over"
# The build's disk use, so a creeping target/ is seen before a CI machine fills.
echo "disk: target/ holds $(du -sh target 2>/dev/null | cut -f1), $(df -h --output=avail . | tail -1 | tr -d ' ') left"
if [[ $failed -ne 0 ]]; then
    echo "SOME LEGS FAILED"
    exit 1
fi
echo "all tests passed"
