//! The student's requests on the X11 desktop: a small corner widget
//! (bottom right, override-redirect, hidden while the screen is locked)
//! with "Raise hand" and "Chat", the keyboard shortcut Ctrl+Alt+H (grabbed
//! on the root window) that opens the raise-hand form, the form itself and
//! the chat. What the student sends waits in [`super::Shared::requests`]
//! for the agent; what the server answers comes as [`Cmd::Notice`].

use lectern_desktop::{StudentNotice, StudentRequest};
use lectern_student_ui::{Answer, ChatEntry, Surface as View};
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, EventMask, GrabMode, ModMask, PropMode, Window,
};
use x11rb::wrapper::ConnectionExt as _;

use super::{Ui, Win, XResult};

/// The shortcut's key (keysym `h`) and modifiers: Ctrl+Alt+H ("help"), which
/// no common desktop binds.
pub const HOTKEY_KEYSYM: u32 = 0x68;
/// Ctrl+Alt.
fn hotkey_mods() -> ModMask {
    ModMask::CONTROL | ModMask::M1
}

/// The corner widget's `WM_NAME`.
pub const HAND_BUTTON_NAME: &str = "Lectern: raise hand";

/// Chat lines kept on the student's side (the newest).
const KEPT_LINES: usize = 100;

/// The request windows and what they show.
#[derive(Default)]
pub(super) struct Asks {
    /// The corner widget.
    button: Option<Win>,
    /// The raise-hand form.
    form: Option<Win>,
    /// The chat.
    chat: Option<Win>,
    /// The student's hand is raised (as the server last said).
    raised: bool,
    /// A student is signed in on this shared computer: the widget offers
    /// "Sign out".
    signed_in: bool,
    /// The chat so far.
    lines: Vec<ChatEntry>,
    /// The shortcut's keycode, once grabbed.
    pub(super) hotkey: Option<u8>,
}

impl Asks {
    /// The windows that take pointer and key input.
    pub(super) fn wins_mut(&mut self) -> impl Iterator<Item = &mut Win> {
        self.button
            .iter_mut()
            .chain(self.form.iter_mut())
            .chain(self.chat.iter_mut())
    }

    /// Every window, to destroy at the end.
    pub(super) fn take_all(&mut self) -> Vec<Win> {
        [self.button.take(), self.form.take(), self.chat.take()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn form_view(&self, status: Option<String>) -> View {
        View::Request {
            raised: self.raised,
            status,
        }
    }

    fn chat_view(&self, status: Option<String>) -> View {
        View::Chat {
            lines: self.lines.clone(),
            status,
        }
    }
}

fn input_events() -> EventMask {
    EventMask::BUTTON_PRESS
        | EventMask::BUTTON_RELEASE
        | EventMask::POINTER_MOTION
        | EventMask::LEAVE_WINDOW
        | EventMask::KEY_PRESS
        | EventMask::STRUCTURE_NOTIFY
}

impl Ui {
    /// Shows the corner widget and grabs the shortcut (with and without
    /// Num Lock and Caps Lock, which X counts as modifiers).
    pub(super) fn start_requests(&mut self) -> XResult<()> {
        self.show_hand_button()?;
        let Some(code) = self.keymap.keycode_of(HOTKEY_KEYSYM) else {
            tracing::warn!("no key types 'h': the raise-hand shortcut is off");
            return Ok(());
        };
        for extra in [
            ModMask::from(0u16),
            ModMask::M2,
            ModMask::LOCK,
            ModMask::M2 | ModMask::LOCK,
        ] {
            self.conn.grab_key(
                false,
                self.root,
                hotkey_mods() | extra,
                code,
                GrabMode::ASYNC,
                GrabMode::ASYNC,
            )?;
        }
        self.asks.hotkey = Some(code);
        Ok(())
    }

    /// Whether a key press on the root window is the shortcut.
    pub(super) fn is_hotkey(&self, window: Window, keycode: u8, state: u16) -> bool {
        let mods = u16::from(hotkey_mods());
        window == self.root && self.asks.hotkey == Some(keycode) && state & mods == mods
    }

    /// The corner widget, bottom right; not while locked.
    fn show_hand_button(&mut self) -> XResult<()> {
        let view = View::HandButton {
            raised: self.asks.raised,
            signed_in: self.asks.signed_in,
        };
        if let Some(b) = &mut self.asks.button {
            b.ui.set_surface(view);
            return self.paint.redraw(&self.conn, b);
        }
        if self.lock.is_some() {
            return Ok(());
        }
        let (sw, sh) = self.screen_size()?;
        let h = (sh / 20).clamp(36, 80);
        let wide = lectern_student_ui::hand_button_width(self.asks.signed_in);
        let w = ((f32::from(h) * wide) as u16).min(sw);
        let margin = (h / 4) as i16;
        let (x, y) = (sw as i16 - w as i16 - margin, sh as i16 - h as i16 - margin);
        // Pointer only: the widget never takes the keyboard focus (no
        // StructureNotify, so mapping it does not focus it as dialogs are).
        let events = EventMask::BUTTON_PRESS
            | EventMask::BUTTON_RELEASE
            | EventMask::POINTER_MOTION
            | EventMask::LEAVE_WINDOW;
        let s = self.open((x, y, w, h), true, view, events)?;
        // Named, so tools and tests can tell it from the surfaces.
        self.conn.change_property8(
            PropMode::REPLACE,
            s.win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            HAND_BUTTON_NAME.as_bytes(),
        )?;
        self.conn.map_window(s.win)?;
        self.asks.button = Some(s);
        Ok(())
    }

    /// A student signed in or out: the widget, made again at its new width,
    /// offers "Sign out" or no longer does.
    pub(super) fn set_signed_in(&mut self, signed_in: bool) -> XResult<()> {
        if self.asks.signed_in == signed_in {
            return Ok(());
        }
        self.asks.signed_in = signed_in;
        if self.asks.button.is_none() {
            return Ok(());
        }
        self.hide_hand_button()?;
        self.show_hand_button()
    }

    /// Hides the corner widget (the screen is being locked).
    pub(super) fn hide_hand_button(&mut self) -> XResult<()> {
        if let Some(b) = self.asks.button.take() {
            self.destroy(&b)?;
        }
        Ok(())
    }

    /// After the lock goes: the widget comes back.
    pub(super) fn unlocked(&mut self) -> XResult<()> {
        self.show_hand_button()
    }

    /// A centred dialog window for a request surface.
    fn open_dialog(&mut self, view: View, title: &str) -> XResult<Win> {
        let (sw, sh) = self.screen_size()?;
        let w = (sw / 2).clamp(sw.min(480), 960);
        let h = (w * 9 / 16).min(sh);
        let (x, y) = (((sw - w) / 2) as i16, ((sh - h) / 2) as i16);
        let s = self.open((x, y, w, h), false, view, input_events())?;
        self.dialog_hints(&s, x, y, title)?;
        self.map_below_lock(s.win)?;
        Ok(s)
    }

    /// Opens (or updates) the raise-hand form.
    pub(super) fn open_request(&mut self, status: Option<String>) -> XResult<()> {
        let view = self.asks.form_view(status);
        if let Some(f) = &mut self.asks.form {
            f.ui.set_surface(view);
            self.paint.redraw(&self.conn, f)?;
            return self.raise_asks();
        }
        let s = self.open_dialog(view, "Raise your hand")?;
        self.asks.form = Some(s);
        self.raise_asks()
    }

    /// Opens (or updates) the chat.
    pub(super) fn open_chat(&mut self, status: Option<String>) -> XResult<()> {
        let view = self.asks.chat_view(status);
        if let Some(c) = &mut self.asks.chat {
            c.ui.set_surface(view);
            self.paint.redraw(&self.conn, c)?;
            return self.raise_asks();
        }
        let s = self.open_dialog(view, "Chat with your teacher")?;
        self.asks.chat = Some(s);
        self.raise_asks()
    }

    /// Puts the request windows over the student's own (not over a lock).
    fn raise_asks(&self) -> XResult<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let above = x11rb::protocol::xproto::ConfigureWindowAux::new()
            .stack_mode(x11rb::protocol::xproto::StackMode::ABOVE);
        for w in [&self.asks.form, &self.asks.chat, &self.asks.button]
            .into_iter()
            .flatten()
        {
            self.conn.configure_window(w.win, &above)?;
        }
        Ok(())
    }

    fn close_form(&mut self) -> XResult<()> {
        if let Some(f) = self.asks.form.take() {
            self.destroy(&f)?;
        }
        Ok(())
    }

    fn close_chat(&mut self) -> XResult<()> {
        if let Some(c) = self.asks.chat.take() {
            self.destroy(&c)?;
        }
        Ok(())
    }

    fn queue(&self, r: StudentRequest) {
        let mut shared = self.lock_shared();
        shared.requests.push(r);
        if let Some(c) = &shared.changes {
            c.state.notify_one();
        }
    }

    /// Acts on an answer from one of the request windows; false if `win`
    /// is not one of them.
    pub(super) fn request_answer(&mut self, win: Window, answer: &Answer) -> XResult<bool> {
        let is = |w: &Option<Win>| w.as_ref().is_some_and(|w| w.win == win);
        let (button, form, chat) = (
            is(&self.asks.button),
            is(&self.asks.form),
            is(&self.asks.chat),
        );
        if !(button || form || chat) {
            return Ok(false);
        }
        match answer {
            Answer::OpenRequest => self.open_request(None)?,
            Answer::OpenChat => self.open_chat(None)?,
            Answer::SignOut if button => self.queue(StudentRequest::SignOut),
            Answer::RaiseHand { note } => {
                self.queue(StudentRequest::RaiseHand { note: note.clone() });
                self.close_form()?;
            }
            Answer::LowerHand => {
                self.queue(StudentRequest::LowerHand);
                self.close_form()?;
            }
            Answer::SendChat { text } => self.queue(StudentRequest::Chat { text: text.clone() }),
            Answer::Close if form => self.close_form()?,
            Answer::Close if chat => self.close_chat()?,
            _ => {}
        }
        Ok(true)
    }

    /// The window manager's close button on a request window; false if
    /// `win` is not one.
    pub(super) fn request_closed(&mut self, win: Window) -> XResult<bool> {
        if self.asks.form.as_ref().is_some_and(|f| f.win == win) {
            self.close_form()?;
            return Ok(true);
        }
        if self.asks.chat.as_ref().is_some_and(|c| c.win == win) {
            self.close_chat()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// What the server said about the student's requests.
    pub(super) fn notice(&mut self, n: StudentNotice) -> XResult<()> {
        match n {
            StudentNotice::HandRaised => self.set_raised(true),
            StudentNotice::HandClosed { answer } => {
                self.set_raised(false)?;
                match answer {
                    Some(a) => self.show_message(&a),
                    None => Ok(()),
                }
            }
            StudentNotice::HandRefused { message } => self.open_request(Some(message)),
            StudentNotice::Chat { line } => {
                self.asks.lines.push(ChatEntry {
                    mine: !line.from_teacher,
                    author: line.author,
                    text: line.text,
                });
                let extra = self.asks.lines.len().saturating_sub(KEPT_LINES);
                self.asks.lines.drain(..extra);
                self.open_chat(None)
            }
            StudentNotice::ChatHistory { lines } => self.set_history(lines),
            StudentNotice::ChatRefused { message } => self.open_chat(Some(message)),
        }
    }

    /// Replaces the chat's lines with the server's history (after a
    /// reconnect or a helper restart); an open chat window is redrawn, a
    /// closed one stays closed.
    fn set_history(&mut self, lines: Vec<lectern_proto::requests::ChatLine>) -> XResult<()> {
        let skip = lines.len().saturating_sub(KEPT_LINES);
        self.asks.lines = lines
            .into_iter()
            .skip(skip)
            .map(|line| ChatEntry {
                mine: !line.from_teacher,
                author: line.author,
                text: line.text,
            })
            .collect();
        if self.asks.chat.is_some() {
            return self.open_chat(None);
        }
        Ok(())
    }

    fn set_raised(&mut self, raised: bool) -> XResult<()> {
        self.asks.raised = raised;
        self.show_hand_button()?;
        if let Some(f) = &mut self.asks.form {
            f.ui.set_surface(View::Request {
                raised,
                status: None,
            });
            self.paint.redraw(&self.conn, f)?;
        }
        Ok(())
    }
}
