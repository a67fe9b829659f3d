#!/usr/bin/env bash
# Builds the Lectern browser extension's deployable packages from extension/:
#
#   OUT/lectern.crx     CRX3 for Chrome and Edge, signed with the Lectern key
#   OUT/update.xml      update manifest for ExtensionInstallForcelist
#   OUT/lectern.xpi     Firefox package (unsigned: see docs/extension-deployment.md)
#   OUT/firefox/        the unpacked Firefox build (same sources, Firefox manifest)
#   OUT/EXTENSION_ID    the ID the CRX carries
#
# Usage:
#   LECTERN_EXTENSION_KEY=/path/to/lectern-extension.pem \
#     scripts/package-extension.sh --base-url https://lectern.school.example:30016 [--out DIR]
#   scripts/package-extension.sh --dev-key [--out DIR]          (tests: throwaway key)
#   scripts/package-extension.sh --update-xml-only --base-url URL [--out DIR]
#
# The signing key is the project's private RSA key, kept OUTSIDE the
# repository (docs/extension-deployment.md, "The signing key"); its path
# comes from LECTERN_EXTENSION_KEY. Without it the script refuses to run,
# except with --dev-key, which generates a throwaway key: the packages then
# carry another extension ID (the staged manifest gets that key, so the
# build is consistent with itself), fine for tests, never for schools.
#
# --base-url is the Lectern server's address as browsers reach it; the update
# manifest points at BASE/extension/lectern.crx, which the server serves from
# its data directory's extension/ folder (copy lectern.crx and update.xml
# there). --update-xml-only writes just update.xml for the released version,
# for a school publishing the project's CRX on its own server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXT="$ROOT/extension"
PACK="$ROOT/scripts/extension-pack.mjs"
OUT="$ROOT/target/extension"
BASE_URL="${LECTERN_SERVER_URL:-}"
DEV_KEY=0
XML_ONLY=0

usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dev-key) DEV_KEY=1 ;;
        --update-xml-only) XML_ONLY=1 ;;
        --out) OUT="$2"; shift ;;
        --base-url) BASE_URL="$2"; shift ;;
        -h|--help) usage ;;
        *) echo "package-extension: unknown argument $1" >&2; usage ;;
    esac
    shift
done

ID="$(tr -d '[:space:]' <"$EXT/EXTENSION_ID")"
GECKO_ID="$(tr -d '[:space:]' <"$EXT/GECKO_ID")"
VERSION="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).version)' "$EXT/manifest.json")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ "$DEV_KEY" = 1 ] && [ -z "$BASE_URL" ]; then BASE_URL="https://lectern.invalid:30016"; fi
case "$BASE_URL" in
    https://*) ;;
    "") echo "package-extension: give the server's address with --base-url https://HOST:PORT (or LECTERN_SERVER_URL)" >&2; exit 2 ;;
    *) echo "package-extension: --base-url must be https:// (browsers fetch updates over HTTPS): $BASE_URL" >&2; exit 2 ;;
esac
CRX_URL="${BASE_URL%/}/extension/lectern.crx"

if [ "$XML_ONLY" = 1 ]; then
    node "$PACK" update-xml "$ID" "$VERSION" "$CRX_URL" >"$OUT/update.xml"
    echo "update manifest: $OUT/update.xml ($ID $VERSION from $CRX_URL)"
    exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "$DEV_KEY" = 1 ]; then
    KEY="$WORK/dev-key.pem"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEY" 2>/dev/null
    ID="$(node "$PACK" id-of-key "$KEY")"
    echo "package-extension: throwaway key, extension ID $ID (not the Lectern ID)" >&2
else
    KEY="${LECTERN_EXTENSION_KEY:-}"
    if [ -z "$KEY" ]; then
        echo "package-extension: set LECTERN_EXTENSION_KEY to the path of the Lectern extension's private key (PEM), or use --dev-key for a throwaway test build" >&2
        exit 2
    fi
    [ -r "$KEY" ] || { echo "package-extension: cannot read LECTERN_EXTENSION_KEY=$KEY" >&2; exit 2; }
    case "$(cd "$(dirname "$KEY")" && pwd)/" in
        "$ROOT"/*) echo "package-extension: the key is inside the repository ($KEY); keep it outside (docs/extension-deployment.md)" >&2; exit 2 ;;
    esac
    KEY_ID="$(node "$PACK" id-of-key "$KEY")"
    if [ "$KEY_ID" != "$ID" ]; then
        echo "package-extension: $KEY gives the ID $KEY_ID, but extension/EXTENSION_ID is $ID: wrong key" >&2
        exit 2
    fi
fi

# Stage the sources the browser needs (not tests, docs or samples).
stage() {
    mkdir -p "$1"
    tar -C "$EXT" --exclude=./test --exclude=./node_modules --exclude='./*.md' \
        --exclude=./EXTENSION_ID --exclude=./GECKO_ID --exclude=./policy-sample.json \
        --exclude='./package*.json' -cf - . | tar -C "$1" -xf -
}

# Chromium: CRX3, packed offline. --pack-extension writes DIR.crx beside DIR.
stage "$WORK/lectern"
if [ "$DEV_KEY" = 1 ]; then
    node "$PACK" set-key "$WORK/lectern/manifest.json" "$(node "$PACK" pubkey-of-key "$KEY")"
fi
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
[ -n "$CHROMIUM" ] || { echo "package-extension: no chromium found (set CHROMIUM)" >&2; exit 1; }
"$CHROMIUM" --no-sandbox --user-data-dir="$WORK/profile" --pack-extension="$WORK/lectern" \
    --pack-extension-key="$KEY" --no-message-box >"$WORK/pack.log" 2>&1 || true
if [ ! -s "$WORK/lectern.crx" ]; then
    echo "package-extension: chromium did not pack the extension:" >&2
    cat "$WORK/pack.log" >&2
    exit 1
fi
node "$PACK" verify-crx "$WORK/lectern.crx" "$ID" >/dev/null
install -m 0644 "$WORK/lectern.crx" "$OUT/lectern.crx"
node "$PACK" update-xml "$ID" "$VERSION" "$CRX_URL" >"$OUT/update.xml"
echo "$ID" >"$OUT/EXTENSION_ID"

# Firefox: the same sources with the Firefox manifest, zipped (manifest at the root).
rm -rf "$OUT/firefox" "$OUT/lectern.xpi"
stage "$OUT/firefox"
node "$PACK" firefox-manifest "$EXT/manifest.json" "$OUT/firefox/manifest.json" "$GECKO_ID"
(cd "$OUT/firefox" && find . -type f | LC_ALL=C sort | zip -q -X -@ "$OUT/lectern.xpi")

echo "built in $OUT:"
echo "  lectern.crx  $ID $VERSION ($(stat -c %s "$OUT/lectern.crx") bytes)"
echo "  update.xml   codebase $CRX_URL"
echo "  lectern.xpi  $GECKO_ID ($(stat -c %s "$OUT/lectern.xpi") bytes), unpacked in firefox/"
