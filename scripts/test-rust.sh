#!/usr/bin/env bash
# Rust leg: every unit and integration test of the workspace under
# cargo-nextest (a process per test, 2 at a time, retries off; see
# .config/nextest.toml), then the doctests, which nextest does not run.
# Budget: 6 min on 2 cores (measured: 1:14 for 204 tests and 8 doctests),
# after scripts/test-all.sh's build leg (which
# compiles the test binaries; run alone, this script builds them first).
#
# A failed run is followed by one rerun of each failed test alone, to report it
# as FLAKY (passed alone: a defect to fix, the run still fails) or FAILING.
# Without cargo-nextest it runs `cargo test`, saying so (see ensure_nextest in
# scripts/test-lib.sh): test binaries then run one after another, each with
# its tests in threads, so heavy test binaries still run without other
# binaries beside them, but there is no flaky recheck or slow-test listing.
#
#   scripts/test-rust.sh [NEXTEST ARGS...]     e.g. -E 'binary_id(lectern-server::groups)'
#   NEXTEST_PROFILE=default scripts/test-rust.sh   stop at the first failure
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lib.sh
source scripts/test-lib.sh

ensure_pkg Xvfb xvfb       # the X11 backend's tests run under their own Xvfb
ensure_pkg ip iproute2     # the discovery tests make network namespaces (as root)
PROFILE=${NEXTEST_PROFILE:-ci}
JUNIT=target/nextest/$PROFILE/junit.xml

# failed_tests: "binary-id<TAB>test name" for each failed test in the JUnit
# report (nextest writes one element per line).
failed_tests() {
    [[ -f $JUNIT ]] || return 0
    awk '
        /<testcase / {
            match($0, /name="[^"]*"/); name = substr($0, RSTART + 6, RLENGTH - 7)
            match($0, /classname="[^"]*"/); bin = substr($0, RSTART + 11, RLENGTH - 12)
        }
        /<(failure|error|flakyFailure|rerunFailure)[ >]/ && bin !~ /^@setup-script/ {
            if (!seen[bin "\t" name]++) print bin "\t" name
        }' "$JUNIT"
}

# slowest_tests: the ten slowest tests of the run, from the JUnit report.
slowest_tests() {
    [[ -f $JUNIT ]] || return 0
    echo "slowest tests:"
    awk '
        /<testcase / && !/@setup-script/ {
            match($0, /name="[^"]*"/); name = substr($0, RSTART + 6, RLENGTH - 7)
            match($0, /classname="[^"]*"/); bin = substr($0, RSTART + 11, RLENGTH - 12)
            match($0, / time="[^"]*"/); t = substr($0, RSTART + 7, RLENGTH - 8)
            printf "%8.1f s  %s %s\n", t, bin, name
        }' "$JUNIT" | sort -rn | head -10 || true # head closes the pipe early
}

# recheck: reruns each failed test alone, once, and says FLAKY or FAILING.
recheck() {
    local failed bin name
    mapfile -t failed < <(failed_tests)
    if [[ ${#failed[@]} -eq 0 ]]; then
        return 0
    fi
    if [[ ${#failed[@]} -gt 10 ]]; then
        echo "${#failed[@]} tests failed: not rechecking them one by one"
        return 0
    fi
    echo
    echo "== rechecking ${#failed[@]} failed test(s) alone (the run fails either way)"
    local verdicts=()
    for line in "${failed[@]}"; do
        IFS=$'\t' read -r bin name <<<"$line"
        if cargo nextest run --workspace --locked --profile "$PROFILE" --no-tests=fail \
            -E "binary_id(=$bin) & test(=$name)" >/dev/null 2>&1 </dev/null; then
            verdicts+=("FLAKY    $bin $name (failed in the run, passed alone)")
        else
            verdicts+=("FAILING  $bin $name (failed again alone)")
        fi
    done
    printf '%s\n' "${verdicts[@]}"
}

status=0
# Written back first: a test binary linked moments ago has dirty pages, which
# the kernel will not drop, and the agent's idle-memory test drops its own.
sync
if ensure_nextest; then
    cargo nextest run --workspace --locked --profile "$PROFILE" "$@" </dev/null || status=$?
    slowest_tests
    if [[ $status -ne 0 ]]; then
        cp -f "$JUNIT" "$JUNIT.first" 2>/dev/null || true
        recheck
    fi
    echo "== doctests"
    cargo test --workspace --locked --doc </dev/null || status=1
else
    echo "== cargo test (one test binary at a time; no flaky recheck, no slow-test list)"
    cargo test --workspace --locked --no-fail-fast "$@" </dev/null || status=$?
fi
exit "$status"
