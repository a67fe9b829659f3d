//! Wrapping that keeps mixed-direction text inside its box.
//!
//! cosmic-text 0.15 (iced's text engine) wraps a right-to-left run inside a
//! left-to-right paragraph (and the reverse) from the run's logical end, and
//! a word of that run that does not fit is still added to the line already
//! holding the earlier text: "Zoë … مرحبا بالعالم" in a 1024 px message ran
//! past the right edge and was cut (upstream pop-os/cosmic-text#252). So the
//! surfaces break such text themselves, at the width the layout really
//! gives: greedy, at UAX #14 break opportunities, falling back to grapheme
//! clusters for a word wider than the line, each line measured shaped as it
//! is drawn. Each line then fits, so cosmic-text never wraps it again.
//! Lines after the first start with an invisible direction mark (LRM or
//! RLM) of their paragraph's direction, so a line that happens to begin
//! with an Arabic word keeps its paragraph's direction and alignment.

use crate::style::{line_width, rgb};
use iced_graphics::core::alignment::Horizontal;
use iced_graphics::core::layout::{self, Layout};
use iced_graphics::core::text::{Shaping, Wrapping};
use iced_graphics::core::widget::{tree, Operation, Tree, Widget};
use iced_graphics::core::{mouse, renderer, Element, Length, Rectangle, Size, Theme};
use iced_graphics::text::cosmic_text::{Attrs, Buffer, Family, Metrics, Shaping as CosmicShaping};
use iced_tiny_skia::Renderer;
use iced_widget::Text;
use unicode_segmentation::UnicodeSegmentation;

/// Left-to-right mark: starts a continuation line of a left-to-right paragraph.
const LRM: char = '\u{200E}';
/// Right-to-left mark: starts a continuation line of a right-to-left paragraph.
const RLM: char = '\u{200F}';

/// Slack below the width so float sums in cosmic-text's own wrap (which
/// adds the same advances in another order) never find a broken line a
/// hair too wide and wrap it again.
const SLACK: f32 = 0.5;

/// `s` with line breaks inserted so that every line, shaped at `size`
/// logical pixels, is at most `width` wide. Existing line breaks are kept;
/// trailing spaces at a break are dropped.
pub fn break_lines(s: &str, size: f32, width: f32) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, para) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mark = if is_rtl(para, size) { RLM } else { LRM };
        for (j, line) in para_lines(para, size, width).into_iter().enumerate() {
            if j > 0 {
                out.push('\n');
                out.push(mark);
            }
            out.push_str(line);
        }
    }
    out
}

/// Whether `para`'s base direction is right to left (its first strong
/// character, as cosmic-text decides it).
fn is_rtl(para: &str, size: f32) -> bool {
    let mut system = iced_graphics::text::font_system()
        .write()
        .expect("font system lock");
    let fs = system.raw();
    let mut buffer = Buffer::new(fs, Metrics::new(size, size * 1.3));
    buffer.set_size(fs, None, None);
    let attrs = Attrs::new().family(Family::SansSerif);
    buffer.set_text(fs, para, &attrs, CosmicShaping::Advanced, None);
    buffer.shape_until_scroll(fs, false);
    buffer.layout_runs().next().is_some_and(|r| r.rtl)
}

fn fits(s: &str, size: f32, width: f32) -> bool {
    line_width(s, size) <= width - SLACK
}

/// The lines of one paragraph (no `\n` in it), greedily filled.
fn para_lines(para: &str, size: f32, width: f32) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    // The furthest break opportunity after `start` whose line fits.
    let mut fit: Option<usize> = None;
    for (end, _) in unicode_linebreak::linebreaks(para) {
        if fits(para[start..end].trim_end(), size, width) {
            fit = Some(end);
            continue;
        }
        if let Some(b) = fit.take() {
            lines.push(para[start..b].trim_end());
            start = b;
            if fits(para[start..end].trim_end(), size, width) {
                fit = Some(end);
                continue;
            }
        }
        // One word wider than the whole line: break it between graphemes.
        start = break_word(para, start, end, size, width, &mut lines);
        fit = (start < end).then_some(end);
    }
    let rest = para[start..].trim_end();
    if !rest.is_empty() || lines.is_empty() {
        lines.push(rest);
    }
    lines
}

/// Pushes full lines of `para[start..end]` cut between grapheme clusters;
/// returns where the last, partial line starts.
fn break_word<'a>(
    para: &'a str,
    mut start: usize,
    end: usize,
    size: f32,
    width: f32,
    lines: &mut Vec<&'a str>,
) -> usize {
    let word = &para[start..end];
    let base = start;
    for (i, g) in word.grapheme_indices(true) {
        let at = base + i;
        let next = at + g.len();
        // Always at least one grapheme a line, even one wider than the box.
        if at > start && !fits(para[start..next].trim_end(), size, width) {
            lines.push(&para[start..at]);
            start = at;
        }
    }
    start
}

/// A text of the student surfaces that wraps at its real width with
/// [`break_lines`]: for anything a teacher, student or school writes (any
/// script, any direction). Fully shaped like [`crate::style::words`].
pub struct Paragraph {
    source: String,
    size: f32,
    colour: [u8; 3],
    centred: bool,
    inner: Text<'static, Theme, Renderer>,
}

impl Paragraph {
    /// `s` at `size` logical pixels in `colour`, starting at its line's
    /// edge (left, or right for a right-to-left paragraph).
    pub fn new(s: impl Into<String>, size: f32, colour: [u8; 3]) -> Self {
        let source = s.into();
        let inner = build(source.clone(), size, colour, false);
        Self {
            source,
            size,
            colour,
            centred: false,
            inner,
        }
    }

    /// Centred in the whole width it is given.
    pub fn centred(mut self) -> Self {
        self.centred = true;
        self.inner = build(self.source.clone(), self.size, self.colour, true);
        self
    }
}

fn build(s: String, size: f32, colour: [u8; 3], centred: bool) -> Text<'static, Theme, Renderer> {
    let t = iced_widget::text(s)
        .size(size)
        .color(rgb(colour))
        .shaping(Shaping::Advanced)
        .wrapping(Wrapping::WordOrGlyph);
    if centred {
        t.align_x(Horizontal::Center).width(Length::Fill)
    } else {
        t
    }
}

impl<M> Widget<M, Theme, Renderer> for Paragraph {
    fn size(&self) -> Size<Length> {
        Widget::<M, Theme, Renderer>::size(&self.inner)
    }

    fn layout(
        &mut self,
        tree: &mut Tree,
        renderer: &Renderer,
        limits: &layout::Limits,
    ) -> layout::Node {
        let width = limits.max().width;
        if width.is_finite() && width > 0.0 {
            let broken = break_lines(&self.source, self.size, width);
            self.inner = build(broken, self.size, self.colour, self.centred);
        }
        Widget::<M, Theme, Renderer>::layout(&mut self.inner, tree, renderer, limits)
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut Renderer,
        theme: &Theme,
        style: &renderer::Style,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
    ) {
        Widget::<M, Theme, Renderer>::draw(
            &self.inner,
            tree,
            renderer,
            theme,
            style,
            layout,
            cursor,
            viewport,
        );
    }

    fn tag(&self) -> tree::Tag {
        Widget::<M, Theme, Renderer>::tag(&self.inner)
    }

    fn state(&self) -> tree::State {
        Widget::<M, Theme, Renderer>::state(&self.inner)
    }

    fn operate(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        renderer: &Renderer,
        operation: &mut dyn Operation,
    ) {
        // The text as drawn (with its breaks), so the glyph check sees it.
        Widget::<M, Theme, Renderer>::operate(&mut self.inner, tree, layout, renderer, operation);
    }
}

impl<'a, M: 'a> From<Paragraph> for Element<'a, M, Theme, Renderer> {
    fn from(p: Paragraph) -> Self {
        Element::new(p)
    }
}
