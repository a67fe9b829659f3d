# shellcheck shell=bash
# Helpers shared by scripts/test-*.sh (sourced, not run).

# The cargo-nextest version installed when it is missing; .config/nextest.toml
# requires at least 0.9.100.
NEXTEST_VERSION=0.9.143

# ensure_pkg BINARY PACKAGE: installs the Debian PACKAGE when BINARY is not on
# PATH (sudo when not root; refreshes the package lists and retries once).
ensure_pkg() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" </dev/null ||
        {
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" </dev/null
        }
}

# ensure_deb PACKAGE...: installs the Debian packages that are not installed
# (for packages without a binary to look for, such as fonts: the lock pages
# and screenshots must show every script with a real glyph).
ensure_deb() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" </dev/null ||
        {
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" </dev/null
        }
}

# ensure_wasm_target: the extension's keyword engine is built for wasm32.
ensure_wasm_target() {
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
        rustup target add wasm32-unknown-unknown </dev/null
}

# ensure_nextest: succeeds when `cargo nextest` can run. When it is missing,
# it is built from source only with LECTERN_INSTALL_NEXTEST=1: that took 21
# min on a busy 2-core machine (306 crates), more than nextest saves on this
# suite (73.6 s against 77.5 s for cargo test), so a fresh machine runs the
# tests with `cargo test` instead and a machine that keeps its tools builds
# nextest once.
ensure_nextest() {
    cargo nextest --version >/dev/null 2>&1 && return 0
    if [[ ${LECTERN_INSTALL_NEXTEST:-0} != 1 ]]; then
        echo "cargo-nextest is not installed: the Rust tests run under cargo test" \
            "(LECTERN_INSTALL_NEXTEST=1 builds nextest from source, once per machine)" >&2
        return 1
    fi
    echo "building cargo-nextest $NEXTEST_VERSION from source"
    # Without the self-update feature: fewer crates to build, and updates come
    # from this pinned version anyway.
    cargo install cargo-nextest --locked --version "$NEXTEST_VERSION" \
        --no-default-features --features default-no-update </dev/null ||
        {
            echo "installing cargo-nextest failed" >&2
            return 1
        }
}

# build_binaries: the debug server and agent the browser and packaging legs
# run (a no-op when scripts/test-all.sh's build leg made them). The same
# command as the server tests' own agent build, so the file is not swapped.
build_binaries() {
    cargo build --locked -q -p lectern-server -p lectern-agent
}
