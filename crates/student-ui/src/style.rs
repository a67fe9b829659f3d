//! The shared look of every student surface: colours, the design unit that
//! scales a 1280×720 layout to any window, type sizes, spacing, and the
//! widgets built from them (a full-window page, a solid button, shaped
//! text). New surfaces call these so they look like the rest; the helpers
//! are generic over the surface's message type.

use iced_graphics::core::text::{IntoFragment, Shaping, Wrapping};
use iced_graphics::core::{Background, Border, Color, Element, Length, Theme};
use iced_tiny_skia::Renderer;
use iced_widget::{button, container, text};

/// Width and height of the design every surface is laid out in; a window
/// of another size scales it by [`unit`].
pub const DESIGN: (f32, f32) = (1280.0, 720.0);

/// How much of the 1280×720 design a `w`×`h` logical window holds (so a lock
/// screen looks the same on a 4:3 projector and a 4K panel). Clamped so a
/// tiny window still has readable text and a huge one no giant buttons.
pub fn unit(w: f32, h: f32) -> f32 {
    (w / DESIGN.0).min(h / DESIGN.1).clamp(0.25, 4.0)
}

/// Type sizes in design pixels (multiply by [`unit`]).
pub mod size {
    /// The one big line of a full-screen surface ("This computer is locked").
    pub const HEADLINE: f32 = 80.0;
    /// A question's main line.
    pub const TITLE: f32 = 64.0;
    /// A dialog's header bar.
    pub const HEADER: f32 = 44.0;
    /// Body text a teacher wrote (a lock note, a message).
    pub const BODY: f32 = 44.0;
    /// Secondary lines: the school's name, a form label.
    pub const SUBTITLE: f32 = 36.0;
    /// Small print: countdown explanations, status lines.
    pub const SMALL: f32 = 30.0;
    /// A big button's label.
    pub const BUTTON: f32 = 48.0;
}

/// Spacing in design pixels (multiply by [`unit`]).
pub mod space {
    /// Between the blocks of a surface.
    pub const GAP: f32 = 28.0;
    /// Inside a panel or header, left and right.
    pub const PAD: f32 = 48.0;
    /// The widest a column of text may grow.
    pub const COLUMN: f32 = 1080.0;
}

/// The palette, RGB.
pub mod colour {
    /// Lock screen and sign-in background.
    pub const LOCK: [u8; 3] = [24, 28, 64];
    /// The frame around the teacher's note on the lock screen.
    pub const LOCK_FRAME: [u8; 3] = [90, 100, 170];
    /// Secondary text on dark backgrounds.
    pub const SOFT: [u8; 3] = [200, 200, 255];
    /// Message window background.
    pub const MESSAGE: [u8; 3] = [250, 215, 80];
    /// Message header bar.
    pub const MESSAGE_HEADER: [u8; 3] = [60, 40, 0];
    /// Remote-view question background.
    pub const QUESTION: [u8; 3] = [235, 235, 240];
    /// Dark text on light backgrounds.
    pub const INK: [u8; 3] = [20, 20, 40];
    /// Secondary text on light backgrounds.
    pub const INK_SOFT: [u8; 3] = [70, 70, 90];
    /// Broadcast screen background.
    pub const BROADCAST: [u8; 3] = [10, 90, 40];
    /// The broadcast title bar.
    pub const BAR: [u8; 3] = [20, 20, 24];
    /// The remote-control notice: a warning orange that stands out on any
    /// desktop.
    pub const WARNING: [u8; 3] = [200, 70, 20];
    /// An error on a dark background (a refused school code): light enough
    /// to read on the lock blue.
    pub const ALERT: [u8; 3] = [255, 170, 140];
    /// A neutral button (OK).
    pub const NEUTRAL: [u8; 3] = [60, 60, 80];
    /// A button that says yes (Allow).
    pub const YES: [u8; 3] = [40, 140, 60];
    /// A button that says no (Deny).
    pub const NO: [u8; 3] = [180, 50, 50];
    /// A button that goes ahead (Sign in).
    pub const GO: [u8; 3] = [40, 110, 200];
}

/// An RGB triple as an iced colour.
pub fn rgb([r, g, b]: [u8; 3]) -> Color {
    Color::from_rgb8(r, g, b)
}

/// Any text on a student surface: fully shaped (right-to-left scripts,
/// ligatures, emoji sequences, per-script font fallback; basic shaping
/// would skip the fallback and draw boxes) and wrapped at word or, failing
/// that, glyph boundaries. Every text goes through here, so the glyph check
/// ([`crate::StudentUi::missing_glyphs`]) sees what is drawn.
pub fn words<'a>(
    s: impl IntoFragment<'a>,
    size: f32,
    colour: [u8; 3],
) -> iced_widget::Text<'a, Theme, Renderer> {
    text(s)
        .size(size)
        .color(rgb(colour))
        .shaping(Shaping::Advanced)
        .wrapping(Wrapping::WordOrGlyph)
}

/// Text anyone but us wrote (any script, any mix of directions), wrapped at
/// its real width so it stays in its box: see [`crate::wrap`].
pub fn paragraph(s: impl Into<String>, size: f32, colour: [u8; 3]) -> crate::wrap::Paragraph {
    crate::wrap::Paragraph::new(s, size, colour)
}

/// Like [`paragraph`], centred in its line.
pub fn centred(s: impl Into<String>, size: f32, colour: [u8; 3]) -> crate::wrap::Paragraph {
    paragraph(s, size, colour).centred()
}

/// `content` centred on a full window of `bg`.
pub fn page<'a, M: 'a>(
    content: impl Into<Element<'a, M, Theme, Renderer>>,
    bg: [u8; 3],
) -> Element<'a, M, Theme, Renderer> {
    let bg = rgb(bg);
    container(content)
        .center(Length::Fill)
        .style(move |_| container::Style::default().background(bg))
        .into()
}

/// `content` framed by a rounded line of `colour`, padded by `pad` logical
/// pixels. Only a line, no fill: the surface's own colour stays what fills
/// the screen (backends and tests look for it).
pub fn frame<'a, M: 'a>(
    content: impl Into<Element<'a, M, Theme, Renderer>>,
    colour: [u8; 3],
    pad: f32,
) -> Element<'a, M, Theme, Renderer> {
    let line = rgb(colour);
    let width = (pad / 10.0).clamp(1.0, 4.0);
    container(content)
        .padding(pad)
        .width(Length::Fill)
        .style(move |_| {
            container::Style::default().border(
                Border::default()
                    .rounded(pad / 2.0)
                    .color(line)
                    .width(width),
            )
        })
        .into()
}

/// A filled button `w`×`h` logical pixels with its label centred; it
/// darkens under the pointer and when pressed.
pub fn solid<'a, M: Clone + 'a>(
    label: &'a str,
    size: f32,
    bg: [u8; 3],
    (w, h): (f32, f32),
    msg: M,
) -> Element<'a, M, Theme, Renderer> {
    let radius = h / 8.0;
    let bg = rgb(bg);
    button(container(words(label, size, [255, 255, 255])).center(Length::Fill))
        .width(w)
        .height(h)
        .on_press(msg)
        .style(move |_, status| {
            let shade = match status {
                button::Status::Hovered => 0.88,
                button::Status::Pressed => 0.75,
                _ => 1.0,
            };
            let c = Color::from_rgb(bg.r * shade, bg.g * shade, bg.b * shade);
            button::Style {
                background: Some(Background::Color(c)),
                text_color: Color::WHITE,
                border: Border::default().rounded(radius),
                ..button::Style::default()
            }
        })
        .into()
}

/// The width `s` takes on one line at `size` logical pixels, shaped as
/// [`words`] shapes it.
pub fn line_width(s: &str, size: f32) -> f32 {
    use iced_graphics::text::cosmic_text::{
        Attrs, Buffer, Family, Metrics, Shaping as CosmicShaping,
    };
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    let fs = system.raw();
    let mut buffer = Buffer::new(fs, Metrics::new(size, size * 1.3));
    buffer.set_size(fs, None, None);
    let attrs = Attrs::new().family(Family::SansSerif);
    buffer.set_text(fs, s, &attrs, CosmicShaping::Advanced, None);
    buffer.shape_until_scroll(fs, false);
    buffer.layout_runs().map(|r| r.line_w).fold(0.0, f32::max)
}

/// `size`, or smaller (down to half) so `s` fits on one line of
/// `max_width` logical pixels: for strips and title bars that cannot wrap.
/// Text still too long at half size is cut at the edge of its box.
pub fn fit_one_line(s: &str, size: f32, max_width: f32) -> f32 {
    let width = line_width(s, size);
    if width <= max_width || width <= 0.0 {
        return size;
    }
    // A little under the exact ratio: glyph advances round at small sizes.
    (size * max_width / width * 0.97).max(size / 2.0)
}
