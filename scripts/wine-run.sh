#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu (.cargo/config.toml): runs a
# Windows test or program under Wine with its output going to a file, then
# copies that file to our stdout and exits with the program's status. Never
# let wine write to cargo's pipe: its background processes would inherit it
# and cargo would wait for them (scripts/wine-env.sh).
#
# A program that runs longer than LECTERN_WINE_TIMEOUT seconds (default 600;
# the slowest test binary takes about a minute) is stopped with everything
# else in the prefix, and what it printed so far is shown: under Wine a hang
# (a pipe held open by a background process, a stuck runtime) otherwise
# waits for ever, and CI's time runs out with nothing said.
set -uo pipefail
# shellcheck source=scripts/wine-env.sh
source "$(dirname "$0")/wine-env.sh"
wine_env || { echo "wine-run: could not prepare the Wine prefix" >&2; exit 1; }
out=$(mktemp "${TMPDIR:-/tmp}/wine-run.XXXXXX")
trap 'rm -f "$out"' EXIT
limit=${LECTERN_WINE_TIMEOUT:-600}
timeout -k 10 "$limit" wine "$@" >"$out" 2>&1 </dev/null
rc=$?
cat "$out"
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "wine-run: $1 did not end within ${limit}s: stopped (the output above is what it printed)" >&2
    # The Windows process may outlive its wine loader: end the whole prefix
    # (the next program starts a fresh wineserver).
    wine_stop
fi
exit $rc
