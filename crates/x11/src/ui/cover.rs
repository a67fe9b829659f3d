//! The windows that cover the screen until the student acts: the school's
//! acceptable use policy ("I accept") and the student sign-in of a shared
//! computer (issue 16 point 3). Either is one full-screen
//! override-redirect window like the lock screen (kept on top, keyboard
//! and pointer grabbed, retried on every tick while another client holds
//! them), except that it takes input: the policy's text scrolls (wheel,
//! arrows) and "I accept" (or Enter) queues the acceptance for the agent
//! and closes it; the sign-in queues the name and pictures or password and
//! stays until the agent takes it away (signed in) or shows why not.
//!
//! One window serves both, sign-in first: a policy waiting to be accepted
//! shows once the student has signed in (the server then offers the
//! student's own). A teacher's lock goes over either.

use lectern_desktop::{SignInScreen, StudentRequest};
use lectern_proto::aup::AcceptableUse;
use lectern_proto::signin::{StudentSecret, PICTURES};
use lectern_student_ui::{Picture, Secret, Surface as View};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, EventMask, PropMode, Window};
use x11rb::wrapper::ConnectionExt as _;
use x11rb::CURRENT_TIME;

use super::{Ui, Win, XResult};

/// `WM_NAME` of the window while it shows the policy (tests find it by
/// this).
pub const AUP_WINDOW_NAME: &str = "Lectern: acceptable use policy";
/// `WM_NAME` of the window while it shows the student sign-in.
pub const SIGN_IN_WINDOW_NAME: &str = "Lectern: sign in";

/// What the covering window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Covered {
    /// The policy of this version (what an acceptance names).
    Aup { version_id: i64 },
    /// The student sign-in.
    SignIn,
}

/// The covering window and the grabs it holds.
pub(super) struct CoverWin {
    pub(super) s: Win,
    what: Covered,
    keyboard: bool,
    pointer: bool,
}

/// What the agent wants covered, kept so either comes back when the other
/// goes.
#[derive(Default)]
pub(super) struct Wanted {
    /// The policy waiting to be accepted, with the school's name.
    aup: Option<(AcceptableUse, String)>,
    /// The sign-in, with the school's name (and why the last try failed,
    /// and the schools offered instead).
    sign_in: Option<(String, SignInScreen)>,
}

fn aup_view(p: &AcceptableUse, school: &str) -> View {
    View::AcceptableUse {
        school: school.to_owned(),
        title: p.title.clone(),
        version: p.version,
        text: p.text.clone(),
    }
}

/// The sign-in surface for `school`, with the protocol's picture grid.
pub fn sign_in_view(school: &str, screen: &SignInScreen) -> View {
    View::SignIn {
        school: school.to_owned(),
        pictures: PICTURES
            .iter()
            .map(|(emoji, name)| Picture {
                emoji: (*emoji).to_owned(),
                name: (*name).to_owned(),
            })
            .collect(),
        error: screen.error.clone(),
        schools: screen.schools.clone(),
    }
}

impl Ui {
    /// Shows `policy` (replacing one shown) or takes it away.
    pub(super) fn show_aup(&mut self, policy: Option<AcceptableUse>, school: &str) -> XResult<()> {
        self.wanted.aup = policy.map(|p| (p, school.to_owned()));
        self.show_cover()
    }

    /// Shows the student sign-in (again, with a new reason) or takes it
    /// away.
    pub(super) fn show_sign_in(
        &mut self,
        screen: Option<SignInScreen>,
        school: &str,
    ) -> XResult<()> {
        self.wanted.sign_in = screen.map(|s| (school.to_owned(), s));
        self.show_cover()
    }

    /// What the window should show now: sign-in first.
    fn wanted_view(&self) -> Option<(View, Covered, &'static str)> {
        if let Some((school, screen)) = &self.wanted.sign_in {
            let view = sign_in_view(school, screen);
            return Some((view, Covered::SignIn, SIGN_IN_WINDOW_NAME));
        }
        let (p, school) = self.wanted.aup.as_ref()?;
        let what = Covered::Aup {
            version_id: p.version_id,
        };
        Some((aup_view(p, school), what, AUP_WINDOW_NAME))
    }

    /// Opens, changes or closes the covering window to show what is wanted.
    fn show_cover(&mut self) -> XResult<()> {
        let Some((view, what, name)) = self.wanted_view() else {
            return self.close_cover();
        };
        if let Some(c) = &mut self.cover {
            c.what = what;
            c.s.ui.set_surface(view);
            self.conn.change_property8(
                PropMode::REPLACE,
                c.s.win,
                AtomEnum::WM_NAME,
                AtomEnum::STRING,
                name.as_bytes(),
            )?;
            self.paint.redraw(&self.conn, &mut c.s)?;
            return self.restack();
        }
        let (w, h) = self.screen_size()?;
        let s = self.open_with_logo(
            (0, 0, w, h),
            view,
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
            name.as_bytes(),
        )?;
        self.map_below_lock(s.win)?;
        self.cover = Some(CoverWin {
            s,
            what,
            keyboard: false,
            pointer: false,
        });
        self.restack()?;
        self.grab_cover()?;
        Ok(())
    }

    /// Takes the covering window away and lets the keyboard and pointer go
    /// (unless a lock holds them).
    fn close_cover(&mut self) -> XResult<()> {
        let Some(a) = self.cover.take() else {
            return Ok(());
        };
        if self.lock.is_none() {
            self.conn.ungrab_keyboard(CURRENT_TIME)?;
            self.conn.ungrab_pointer(CURRENT_TIME)?;
        }
        self.destroy(&a.s)?;
        self.restack()
    }

    /// Takes the keyboard and pointer for the covering window, unless a
    /// lock has them; true when held (or not needed).
    pub(super) fn grab_cover(&mut self) -> XResult<bool> {
        if self.lock.is_some() {
            return Ok(true);
        }
        let Some(a) = &mut self.cover else {
            return Ok(true);
        };
        let events =
            EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE | EventMask::POINTER_MOTION;
        super::grab_input(
            &self.conn,
            a.s.win,
            (&mut a.keyboard, &mut a.pointer),
            events,
        )
    }

    /// The lock went: its ungrab also let the covering window's grabs go.
    pub(super) fn cover_after_unlock(&mut self) -> XResult<()> {
        if let Some(a) = &mut self.cover {
            a.keyboard = false;
            a.pointer = false;
        }
        self.grab_cover().map(|_| ())
    }

    /// Whether the covering window's grabs need another try.
    pub(super) fn cover_needs_grab(&self) -> bool {
        self.lock.is_none()
            && self
                .cover
                .as_ref()
                .is_some_and(|a| !(a.keyboard && a.pointer))
    }

    /// What `win` shows, if it is the covering window.
    fn covered(&self, win: Window) -> Option<Covered> {
        self.cover
            .as_ref()
            .filter(|a| a.s.win == win)
            .map(|a| a.what)
    }

    /// Queues `request` for the agent and wakes it.
    fn queue_request(&self, request: StudentRequest) {
        let mut shared = self.lock_shared();
        shared.requests.push(request);
        if let Some(c) = &shared.changes {
            c.state.notify_one();
        }
    }

    /// The student accepted in `win`: queue it for the agent and take the
    /// policy away. False if `win` does not show the policy.
    pub(super) fn aup_accepted(&mut self, win: Window) -> XResult<bool> {
        let Some(Covered::Aup { version_id }) = self.covered(win) else {
            return Ok(false);
        };
        self.queue_request(StudentRequest::AcceptAup { version_id });
        self.wanted.aup = None;
        self.show_cover()?;
        Ok(true)
    }

    /// The student signed in on `win`: queue it for the agent, which takes
    /// the screen away or shows why not. False if `win` does not show the
    /// sign-in.
    pub(super) fn signed_in(&mut self, win: Window, name: &str, secret: &Secret) -> XResult<bool> {
        if self.covered(win) != Some(Covered::SignIn) {
            return Ok(false);
        }
        let secret = match secret {
            Secret::Pictures(picture) => StudentSecret::Picture {
                picture: picture.clone(),
            },
            Secret::Text(password) => StudentSecret::Text {
                password: password.clone(),
            },
        };
        self.queue_request(StudentRequest::SignIn {
            name: name.to_owned(),
            secret,
        });
        Ok(true)
    }

    /// The student chose another school on `win`: queue it for the agent,
    /// which reconnects there (and shows that school's screens). False if
    /// `win` does not show the sign-in.
    pub(super) fn switched_school(&mut self, win: Window, school: &str) -> XResult<bool> {
        if self.covered(win) != Some(Covered::SignIn) {
            return Ok(false);
        }
        self.queue_request(StudentRequest::SwitchSchool {
            school: school.to_owned(),
        });
        Ok(true)
    }

    /// The wheel turned over `win` (button 4 up, 5 down).
    pub(super) fn wheel(&mut self, win: Window, x: i16, y: i16, button: u8) -> XResult<()> {
        let Some(a) = self.cover.as_mut().filter(|a| a.s.win == win) else {
            return Ok(());
        };
        let lines = if button == 4 { -1.0 } else { 1.0 };
        a.s.ui.wheel(x.into(), y.into(), lines);
        a.s.dirty = true;
        Ok(())
    }
}
