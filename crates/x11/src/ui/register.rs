//! The registration form on the X11 desktop: a centred dialog window (not
//! override-redirect, so the window manager decorates it and it never holds
//! the screen) asking for the school's code while the agent has neither a
//! token nor a code. Enter or "Register" sends the typed code to the agent
//! and closes it; asked again (a refused code), it reopens with the reason
//! and what was typed.

use lectern_student_ui::Surface as View;
use tokio::sync::oneshot;
use x11rb::protocol::xproto::EventMask;

use super::{Ui, Win, XResult};

/// `WM_NAME` of the registration window (tests find it by this).
pub const REGISTER_WINDOW_NAME: &str = "Lectern: register this computer";

/// The form and where its answer goes.
pub(super) struct RegisterWin {
    pub(super) s: Win,
    answer: Option<oneshot::Sender<String>>,
}

impl Ui {
    /// Shows the form (or, if it is open, its new reason), answering on
    /// `answer`; an earlier question's sender is dropped unanswered.
    pub(super) fn ask_code(
        &mut self,
        error: Option<String>,
        answer: oneshot::Sender<String>,
    ) -> XResult<()> {
        let view = View::Register { error };
        if let Some(r) = &mut self.register {
            r.answer = Some(answer);
            r.s.ui.set_surface(view);
            self.paint.redraw(&self.conn, &mut r.s)?;
            return self.restack();
        }
        let (sw, sh) = self.screen_size()?;
        let w = self.px(720).min(sw);
        let h = self.px(540).min(sh);
        let (x, y) = (((sw - w) / 2) as i16, ((sh - h) / 2) as i16);
        let s = self.open(
            (x, y, w, h),
            false,
            view,
            EventMask::BUTTON_PRESS
                | EventMask::BUTTON_RELEASE
                | EventMask::POINTER_MOTION
                | EventMask::LEAVE_WINDOW
                | EventMask::KEY_PRESS
                | EventMask::STRUCTURE_NOTIFY,
        )?;
        self.dialog_hints(&s, x, y, REGISTER_WINDOW_NAME)?;
        self.map_below_lock(s.win)?;
        self.register = Some(RegisterWin {
            s,
            answer: Some(answer),
        });
        self.restack()
    }

    /// The form's answer: sends the code and closes it.
    pub(super) fn registered(&mut self, code: String) -> XResult<()> {
        let Some(mut r) = self.register.take() else {
            return Ok(());
        };
        if let Some(tx) = r.answer.take() {
            let _ = tx.send(code);
        }
        self.destroy(&r.s)
    }
}
