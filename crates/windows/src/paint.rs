//! The one seam between the windows and what they show: a [`SurfacePainter`]
//! turns a [`Surface`] into BGRA pixels at a size and interprets pointer and
//! key input on it. [`CanvasPainter`] draws with `lectern_desktop::Canvas`
//! (8×8 bitmap text); a real UI toolkit replaces it by implementing the same
//! trait ([`crate::WindowsDesktop::with_painter`]).

use std::sync::Arc;

use lectern_desktop::{Canvas, Frame, Rgb, BROADCAST_BG, LOCK_BG, LOGICAL_H, LOGICAL_W};

/// What a window shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surface {
    /// The lock screen: the school's name and the teacher's text, if any.
    Lock {
        /// School name ("" when unknown).
        school: String,
        /// The teacher's text.
        text: Option<String>,
    },
    /// A teacher's message with an OK button.
    Message {
        /// The message.
        text: String,
    },
    /// "May `teacher` see your screen?" with Allow and Deny buttons.
    Ask {
        /// Who asks.
        teacher: String,
    },
    /// A broadcast: a title bar over the latest frame.
    Broadcast {
        /// The title.
        title: String,
        /// The latest frame, if one arrived.
        frame: Option<Arc<Frame>>,
    },
}

/// Input on a surface, in the window's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceInput {
    /// The pointer moved.
    PointerMove {
        /// X.
        x: i32,
        /// Y.
        y: i32,
    },
    /// The primary button went down.
    PointerDown {
        /// X.
        x: i32,
        /// Y.
        y: i32,
    },
    /// The primary button came up (a click ends here).
    PointerUp {
        /// X.
        x: i32,
        /// Y.
        y: i32,
    },
    /// A key went down (virtual-key code).
    KeyDown(u16),
    /// A key came up.
    KeyUp(u16),
    /// A character was typed.
    Char(char),
}

/// What input on a surface asks the backend to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceAction {
    /// Close this surface (the message's OK).
    Dismiss,
    /// The student answered the question.
    Answer(bool),
    /// Draw the surface again (its look changed).
    Redraw,
}

/// Draws surfaces and interprets input on them; lives on the window thread.
pub trait SurfacePainter: Send {
    /// `surface` as `width * height * 4` bytes of BGRA, rows top to bottom.
    fn paint(&mut self, surface: &Surface, width: u32, height: u32) -> Vec<u8>;
    /// Handles input on `surface` shown at `width`×`height`.
    fn input(
        &mut self,
        surface: &Surface,
        width: u32,
        height: u32,
        input: SurfaceInput,
    ) -> Option<SurfaceAction>;
}

/// Background of messages.
pub const MESSAGE_BG: Rgb = [250, 246, 230];
/// Background of the remote-view question.
pub const PROMPT_BG: Rgb = [236, 240, 250];
/// The OK button of a message, in logical 1280×720 coordinates (x, y, w, h).
pub const OK_BUTTON: (u32, u32, u32, u32) = (490, 520, 300, 120);
/// The Allow button of the question (logical).
pub const ALLOW_BUTTON: (u32, u32, u32, u32) = (200, 500, 360, 140);
/// The Deny button of the question (logical).
pub const DENY_BUTTON: (u32, u32, u32, u32) = (720, 500, 360, 140);
/// Height of the broadcast's title bar (logical).
const TITLE_H: u32 = 60;

const VK_RETURN: u16 = 0x0D;
const VK_ESCAPE: u16 = 0x1B;

/// Draws with the 8×8 bitmap font of `lectern_desktop::Canvas`, laid out in
/// logical 1280×720 coordinates and stretched to the window.
#[derive(Debug, Default)]
pub struct CanvasPainter;

impl CanvasPainter {
    fn draw(surface: &Surface, width: u32) -> Frame {
        let white = [255, 255, 255];
        let ink = [20, 20, 30];
        match surface {
            Surface::Lock { school, text } => {
                let mut c = Canvas::new(width, LOCK_BG);
                c.text(80, 160, 48, 1120, "This computer is locked", white);
                if !school.is_empty() {
                    c.text(80, 80, 32, 1120, school, [200, 200, 230]);
                }
                if let Some(t) = text {
                    c.text(80, 300, 32, 1120, t, white);
                }
                c.finish()
            }
            Surface::Message { text } => {
                let mut c = Canvas::new(width, MESSAGE_BG);
                c.text(60, 40, 32, 1160, "Message from your teacher", [90, 60, 0]);
                c.text(60, 120, 32, 1160, text, ink);
                button(&mut c, OK_BUTTON, "OK", [40, 110, 200]);
                c.finish()
            }
            Surface::Ask { teacher } => {
                let mut c = Canvas::new(width, PROMPT_BG);
                let q = format!("{teacher} asks to see your screen live. Allow?");
                c.text(60, 80, 40, 1160, &q, ink);
                button(&mut c, ALLOW_BUTTON, "Allow", [30, 140, 60]);
                button(&mut c, DENY_BUTTON, "Deny", [180, 40, 40]);
                c.finish()
            }
            Surface::Broadcast { title, .. } => {
                let mut c = Canvas::new(width, BROADCAST_BG);
                c.rect(0, 0, LOGICAL_W, TITLE_H, [0, 0, 0]);
                c.text(20, 14, 32, 1240, title, white);
                c.finish()
            }
        }
    }
}

fn button(c: &mut Canvas, (x, y, w, h): (u32, u32, u32, u32), label: &str, bg: Rgb) {
    c.rect(x, y, w, h, bg);
    let tx = x + w / 2 - (label.len() as u32 * 40) / 2;
    c.text(tx, y + h / 2 - 20, 40, w, label, [255, 255, 255]);
}

fn hit((bx, by, bw, bh): (u32, u32, u32, u32), (x, y): (u32, u32)) -> bool {
    (bx..bx + bw).contains(&x) && (by..by + bh).contains(&y)
}

/// A window point in logical coordinates.
fn logical(x: i32, y: i32, width: u32, height: u32) -> (u32, u32) {
    let lx = x.max(0) as u64 * u64::from(LOGICAL_W) / u64::from(width.max(1));
    let ly = y.max(0) as u64 * u64::from(LOGICAL_H) / u64::from(height.max(1));
    (lx as u32, ly as u32)
}

impl SurfacePainter for CanvasPainter {
    fn paint(&mut self, surface: &Surface, width: u32, height: u32) -> Vec<u8> {
        let (width, height) = (width.max(1), height.max(1));
        let drawn = Self::draw(surface, width);
        let mut out = stretch_to_bgra(&drawn, width, height);
        if let Surface::Broadcast {
            frame: Some(frame), ..
        } = surface
        {
            let top = (u64::from(TITLE_H) * u64::from(height) / u64::from(LOGICAL_H)) as u32;
            fit_into(&mut out, width, height, top, frame);
        }
        out
    }

    fn input(
        &mut self,
        surface: &Surface,
        width: u32,
        height: u32,
        input: SurfaceInput,
    ) -> Option<SurfaceAction> {
        match (surface, input) {
            (Surface::Message { .. }, SurfaceInput::KeyDown(VK_RETURN | VK_ESCAPE)) => {
                Some(SurfaceAction::Dismiss)
            }
            (Surface::Message { .. }, SurfaceInput::PointerUp { x, y }) => {
                hit(OK_BUTTON, logical(x, y, width, height)).then_some(SurfaceAction::Dismiss)
            }
            (Surface::Ask { .. }, SurfaceInput::PointerUp { x, y }) => {
                let p = logical(x, y, width, height);
                if hit(ALLOW_BUTTON, p) {
                    Some(SurfaceAction::Answer(true))
                } else if hit(DENY_BUTTON, p) {
                    Some(SurfaceAction::Answer(false))
                } else {
                    None
                }
            }
            (Surface::Ask { .. }, SurfaceInput::KeyDown(VK_ESCAPE)) => {
                Some(SurfaceAction::Answer(false))
            }
            _ => None,
        }
    }
}

/// `f` (RGB, any size) stretched to `w`×`h` BGRA by nearest neighbour.
fn stretch_to_bgra(f: &Frame, w: u32, h: u32) -> Vec<u8> {
    let mut out = vec![0u8; (w * h * 4) as usize];
    fit_rect(&mut out, w, (0, 0, w, h), f);
    out
}

/// Draws `f` into the area below `top`, aspect kept, centred.
fn fit_into(out: &mut [u8], w: u32, h: u32, top: u32, f: &Frame) {
    let (aw, ah) = (w, h.saturating_sub(top));
    if aw == 0 || ah == 0 || f.width == 0 || f.height == 0 {
        return;
    }
    let (mut dw, mut dh) = (
        aw,
        (u64::from(aw) * u64::from(f.height) / u64::from(f.width)) as u32,
    );
    if dh > ah {
        dh = ah;
        dw = (u64::from(ah) * u64::from(f.width) / u64::from(f.height)) as u32;
    }
    fit_rect(out, w, ((aw - dw) / 2, top + (ah - dh) / 2, dw, dh), f);
}

/// Nearest-neighbour copy of `f` into the rectangle of a `stride_w`-wide BGRA buffer.
fn fit_rect(out: &mut [u8], stride_w: u32, (x0, y0, dw, dh): (u32, u32, u32, u32), f: &Frame) {
    for y in 0..dh {
        let sy = (u64::from(y) * u64::from(f.height) / u64::from(dh.max(1))) as u32;
        for x in 0..dw {
            let sx = (u64::from(x) * u64::from(f.width) / u64::from(dw.max(1))) as u32;
            let s = ((sy * f.width + sx) * 3) as usize;
            let d = (((y0 + y) * stride_w + x0 + x) * 4) as usize;
            out[d] = f.rgb[s + 2];
            out[d + 1] = f.rgb[s + 1];
            out[d + 2] = f.rgb[s];
            out[d + 3] = 255;
        }
    }
}
