#!/usr/bin/env bash
# Runs the browser extension's unit tests (node --test extension/test/), then
# the browser end-to-end tests: console.mjs (the class grid and commands),
# admin.mjs (groups, resultant settings, access rights, lessons, live view),
# tabs.mjs (tabs dialog, web lists), extension.mjs (the extension in real
# Chromium: rules, native mode with a real agent, Chromebook mode),
# chromebook.mjs (standalone mode: thumbnails on demand, lock, close_all_tabs),
# chromebook-ask.mjs (remote_view ask_then_deny: the student's Allow/Deny in the
# browser decides which teacher's console gets pictures) and
# safety.mjs (keyword library, violation logs with screenshots, CSV exports,
# reports, alerts) and chromebook-safety.mjs (typed text scanned by the
# extension's wasm keyword engine in Chromebook mode, a violation with
# screenshots) and chromebook-live.mjs (the live view of a Chromebook-mode
# device: larger frames at the extension's capture budget, measured); fails
# if any fails. Builds extension/keywords.wasm first
# (scripts/build-extension-wasm.sh: the .wasm is a build output, not committed).
# Needs a built server and agent (cargo build -p lectern-server -p
# lectern-agent, or LECTERN_SERVER_BIN / LECTERN_AGENT_BIN; the agent is looked
# for beside the server by default); installs playwright-core (npm) and
# Chromium (apt) when they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! node deps-ok.cjs; then
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

if [ -n "${LECTERN_SERVER_BIN:-}" ] && [ -z "${LECTERN_AGENT_BIN:-}" ]; then
  export LECTERN_AGENT_BIN="$(dirname "$LECTERN_SERVER_BIN")/lectern-agent"
fi

echo "== extension keyword engine (wasm)"
../../scripts/build-extension-wasm.sh

status=0
echo "== screen_painter (paints the X screen for liveview-h264.mjs)"
(cd ../.. && cargo build -q -p lectern-x11 --example screen_painter)

echo "== extension unit tests"
if ! node --test ../../extension/test/; then
  echo "== extension unit tests FAILED" >&2
  status=1
fi
for test in console.mjs classes.mjs gridperf.mjs rights.mjs accessibility.mjs admin.mjs tabs.mjs extension.mjs identity.mjs chromebook.mjs chromebook-ask.mjs safety.mjs chromebook-safety.mjs chromebook-live.mjs liveview-h264.mjs control.mjs broadcast.mjs chromebook-broadcast.mjs look.mjs requests.mjs chromebook-requests.mjs enforce.mjs inventory.mjs power.mjs meeting.mjs files.mjs exams.mjs files-classroom.mjs exams-schedule.mjs requests-menu.mjs chromebook-inventory.mjs register.mjs auditset.mjs users.mjs devadmin.mjs timetable.mjs roster.mjs directory.mjs dirsecret.mjs aup.mjs nav.mjs schools.mjs students.mjs chromebook-signin.mjs kwpolicy.mjs mail.mjs dashboard.mjs review.mjs evidence.mjs retro.mjs; do
  echo "== $test"
  if ! node "$test"; then
    echo "== $test FAILED" >&2
    status=1
  fi
done
exit "$status"
