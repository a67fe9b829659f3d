//! The one seam between the windows and what they show: a [`SurfacePainter`]
//! turns a [`Surface`] into BGRA pixels at a size and interprets pointer and
//! key input on it. Each window gets its own painter, made on the window
//! thread by a [`PainterFactory`]; the default one is
//! [`crate::StudentUiPainter`] (the same iced surfaces as the Linux agent).

use std::sync::Arc;

use lectern_desktop::Frame;

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
        /// Seconds left to answer, counting down.
        seconds_left: u32,
    },
    /// A broadcast: a title bar over the latest frame.
    Broadcast {
        /// The title.
        title: String,
        /// The latest frame, if one arrived.
        frame: Option<Arc<Frame>>,
    },
    /// "`teacher` is controlling this computer": a strip at the top edge
    /// that lets input through.
    Controlled {
        /// Who controls.
        teacher: String,
    },
    /// The student sign-in of a shared computer over the whole screen: a
    /// user name, then a picture password tapped on the grid of
    /// `lectern_proto::signin::PICTURES` or a text password.
    SignIn {
        /// School name ("" when unknown).
        school: String,
        /// Why the last try was refused, if it was.
        error: Option<String>,
        /// Other schools the student may switch to.
        schools: Vec<String>,
    },
    /// "Sign out" in a corner while a student is signed in on a shared
    /// computer.
    SignOut,
    /// The registration form: one field for the school's code, while the
    /// agent has neither a token nor a code.
    Register {
        /// Why the code typed before was refused, if it was.
        error: Option<String>,
    },
    /// The school's acceptable use policy over the whole screen: its text
    /// scrolls, and "I accept" (or Enter) accepts it.
    AcceptableUse {
        /// School name ("" when unknown).
        school: String,
        /// The policy's title.
        title: String,
        /// Its version number, shown to the student.
        version: i64,
        /// Its text, paragraphs separated by blank lines.
        text: String,
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
    /// The mouse wheel turned over (`x`, `y`) by `delta` (`WHEEL_DELTA`,
    /// 120, per notch; positive: away from the student, i.e. scroll up).
    Wheel {
        /// X.
        x: i32,
        /// Y.
        y: i32,
        /// The turn.
        delta: i32,
    },
}

/// What input on a surface asks the backend to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurfaceAction {
    /// Close this surface (the message's OK).
    Dismiss,
    /// The student answered the question.
    Answer(bool),
    /// Draw the surface again (its look changed).
    Redraw,
    /// The student accepted the acceptable use policy shown.
    AcceptAup,
    /// The registration form was sent with this code (as typed, trimmed).
    Register {
        /// The code.
        code: String,
    },
    /// A student signed in with this name and secret.
    SignIn {
        /// The user name typed.
        name: String,
        /// The pictures tapped or the password typed.
        secret: lectern_proto::signin::StudentSecret,
    },
    /// The signed-in student pressed "Sign out".
    SignOut,
    /// The student chose another school on the sign-in.
    SwitchSchool {
        /// Its name, as offered.
        school: String,
    },
}

/// Draws the surfaces of one window and interprets input on them. It lives
/// on the window thread (so it need not be `Send`: the UI toolkit's state is
/// not).
pub trait SurfacePainter {
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
    /// The school's logo for the lock screen (none: no logo). Painters that
    /// draw no logo keep this default and ignore it.
    fn set_logo(&mut self, _logo: Option<lectern_student_ui::Logo>) {}
    /// Physical pixels per logical pixel of the window's monitor (its DPI
    /// over 96): text and buttons are drawn that much larger. Painters that
    /// draw at one size keep this default and ignore it.
    fn set_scale(&mut self, _scale: f32) {}
}

/// Makes the painter of each new window, on the window thread.
pub type PainterFactory = Box<dyn Fn() -> Box<dyn SurfacePainter> + Send>;

/// Draws `f` into the area below `top`, aspect kept, centred.
pub(crate) fn fit_into(out: &mut [u8], w: u32, h: u32, top: u32, f: &Frame) {
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
