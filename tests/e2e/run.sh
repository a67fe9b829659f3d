#!/usr/bin/env bash
# Runs the browser end-to-end test of the teacher console.
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

exec node console.mjs
