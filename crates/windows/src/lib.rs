//! The Windows backend of the Lectern agent: [`WindowsDesktop`] implements
//! [`lectern_desktop::Desktop`] for an interactive Windows session. It runs
//! in the per-session helper (the service in session 0 cannot see or touch
//! the user's desktop).
//!
//! - Capture: DXGI Desktop Duplication where it works, GDI otherwise
//!   ([`FallbackCapturer`]).
//! - Lock: a topmost full-screen window per monitor plus a low-level
//!   keyboard hook that swallows Alt+Tab, the Windows keys and other
//!   shortcuts ([`swallows`]). Ctrl+Alt+Del cannot be blocked by any program.
//! - Acceptable use policy: like the lock (a topmost window per monitor and
//!   the keyboard hook), but it takes input: the text scrolls (wheel, arrows,
//!   Page Up/Down, Home/End, space) and "I accept" or Enter queues
//!   [`lectern_desktop::StudentRequest::AcceptAup`]. A lock goes over it and
//!   the policy, which takes no input while covered, comes back at unlock.
//! - Message, remote-view question and broadcast: topmost windows drawn by a
//!   [`SurfacePainter`] (the one seam between windows and what they show),
//!   by default [`StudentUiPainter`]: `lectern-student-ui`'s iced surfaces,
//!   the same pixels as on Linux. [`FONT_DIR_ENV`] adds a font folder where
//!   the system has few fonts (the tests' Wine prefix).
//! - Websites through the default browser (`ShellExecuteW`), logout
//!   (`WTSLogoffSession`, else `ExitWindowsEx`), user and focus for activity,
//!   and remote-control input ([`send_input`]).
//!
//! On other targets the crate is empty, so the workspace builds everywhere.
//!
//! Tested under Wine 8 + Xvfb (`scripts/test-windows.sh`). Wine cannot show
//! DXGI duplication (`DuplicateOutput` returns `E_NOTIMPL`: capture runs on
//! GDI there), more than one monitor, session 0 isolation, real user tokens
//! and UIPI, or Ctrl+Alt+Del. On a real Windows 10/11 machine, check by hand:
//! 1. `capture_method()` is `dxgi` on a normal desktop and falls back to
//!    `gdi` (and back after 30 s) across a UAC prompt or Ctrl+Alt+Del.
//! 2. With two monitors, the lock covers both; Alt+Tab, Win, Win+D, Win+R,
//!    Alt+Esc, Ctrl+Esc, Ctrl+Shift+Esc and Alt+F4 do nothing while locked,
//!    Ctrl+Alt+Del still opens the secure screen, and unlock restores input.
//! 3. A topmost program started after the lock is covered again within 0.5 s.
//! 4. Message OK/Enter and the question's Allow/Deny work by mouse and touch.
//! 5. `open_url` opens the default browser; `logout` ends the session.
//! 6. `send_input` moves the pointer on every monitor (also with display
//!    scaling at 150 %), and does not reach an elevated window (UIPI).
//! 7. The acceptable use policy covers every monitor, keeps Alt+Tab and the
//!    Windows key from switching away, scrolls by wheel and touch, and a
//!    lock taken and given back over it leaves it on top with the keyboard.
#![cfg(windows)]

mod capture;
mod dxgi;
mod hook;
mod info;
mod input;
mod paint;
mod student;
mod ui;
mod wide;

use std::time::Duration;

use lectern_desktop::{decode_jpeg, Desktop, DesktopError, Frame};
use lectern_proto::{Capability, DeviceState, Policy, WebFilterMode};
use tokio::sync::oneshot;
use windows_sys::Win32::System::RemoteDesktop::{
    WTSLogoffSession, WTS_CURRENT_SERVER_HANDLE, WTS_CURRENT_SESSION,
};
use windows_sys::Win32::System::Shutdown::{
    ExitWindowsEx, EWX_LOGOFF, SHTDN_REASON_FLAG_PLANNED, SHTDN_REASON_MAJOR_OTHER,
};
use windows_sys::Win32::UI::Shell::ShellExecuteW;
use windows_sys::Win32::UI::WindowsAndMessaging::SW_SHOWNORMAL;

pub use capture::{to_frame, Bgra, Capturer, FallbackCapturer, GdiCapturer};
pub use dxgi::DxgiCapturer;
pub use hook::{swallowed_keys, swallows, KeyboardHook, Mods};
pub use input::{send_input, InputError, Modifiers, MouseButton, RemoteInput};
pub use paint::{PainterFactory, Surface, SurfaceAction, SurfaceInput, SurfacePainter};
pub use student::{StudentUiPainter, FONT_DIR_ENV};
pub use ui::{
    ASK_CLASS, AUP_CLASS, BANNER_CLASS, BROADCAST_CLASS, LOCK_CLASS, MESSAGE_CLASS, REGISTER_CLASS,
    SIGN_IN_CLASS, SIGN_OUT_CLASS,
};

use ui::{Cmd, UiHandle};
use wide::{last_error, wide};

/// How long a remote-view question stays up when the asker gives no time
/// (the server always does: its `remote_view_ask_secs`); the X11 backend's too.
pub const QUESTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What a locked Windows screen cannot stop, reported in `unsupported`.
pub const CTRL_ALT_DEL: &str = "lock_ctrl_alt_del";

/// The [`Desktop`] of an interactive Windows session.
pub struct WindowsDesktop {
    capturer: FallbackCapturer,
    ui: UiHandle,
    school: String,
    lock_text: Option<String>,
    command_lock: bool,
    command_block: bool,
    policy: Policy,
    /// What the lock shows now: `None` unlocked, `Some(text)` locked.
    shown_lock: Option<Option<String>>,
    broadcast: bool,
    /// A teacher controls the session (the notice is up).
    controlled: bool,
    /// Mouse buttons the teacher holds down, released when control ends.
    held_buttons: Vec<MouseButton>,
}

impl WindowsDesktop {
    /// A desktop drawing its windows with [`StudentUiPainter`].
    pub fn new() -> Result<Self, DesktopError> {
        Self::with_painter(Box::new(|| Box::new(StudentUiPainter::new())))
    }

    /// A desktop whose windows are drawn (and their input read) by painters
    /// from `painters`, one per window, made on the window thread.
    pub fn with_painter(painters: PainterFactory) -> Result<Self, DesktopError> {
        Self::with_parts(painters, FallbackCapturer::new())
    }

    /// A desktop with an explicit painter and capturer (tests choose the
    /// capturer's preferred method).
    pub fn with_parts(
        painters: PainterFactory,
        capturer: FallbackCapturer,
    ) -> Result<Self, DesktopError> {
        // Physical pixels in captures and window sizes, not scaled ones.
        // SAFETY: process-wide setting, harmless when already set.
        unsafe { windows_sys::Win32::UI::WindowsAndMessaging::SetProcessDPIAware() };
        Ok(WindowsDesktop {
            capturer,
            ui: UiHandle::spawn(painters)?,
            school: String::new(),
            lock_text: None,
            command_lock: false,
            command_block: false,
            policy: Policy::default(),
            shown_lock: None,
            broadcast: false,
            controlled: false,
            held_buttons: Vec::new(),
        })
    }

    /// The capture method in use: `"dxgi"` or `"gdi"`.
    pub fn capture_method(&self) -> &'static str {
        self.capturer.active()
    }

    /// Why DXGI duplication is not in use, if it failed.
    pub fn capture_fallback_reason(&self) -> Option<&DesktopError> {
        self.capturer.fallback_reason()
    }

    /// Whether the keyboard hook is installed (only while locked).
    pub fn keyboard_hook_active(&self) -> bool {
        self.ui
            .shared()
            .hook_active
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Remote control: sends a pointer, wheel or key event to this session
    /// (see [`send_input`]; Ctrl+Alt+Del is refused). The [`Desktop`]
    /// trait's `inject_input` comes here for each event.
    pub fn send_input(&mut self, input: RemoteInput) -> Result<(), InputError> {
        send_input(input)
    }

    /// Shows, redraws or removes the lock to match the teacher's and the
    /// policy's lock; the lock is one, whoever asked for it.
    fn sync_lock(&mut self) -> Result<(), DesktopError> {
        let want = (self.command_lock || self.policy.screen_locked)
            .then(|| self.lock_text.clone().filter(|_| self.command_lock));
        if want == self.shown_lock {
            return Ok(());
        }
        match &want {
            Some(text) => self.ui.call(Cmd::Lock {
                school: self.school.clone(),
                text: text.clone(),
            })?,
            None => self.ui.call(Cmd::Unlock)?,
        }
        self.shown_lock = want;
        Ok(())
    }

    fn internet_blocked(&self) -> bool {
        self.command_block || self.policy.internet_blocked
    }

    /// Settings asked for that this backend does not enforce (yet).
    fn unsupported(&self, web_block: bool) -> Vec<String> {
        let p = &self.policy;
        [
            (web_block, "internet_blocked"),
            (p.web_filter_mode != WebFilterMode::Off, "web_filter_mode"),
            (p.printing_disabled, "printing_disabled"),
            (p.removable_media_disabled, "removable_media_disabled"),
            (p.sound_muted, "sound_muted"),
            // Application lists are not built for Windows.
            (p.app_mode != lectern_proto::AppMode::Off, "app_mode"),
            (self.shown_lock.is_some(), CTRL_ALT_DEL),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect()
    }
}

impl Desktop for WindowsDesktop {
    fn set_school(&mut self, school: &str) {
        self.school = school.to_string();
    }

    fn set_school_logo(&mut self, png: Option<&[u8]>) {
        let logo = match png.map(lectern_student_ui::Logo::from_png).transpose() {
            Ok(logo) => logo,
            Err(e) => {
                tracing::warn!("school logo left out: {e}");
                None
            }
        };
        if let Err(e) = self.ui.call(Cmd::SetLogo(logo)) {
            tracing::warn!("school logo not shown: {e}");
        }
    }

    fn capabilities(&self) -> Vec<Capability> {
        use Capability::*;
        // No InternetBlock: this session's desktop does not filter the web.
        // The service claims it when the browser extension or its WFP block
        // (crates/agent/src/windows/webblock.rs) enforces it.
        vec![
            Thumbnails,
            Message,
            LaunchUrl,
            Lock,
            Logout,
            RemoteControl,
            Broadcast,
            StudentSignIn,
        ]
    }

    fn show_acceptable_use(
        &mut self,
        policy: Option<&lectern_proto::aup::AcceptableUse>,
    ) -> Result<(), DesktopError> {
        self.ui.call(Cmd::Aup {
            policy: policy.cloned(),
            school: self.school.clone(),
        })
    }

    fn show_student_sign_in(
        &mut self,
        screen: Option<&lectern_desktop::SignInScreen>,
    ) -> Result<(), DesktopError> {
        self.ui.call(Cmd::SignIn {
            screen: screen.cloned(),
            school: self.school.clone(),
        })
    }

    fn show_signed_in(&mut self, signed_in: bool) {
        if let Err(e) = self.ui.call(Cmd::SignedIn(signed_in)) {
            tracing::warn!("cannot show or take away Sign out: {e}");
        }
    }

    fn take_requests(&mut self) -> Vec<lectern_desktop::StudentRequest> {
        let mut requests = self
            .ui
            .shared()
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *requests)
    }

    fn start_control(&mut self, controller: &str) -> Result<(), DesktopError> {
        self.ui
            .call(ui::Cmd::StartControl(controller.to_string()))?;
        self.controlled = true;
        Ok(())
    }

    fn inject_input(
        &mut self,
        events: &[lectern_proto::control::InputEvent],
    ) -> Result<(), DesktopError> {
        if !self.controlled {
            return Err(DesktopError::Failed("nobody controls this screen".into()));
        }
        // Checked again here, the last step before SendInput.
        for e in events.iter().filter(|e| e.check().is_ok()) {
            let Some(input) = input::remote_input(e) else {
                continue;
            };
            if let RemoteInput::Button { button, down } = input {
                self.held_buttons.retain(|b| *b != button);
                if down {
                    self.held_buttons.push(button);
                }
            }
            send_input(input).map_err(|e| DesktopError::Failed(e.to_string()))?;
        }
        Ok(())
    }

    fn stop_control(&mut self) -> Result<(), DesktopError> {
        if !std::mem::take(&mut self.controlled) {
            return Ok(());
        }
        for button in std::mem::take(&mut self.held_buttons) {
            let up = RemoteInput::Button {
                button,
                down: false,
            };
            if let Err(e) = send_input(up) {
                tracing::warn!("cannot release a mouse button: {e}");
            }
        }
        self.ui.call(ui::Cmd::StopControl)
    }

    fn state(&self) -> DeviceState {
        let (focused_app, window_title) = info::focus();
        DeviceState {
            user: info::user_name(),
            locked: self.shown_lock.is_some(),
            internet_blocked: self.internet_blocked(),
            focused_app,
            window_title,
            message_shown: self
                .ui
                .shared()
                .message_shown
                .load(std::sync::atomic::Ordering::SeqCst),
            policy_version: self.policy.version,
            unsupported: self.unsupported(self.internet_blocked()),
            broadcast_shown: self.broadcast,
            ..DeviceState::default()
        }
    }

    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        let img = self.capturer.grab()?;
        Ok(to_frame(&img, width))
    }

    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError> {
        let before = (self.command_lock, self.lock_text.clone());
        self.command_lock = true;
        self.lock_text = text.map(str::to_string);
        let r = self.sync_lock();
        if r.is_err() {
            (self.command_lock, self.lock_text) = before;
        }
        r
    }

    fn unlock(&mut self) -> Result<(), DesktopError> {
        self.command_lock = false;
        self.lock_text = None;
        self.sync_lock()?;
        if self.policy.screen_locked {
            return Err(DesktopError::Failed(
                "the screen stays locked by policy (a group or lesson locks it)".into(),
            ));
        }
        Ok(())
    }

    fn show_message(&mut self, text: &str) -> Result<(), DesktopError> {
        self.ui.call(Cmd::Message(text.to_string()))
    }

    fn clear_message(&mut self) -> Result<(), DesktopError> {
        self.ui.call(Cmd::ClearMessage)
    }

    fn open_url(&mut self, url: &str) -> Result<(), DesktopError> {
        if self.internet_blocked() {
            return Err(DesktopError::Failed(
                "internet is blocked on this device".into(),
            ));
        }
        let (verb, file) = (wide("open"), wide(url));
        // SAFETY: NUL-terminated strings that outlive the call.
        let r = unsafe {
            ShellExecuteW(
                std::ptr::null_mut(),
                verb.as_ptr(),
                file.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                SW_SHOWNORMAL,
            )
        };
        // ShellExecute reports success as a value above 32.
        if r as usize <= 32 {
            return Err(DesktopError::Failed(format!(
                "cannot open the browser (ShellExecute error {})",
                r as usize
            )));
        }
        Ok(())
    }

    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError> {
        self.command_block = blocked;
        if !blocked && self.policy.internet_blocked {
            return Err(DesktopError::Failed(
                "the internet stays blocked by policy (a group or lesson blocks it)".into(),
            ));
        }
        Ok(())
    }

    fn logout(&mut self) -> Result<(), DesktopError> {
        // SAFETY: ends this process's own session; no pointers involved.
        unsafe {
            if WTSLogoffSession(WTS_CURRENT_SERVER_HANDLE, WTS_CURRENT_SESSION, 0) != 0 {
                return Ok(());
            }
            let reason = SHTDN_REASON_MAJOR_OTHER | SHTDN_REASON_FLAG_PLANNED;
            if ExitWindowsEx(EWX_LOGOFF, reason) != 0 {
                return Ok(());
            }
        }
        Err(last_error("WTSLogoffSession and ExitWindowsEx"))
    }

    fn apply_policy(&mut self, policy: &Policy) -> Vec<String> {
        self.policy = policy.clone();
        if let Err(e) = self.sync_lock() {
            tracing::warn!("cannot apply the policy's screen lock: {e}");
        }
        let mut unsupported = self.unsupported(policy.internet_blocked);
        if policy.screen_locked && self.shown_lock.is_none() {
            unsupported.push("screen_locked".into());
        }
        unsupported
    }

    fn ask_remote_view(&mut self, teacher: &str) -> oneshot::Receiver<bool> {
        self.ask_remote_view_for(teacher, QUESTION_TIMEOUT)
    }

    fn ask_school_code(&mut self, error: Option<&str>) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        let ask = Cmd::AskCode {
            error: error.map(str::to_owned),
            answer: tx,
        };
        // On failure the sender is dropped: the agent asks again later.
        if let Err(e) = self.ui.call(ask) {
            tracing::warn!("cannot show the registration form: {e}");
        }
        rx
    }

    fn ask_remote_view_for(&mut self, teacher: &str, timeout: Duration) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let ask = Cmd::Ask {
            teacher: teacher.to_string(),
            answer: tx,
            timeout,
        };
        // On failure the sender is dropped with the request, so the agent
        // sees "no answer" and applies the default.
        if let Err(e) = self.ui.call(ask) {
            tracing::warn!("cannot ask the student about a live view: {e}");
        }
        rx
    }

    fn start_broadcast(&mut self, title: &str) -> Result<(), DesktopError> {
        self.ui.call(Cmd::StartBroadcast(title.to_string()))?;
        self.broadcast = true;
        Ok(())
    }

    fn broadcast_frame(&mut self, jpeg: &[u8]) -> Result<(), DesktopError> {
        if !self.broadcast {
            return Err(DesktopError::Failed("no broadcast is running".into()));
        }
        // Decoded on the caller's thread, so a bad frame is reported to the
        // caller and the window thread only scales and shows.
        self.ui.call(Cmd::Frame(decode_jpeg(jpeg)?))
    }

    fn stop_broadcast(&mut self) -> Result<(), DesktopError> {
        self.broadcast = false;
        self.ui.call(Cmd::StopBroadcast)
    }
}

/// Whether this process runs under Wine (which lacks DXGI duplication,
/// sessions and user tokens): tests adapt their expectations to it.
pub fn is_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll = wide("ntdll.dll");
    // SAFETY: looks up an export by a NUL-terminated name.
    unsafe {
        let m = GetModuleHandleW(ntdll.as_ptr());
        !m.is_null() && GetProcAddress(m, c"wine_get_version".as_ptr().cast()).is_some()
    }
}
