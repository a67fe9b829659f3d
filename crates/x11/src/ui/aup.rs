//! The acceptable use policy on the X11 desktop: a full-screen
//! override-redirect window like the lock screen (kept on top, keyboard
//! and pointer grabbed, retried on every tick while another client holds
//! them), except that it takes input: the text scrolls (wheel, arrows) and
//! "I accept" (or Enter) queues the acceptance for the agent and closes it.
//! A teacher's lock still goes over it.

use lectern_desktop::StudentRequest;
use lectern_proto::aup::AcceptableUse;
use lectern_student_ui::Surface as View;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, EventMask, GrabMode, GrabStatus, PropMode, Window,
};
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use super::{Ui, Win, XResult};

/// `WM_NAME` of the policy window (tests find it by this).
pub const AUP_WINDOW_NAME: &str = "Lectern: acceptable use policy";

/// The policy window and the grabs it holds.
pub(super) struct AupWin {
    pub(super) s: Win,
    /// The version shown (what an acceptance names).
    version_id: i64,
    keyboard: bool,
    pointer: bool,
}

fn view(p: &AcceptableUse, school: &str) -> View {
    View::AcceptableUse {
        school: school.to_owned(),
        title: p.title.clone(),
        version: p.version,
        text: p.text.clone(),
    }
}

impl Ui {
    /// Shows `policy` (replacing one shown) or takes the window away.
    pub(super) fn show_aup(&mut self, policy: Option<AcceptableUse>, school: &str) -> XResult<()> {
        let Some(p) = policy else {
            return self.close_aup();
        };
        if let Some(a) = &mut self.aup {
            a.version_id = p.version_id;
            a.s.ui.set_surface(view(&p, school));
            self.paint.redraw(&self.conn, &mut a.s)?;
            return self.restack();
        }
        let (w, h) = self.screen_size()?;
        let s = self.open(
            (0, 0, w, h),
            true,
            view(&p, school),
            EventMask::VISIBILITY_CHANGE
                | EventMask::KEY_PRESS
                | EventMask::BUTTON_PRESS
                | EventMask::BUTTON_RELEASE
                | EventMask::POINTER_MOTION,
        )?;
        self.conn.change_property8(
            PropMode::REPLACE,
            s.win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            AUP_WINDOW_NAME.as_bytes(),
        )?;
        self.map_below_lock(s.win)?;
        self.aup = Some(AupWin {
            s,
            version_id: p.version_id,
            keyboard: false,
            pointer: false,
        });
        self.restack()?;
        self.grab_aup()?;
        Ok(())
    }

    /// Takes the policy window away and lets the keyboard and pointer go
    /// (unless a lock holds them).
    pub(super) fn close_aup(&mut self) -> XResult<()> {
        let Some(a) = self.aup.take() else {
            return Ok(());
        };
        if self.lock.is_none() {
            self.conn.ungrab_keyboard(CURRENT_TIME)?;
            self.conn.ungrab_pointer(CURRENT_TIME)?;
        }
        self.destroy(&a.s)?;
        self.restack()
    }

    /// Takes the keyboard and pointer for the policy window, unless a lock
    /// has them; true when held (or not needed).
    pub(super) fn grab_aup(&mut self) -> XResult<bool> {
        if self.lock.is_some() {
            return Ok(true);
        }
        let Some(a) = &mut self.aup else {
            return Ok(true);
        };
        if !a.keyboard {
            let r = self
                .conn
                .grab_keyboard(
                    false,
                    a.s.win,
                    CURRENT_TIME,
                    GrabMode::ASYNC,
                    GrabMode::ASYNC,
                )?
                .reply()?;
            a.keyboard = r.status == GrabStatus::SUCCESS;
        }
        if !a.pointer {
            let r = self
                .conn
                .grab_pointer(
                    false,
                    a.s.win,
                    EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE | EventMask::POINTER_MOTION,
                    GrabMode::ASYNC,
                    GrabMode::ASYNC,
                    a.s.win,
                    NONE,
                    CURRENT_TIME,
                )?
                .reply()?;
            a.pointer = r.status == GrabStatus::SUCCESS;
        }
        Ok(a.keyboard && a.pointer)
    }

    /// The lock went: its ungrab also let the policy's grabs go.
    pub(super) fn aup_after_unlock(&mut self) -> XResult<()> {
        if let Some(a) = &mut self.aup {
            a.keyboard = false;
            a.pointer = false;
        }
        self.grab_aup().map(|_| ())
    }

    /// Whether the policy's grabs need another try.
    pub(super) fn aup_needs_grab(&self) -> bool {
        self.lock.is_none()
            && self
                .aup
                .as_ref()
                .is_some_and(|a| !(a.keyboard && a.pointer))
    }

    /// The student accepted in `win`: queue it for the agent and close the
    /// window. False if `win` is not the policy window.
    pub(super) fn aup_accepted(&mut self, win: Window) -> XResult<bool> {
        let Some(version_id) = self
            .aup
            .as_ref()
            .filter(|a| a.s.win == win)
            .map(|a| a.version_id)
        else {
            return Ok(false);
        };
        {
            let mut shared = self.lock_shared();
            shared
                .requests
                .push(StudentRequest::AcceptAup { version_id });
            if let Some(c) = &shared.changes {
                c.state.notify_one();
            }
        }
        self.close_aup()?;
        Ok(true)
    }

    /// The wheel turned over `win` (button 4 up, 5 down).
    pub(super) fn wheel(&mut self, win: Window, x: i16, y: i16, button: u8) -> XResult<()> {
        let Some(a) = self.aup.as_mut().filter(|a| a.s.win == win) else {
            return Ok(());
        };
        let lines = if button == 4 { -1.0 } else { 1.0 };
        a.s.ui.wheel(x.into(), y.into(), lines);
        a.s.dirty = true;
        Ok(())
    }
}
