//! What a surface shows, read back from its laid-out widgets: every text
//! with its place, and the glyphs no loaded font has. Tests use it to prove
//! that text in any script is drawn with real glyphs and fits the screen;
//! a backend may log [`MissingGlyph`]s to say which fonts to install.

use iced_graphics::core::widget::operation::Operation;
use iced_graphics::core::widget::Id;
use iced_graphics::core::Rectangle;
use iced_graphics::text::cosmic_text::{Attrs, Buffer, Family, Metrics, Shaping};

/// One text on a surface and where it is laid out, in physical pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownText {
    /// The text.
    pub text: String,
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width of the text's box.
    pub width: f32,
    /// Height of the text's box.
    pub height: f32,
}

/// A piece of a surface's text that no loaded font can draw: it would show
/// as an empty box (the font's `.notdef` glyph, id 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingGlyph {
    /// The whole text it is in.
    pub text: String,
    /// The characters the glyph stands for (one grapheme, usually one
    /// character).
    pub chars: String,
}

/// Collects the texts of a widget tree and the bounds of the logo's box.
#[derive(Default)]
pub(crate) struct Collect {
    pub texts: Vec<(String, Rectangle)>,
    pub logo: Option<Rectangle>,
}

impl Operation for Collect {
    fn traverse(&mut self, operate: &mut dyn FnMut(&mut dyn Operation<()>)) {
        operate(self);
    }

    fn container(&mut self, id: Option<&Id>, bounds: Rectangle) {
        if id == Some(&Id::new(crate::view::LOGO_BOX)) {
            self.logo = Some(bounds);
        }
    }

    fn text(&mut self, _id: Option<&Id>, bounds: Rectangle, text: &str) {
        self.texts.push((text.to_owned(), bounds));
    }
}

/// The glyphs of `texts` that shape to `.notdef` with the fonts loaded now,
/// shaped as the surfaces shape them (advanced shaping, the interface's
/// sans-serif family, cosmic-text's per-script fallback).
pub(crate) fn missing_glyphs<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<MissingGlyph> {
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    let fs = system.raw();
    let mut out = Vec::new();
    for text in texts {
        let mut buffer = Buffer::new(fs, Metrics::new(16.0, 20.0));
        buffer.set_size(fs, None, None);
        let attrs = Attrs::new().family(Family::SansSerif);
        buffer.set_text(fs, text, &attrs, Shaping::Advanced, None);
        buffer.shape_until_scroll(fs, false);
        for run in buffer.layout_runs() {
            for g in run.glyphs.iter().filter(|g| g.glyph_id == 0) {
                let chars = run.text.get(g.start..g.end).unwrap_or("?").to_owned();
                // Line breaks and other controls have no glyph to draw.
                if chars.chars().all(char::is_control) {
                    continue;
                }
                out.push(MissingGlyph {
                    text: text.to_owned(),
                    chars,
                });
            }
        }
    }
    out
}
