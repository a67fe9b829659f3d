#!/usr/bin/env bash
# Runs the browser end-to-end tests of the teacher console: console.mjs (the
# class grid and commands) then admin.mjs (groups, resultant settings, access
# rights, lessons, live view); fails if either fails.
# Needs a built server (cargo build -p lectern-server, or LECTERN_SERVER_BIN);
# installs playwright-core (npm) and Chromium (apt) when they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -d node_modules/playwright-core ]; then
  npm install --no-audit --no-fund
fi

if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  apt_get() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
  if ! apt_get install -y chromium; then
    apt_get update
    apt_get install -y chromium
  fi
fi

status=0
for test in console.mjs admin.mjs; do
  echo "== $test"
  if ! node "$test"; then
    echo "== $test FAILED" >&2
    status=1
  fi
done
exit "$status"
