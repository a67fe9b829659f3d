#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu (.cargo/config.toml): runs a
# Windows test or program under Wine with its output going to a file, then
# copies that file to our stdout and exits with the program's status. Never
# let wine write to cargo's pipe: its background processes would inherit it
# and cargo would wait for them (scripts/wine-env.sh).
set -uo pipefail
# shellcheck source=scripts/wine-env.sh
source "$(dirname "$0")/wine-env.sh"
wine_env || { echo "wine-run: could not prepare the Wine prefix" >&2; exit 1; }
out=$(mktemp "${TMPDIR:-/tmp}/wine-run.XXXXXX")
trap 'rm -f "$out"' EXIT
wine "$@" >"$out" 2>&1 </dev/null
rc=$?
cat "$out"
exit $rc
