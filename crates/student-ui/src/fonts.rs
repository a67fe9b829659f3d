//! The fonts every surface draws with: the system's own (fontdb scans the
//! usual directories: fontconfig's on Linux, `%WINDIR%\Fonts` and the user's
//! font folder on Windows), one embedded Latin face (Fira Sans, SIL OFL,
//! 431 KiB) so a bare machine never shows boxes, and whatever a backend adds.
//! Missing glyphs fall back per script (cosmic-text's lists, then any face
//! that has the glyph), which is how CJK, Arabic, Hebrew and colour emoji
//! reach the screen.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Once;

use iced_graphics::text::cosmic_text::{fontdb, Fallback, FontSystem, PlatformFallback};
use unicode_script::Script;

/// Preferred interface faces, best first; the first one installed becomes the
/// sans-serif family every surface asks for. Fira Sans is always present
/// (embedded), so the list never runs dry.
const PREFERRED: &[&str] = &[
    "Segoe UI",
    "Noto Sans",
    "DejaVu Sans",
    "Liberation Sans",
    "Arial",
    "Fira Sans",
];

/// Picks the interface face once, after the system fonts are loaded.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        colour_emoji_first();
        choose_family();
    });
}

/// Colour emoji faces, tried before any other fallback face.
const COLOUR_EMOJI: &[&str] = &[
    "Noto Color Emoji",
    "Segoe UI Emoji",
    "Apple Color Emoji",
    "Twemoji",
];

/// cosmic-text's own fallback lists, except that colour emoji faces come
/// first among the script-neutral ones: its Linux list tries DejaVu Sans
/// before Noto Color Emoji, and DejaVu has black-and-white outlines of the
/// common smileys, so 😀 came out as a white outline while 👍 was in colour.
struct ColourEmojiFirst {
    platform: PlatformFallback,
    common: Vec<&'static str>,
}

impl ColourEmojiFirst {
    fn new() -> Self {
        let platform = PlatformFallback;
        let rest = platform.common_fallback().iter().copied();
        let mut common: Vec<&'static str> = COLOUR_EMOJI.to_vec();
        common.extend(rest.filter(|f| !COLOUR_EMOJI.contains(f)));
        ColourEmojiFirst { platform, common }
    }
}

impl Fallback for ColourEmojiFirst {
    fn common_fallback(&self) -> &[&'static str] {
        &self.common
    }

    fn forbidden_fallback(&self) -> &[&'static str] {
        self.platform.forbidden_fallback()
    }

    fn script_fallback(&self, script: Script, locale: &str) -> &[&'static str] {
        self.platform.script_fallback(script, locale)
    }
}

/// Rebuilds the shared font system around the same fonts with
/// [`ColourEmojiFirst`] (iced makes it with the platform's lists).
fn colour_emoji_first() {
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    let raw = system.raw();
    let locale = raw.locale().to_owned();
    let db = std::mem::replace(raw.db_mut(), fontdb::Database::new());
    *raw = FontSystem::new_with_locale_and_db_and_fallback(locale, db, ColourEmojiFirst::new());
}

fn choose_family() {
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    let db = system.raw().db_mut();
    let installed = |name: &str| {
        db.faces()
            .any(|f| f.families.iter().any(|(family, _)| family == name))
    };
    if let Some(name) = PREFERRED.iter().find(|n| installed(n)) {
        db.set_sans_serif_family(*name);
    }
}

/// Adds every font file under `dir` (e.g. a font folder shipped beside the
/// agent, or one with more fonts than a bare Wine prefix has). Surfaces
/// made after the call use them; a live one relays its text out when its
/// surface changes.
pub fn add_font_dir(dir: &Path) {
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    system.raw().db_mut().load_fonts_dir(dir);
    drop(system);
    choose_family();
}

/// Adds one font (TTF/OTF/TTC bytes).
pub fn add_font_data(bytes: Vec<u8>) {
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    system.load_font(Cow::Owned(bytes));
    drop(system);
    choose_family();
}

/// The family names of every loaded face, sorted and deduplicated (for
/// diagnostics and tests).
pub fn families() -> Vec<String> {
    init();
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    let mut names: Vec<String> = system
        .raw()
        .db()
        .faces()
        .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}
