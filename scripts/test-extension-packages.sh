#!/usr/bin/env bash
# Tests the extension's packaging (issue 10.7, 10.8). Budget: about 2 minutes
# on a warm machine (3 minutes the first time, when it installs the tools).
#
#  1. the project's ID: extension/EXTENSION_ID is the ID of manifest.json's key;
#     the .deb's native-host manifests and the policy sample name it
#  2. scripts/package-extension.sh refuses to run without LECTERN_EXTENSION_KEY,
#     and refuses a key that is not the project's
#  3. a build with a throwaway key (--dev-key): a CRX3 whose magic, version,
#     signature and ID check out (the throwaway key's ID, not the project's),
#     an update manifest naming that ID, version and the server's CRX URL,
#     and an XPI with the Firefox manifest at its root
#  4. web-ext lint of the Firefox build: no errors, no warnings but the
#     feature-detected chrome.identity calls in identity.js
#  5. Chromium force-installation (tests/extension-tools/chromium-forcelist.mjs):
#     a real lectern-server serves update.xml and the CRX, Chromium installs
#     it from ExtensionInstallForcelist and the extension enrolls standalone;
#     the policy file lives in a private mount namespace (`unshare -m`, root)
#  6. if firefox-esr is installed: the smoke test in real Firefox over
#     WebDriver BiDi (tests/extension-tools/firefox-smoke.mjs), and the
#     deployment test (tests/extension-tools/firefox-policy.mjs: a real
#     lectern-server serves the XPI, a private Firefox ESR copy force-installs
#     it from policies.json and the extension enrolls standalone; needs
#     target/debug/lectern-server or LECTERN_SERVER_BIN); skipped with
#     the reason when Firefox is not there (set LECTERN_REQUIRE_FIREFOX=1 to
#     make that a failure)
#
# The tools (web-ext, puppeteer-core) are installed into
# tests/extension-tools/node_modules when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/tests/extension-tools"
PACK="$ROOT/scripts/extension-pack.mjs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "test-extension-packages: FAIL: $*" >&2; exit 1; }
step() { echo "test-extension-packages: $*"; }

# 1. One Lectern ID everywhere.
ID="$(tr -d '[:space:]' <"$ROOT/extension/EXTENSION_ID")"
KEY_ID="$(node -e '
  const { createHash } = require("crypto");
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const hex = createHash("sha256").update(Buffer.from(m.key, "base64")).digest("hex").slice(0, 32);
  console.log([...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join(""));' "$ROOT/extension/manifest.json")"
[ "$ID" = "$KEY_ID" ] || fail "EXTENSION_ID $ID is not the manifest key's ID $KEY_ID"
grep -q "allowed_origins.*chrome-extension://%s/" "$ROOT/packaging/build-debs.sh" \
    && grep -q 'EXT_ID="$(tr -d' "$ROOT/packaging/build-debs.sh" \
    || fail "packaging/build-debs.sh no longer takes allowed_origins from extension/EXTENSION_ID"
for f in "$ROOT/extension/policy-sample.json" "$ROOT/docs/extension-deployment.md"; do
    grep -q "$ID" "$f" || fail "$f does not name the extension ID $ID"
done
if grep -rIl --exclude-dir=target --exclude-dir=node_modules --exclude-dir=.git -E '\b[a-p]{32}\b' "$ROOT/extension" "$ROOT/docs" "$ROOT/packaging" \
    | xargs -r grep -hoE '\b[a-p]{32}\b' | sort -u | grep -v "^$ID$" | grep -q .; then
    fail "another 32-letter extension ID appears in extension/, docs/ or packaging/: $(grep -rhoE --exclude-dir=node_modules '\b[a-p]{32}\b' "$ROOT/extension" "$ROOT/docs" "$ROOT/packaging" | sort -u | grep -v "^$ID$" | tr '\n' ' ')"
fi
step "one extension ID everywhere: $ID"

# 2. The signing key comes from outside, and only the project's key is accepted.
if env -u LECTERN_EXTENSION_KEY "$ROOT/scripts/package-extension.sh" --base-url https://x.invalid --out "$WORK/nokey" 2>"$WORK/nokey.err"; then
    fail "package-extension.sh ran without LECTERN_EXTENSION_KEY"
fi
grep -q LECTERN_EXTENSION_KEY "$WORK/nokey.err" || fail "no key: unclear error: $(cat "$WORK/nokey.err")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/other.pem" 2>/dev/null
if LECTERN_EXTENSION_KEY="$WORK/other.pem" "$ROOT/scripts/package-extension.sh" --base-url https://x.invalid --out "$WORK/other" 2>"$WORK/other.err"; then
    fail "package-extension.sh accepted a key that is not the project's"
fi
grep -q "wrong key" "$WORK/other.err" || fail "wrong key: unclear error: $(cat "$WORK/other.err")"
step "refuses to run without the key, and with another key"

# 3. A throwaway-key build.
OUT="$WORK/out"
"$ROOT/scripts/package-extension.sh" --dev-key --base-url https://lectern.test:30016 --out "$OUT" >/dev/null 2>"$WORK/build.err" \
    || fail "build: $(cat "$WORK/build.err")"
DEV_ID="$(cat "$OUT/EXTENSION_ID")"
[ "$DEV_ID" != "$ID" ] || fail "a throwaway key gave the project's ID"
[ "$(head -c 4 "$OUT/lectern.crx")" = "Cr24" ] || fail "lectern.crx has no Cr24 magic"
CRX_ID="$(node "$PACK" verify-crx "$OUT/lectern.crx")" || fail "lectern.crx does not verify"
[ "$CRX_ID" = "$DEV_ID" ] || fail "CRX ID $CRX_ID, expected $DEV_ID"
VERSION="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).version)' "$ROOT/extension/manifest.json")"
grep -q "appid='$DEV_ID'" "$OUT/update.xml" || fail "update.xml does not name $DEV_ID"
grep -q "codebase='https://lectern.test:30016/extension/lectern.crx'" "$OUT/update.xml" || fail "update.xml codebase"
grep -q "version='$VERSION'" "$OUT/update.xml" || fail "update.xml version"
unzip -p "$OUT/lectern.xpi" manifest.json >"$WORK/ff-manifest.json" || fail "no manifest.json at the XPI's root"
node -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const want = require("fs").readFileSync(process.argv[2], "utf8").trim();
  const ok = m.manifest_version === 3 && m.browser_specific_settings?.gecko?.id === want
    && !m.key && Array.isArray(m.background?.scripts) && !m.background.service_worker
    && m.permissions.includes("declarativeNetRequest");
  if (!ok) { console.error(JSON.stringify(m, null, 2)); process.exit(1); }' "$WORK/ff-manifest.json" "$ROOT/extension/GECKO_ID" \
    || fail "the XPI's manifest is not the Firefox MV3 manifest"
if unzip -l "$OUT/lectern.xpi" | grep -qE ' (test/|README|policy-sample)'; then fail "the XPI carries tests or docs"; fi
step "CRX3 $CRX_ID verifies; update.xml and XPI are right"

# 4. web-ext lint.
if [ ! -x "$TOOLS/node_modules/.bin/web-ext" ] || [ ! -d "$TOOLS/node_modules/puppeteer-core" ]; then
    step "installing web-ext and puppeteer-core into tests/extension-tools"
    (cd "$TOOLS" && npm ci --no-audit --no-fund >/dev/null 2>&1 || npm install --no-audit --no-fund >/dev/null) \
        || fail "cannot install the tools in $TOOLS"
fi
"$TOOLS/node_modules/.bin/web-ext" lint --source-dir "$OUT/firefox" --output json --no-config-discovery >"$WORK/lint.json" 2>/dev/null || true
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  // Chrome-only APIs the code feature-detects (chrome.identity?.…: Firefox has
  // no profile user, and the managed `user` is read instead) are expected;
  // any other warning fails.
  const expected = (m) => m.code === "UNSUPPORTED_API" && /^identity\./.test(m.message.split(" ")[0]) && m.file === "identity.js";
  const bad = [...r.errors, ...r.warnings.filter((m) => !expected(m))];
  for (const m of bad) console.error(`${m._type}: ${m.code}: ${m.message} (${m.file || ""})`);
  console.log(`web-ext lint: ${r.errors.length} errors, ${r.warnings.length} warnings, ${r.notices.length} notices`);
  process.exit(bad.length ? 1 : 0);' "$WORK/lint.json" || fail "web-ext lint"

# 5. Chromium deployment: the real server serves update.xml and the CRX,
# Chromium force-installs it from a managed policy file and the extension
# enrolls standalone; then a browser whose agent is installed but stopped
# does not enroll a second time. The policy and native host live in a
# private mount namespace (bound over /etc/chromium), so no other browser on
# the machine sees them.
SERVER_BIN="${LECTERN_SERVER_BIN:-$ROOT/target/debug/lectern-server}"
if [ ! -x "$SERVER_BIN" ]; then
    step "SKIP: Chromium force-install test: no server binary at $SERVER_BIN (cargo build -p lectern-server)"
elif [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || [ ! -d /etc/chromium ]; then
    step "SKIP: Chromium force-install test: needs root, unshare and /etc/chromium (a private mount for the policy)"
else
    mkdir -p "$WORK/chromium-etc"
    set +e
    (cd "$TOOLS" && timeout 240 unshare -m sh -c 'mount --bind "$1" /etc/chromium && exec node chromium-forcelist.mjs "$2" "$3" "$1"' \
        sh "$WORK/chromium-etc" "$OUT" "$SERVER_BIN")
    rc=$?
    set -e
    case "$rc" in
        0) ;;
        77) step "SKIP: Chromium force-install test could not run here" ;;
        *) fail "Chromium force-install test (exit $rc)" ;;
    esac
fi

# 6. Firefox smoke test.
FIREFOX="${FIREFOX:-/usr/lib/firefox-esr/firefox-esr}"
if [ -x "$FIREFOX" ]; then
    set +e
    timeout 150 node "$TOOLS/firefox-smoke.mjs" "$OUT/firefox" "$(cat "$ROOT/extension/GECKO_ID")" "$FIREFOX"
    rc=$?
    set -e
    case "$rc" in
        0) ;;
        77) [ "${LECTERN_REQUIRE_FIREFOX:-0}" = 1 ] && fail "Firefox smoke test could not run" ;;
        *) fail "Firefox smoke test (exit $rc)" ;;
    esac
    # The deployment path of the docs: the real server serves the XPI, Firefox
    # force-installs it by policy and the extension enrolls standalone.
    if [ -x "$SERVER_BIN" ]; then
        set +e
        timeout 200 node "$TOOLS/firefox-policy.mjs" "$OUT/lectern.xpi" "$(cat "$ROOT/extension/GECKO_ID")" "$SERVER_BIN" "$(dirname "$FIREFOX")"
        rc=$?
        set -e
        case "$rc" in
            0) ;;
            77) [ "${LECTERN_REQUIRE_FIREFOX:-0}" = 1 ] && fail "Firefox policy test could not run" ;;
            *) fail "Firefox policy test (exit $rc)" ;;
        esac
    else
        step "SKIP: Firefox policy test: no server binary at $SERVER_BIN (cargo build -p lectern-server)"
    fi
else
    msg="firefox-esr is not installed ($FIREFOX): Firefox smoke test skipped (apt-get install firefox-esr)"
    [ "${LECTERN_REQUIRE_FIREFOX:-0}" = 1 ] && fail "$msg"
    step "SKIP: $msg"
fi
step "ok"
