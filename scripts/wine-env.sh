# Sourced by the Windows test scripts: a Wine prefix that runs Rust programs.
#
# - WINEPREFIX defaults to target/wine (one per checkout, made on first use by
#   wineboot; about 20 s on 2 cores).
# - Puts scripts/windows/bcryptprimitives.dll (built here with mingw) in the
#   prefix's system32: Rust >= 1.78 needs ProcessPrng, which Wine 8 lacks.
# - Starts a persistent wineserver first (`wineserver -p`): Wine's background
#   processes inherit stdout, so a wine started from a pipe would hold the pipe
#   open after the program ends. Programs' output goes to files (wine-run.sh).
# - Links a few Noto fonts (Latin, CJK, colour emoji) into the prefix's
#   C:\windows\Fonts: a bare prefix has almost none, and the student
#   surfaces (lectern-student-ui) find fonts there as on Windows, which has
#   Segoe UI and its fallbacks. Missing font packages only mean fewer glyphs.
# - Needs an X display for anything with windows: the caller runs Xvfb and
#   exports DISPLAY (wine_env does not start one).

wine_env() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    export WINEPREFIX=${WINEPREFIX:-$root/target/wine}
    export WINEDEBUG=${WINEDEBUG:--all}
    export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-"mscoree,mshtml=;winemenubuilder.exe=d"}
    mkdir -p "$WINEPREFIX"
    # Exits 2 when a server already runs for this prefix: that is fine.
    wineserver -p >/dev/null 2>&1 </dev/null || true
    if [[ ! -f $WINEPREFIX/system.reg ]]; then
        # wineboot returns once the prefix is written (not `wineserver -w`:
        # the persistent server never exits).
        wineboot --init >"$WINEPREFIX/wineboot.log" 2>&1 </dev/null || return 1
    fi
    wine_fonts
    local dll=$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll
    local src=$root/scripts/windows/bcryptprimitives.c
    if [[ ! -f $dll || $src -nt $dll ]]; then
        x86_64-w64-mingw32-gcc -O2 -shared -o "$dll" "$src" \
            "$root/scripts/windows/bcryptprimitives.def" -lbcrypt || return 1
    fi
}

# Links the Noto fonts installed here into the prefix's font folder.
wine_fonts() {
    local dir=$WINEPREFIX/drive_c/windows/Fonts f
    mkdir -p "$dir"
    for f in /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf \
        /usr/share/fonts/truetype/noto/NotoSans-Bold.ttf \
        /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc \
        /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf; do
        [[ -f $f && ! -e $dir/${f##*/} ]] && ln -s "$f" "$dir/${f##*/}"
    done
    true
}

# Ends the prefix's wineserver and every Wine process in it.
wine_stop() {
    [[ -n ${WINEPREFIX:-} ]] && wineserver -k >/dev/null 2>&1 </dev/null
    true
}
