//! The X11 backend: a real student desktop under an X server.
//!
//! Two connections to the display: one used from the caller's thread for
//! screen captures and session information, and one owned by a window thread
//! ([`ui`]) that draws the agent's own windows (lock screen, message,
//! broadcast, remote-view question) and answers their events. Every window
//! shows a [`lectern_student_ui`] surface (iced drawing real fonts in
//! software, the same pixels as on Windows) uploaded as a pixmap, so the
//! agent needs no X fonts and no X toolkit.

mod apps;
mod capture;
pub mod dpi;
mod exec;
mod info;
mod input;
mod keys;
mod pictures;
mod scale;
mod ui;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lectern_proto::{Capability, DeviceState, Policy, WebFilterMode};
use tokio::sync::oneshot;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

use capture::{failed, Capturer};
use info::Atoms;
use lectern_desktop::{decode_jpeg, Changes, Desktop, DesktopError, Frame};
use ui::{Cmd, UiHandle};

pub use apps::{AppRules, EXEMPT as APP_EXEMPT};

pub use exec::split_argv;
pub use ui::{
    sign_in_view, AUP_WINDOW_NAME, HAND_BUTTON_NAME, PROMPT_TIMEOUT, REGISTER_WINDOW_NAME,
    SIGN_IN_WINDOW_NAME,
};

use lectern_student_ui::SURFACE_COLOURS;

/// Colour of the lock screen (the same as the headless backend's).
pub const LOCK_BG: lectern_desktop::Rgb = SURFACE_COLOURS.lock;
/// Background of the message window.
pub const MESSAGE_BG: lectern_desktop::Rgb = SURFACE_COLOURS.message;
/// Background of the remote-view question.
pub const PROMPT_BG: lectern_desktop::Rgb = SURFACE_COLOURS.question;

/// How long the logout command may take before the teacher hears it failed.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// A URL opener that fails at once (missing browser) is reported; one still
/// running after this long is taken to have worked.
const OPENER_GRACE: Duration = Duration::from_millis(200);

/// Programs the X11 backend runs, normally taken from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X11Options {
    /// Program (with leading arguments) that opens a URL; the URL is appended
    /// as one more argument. `$LECTERN_URL_OPENER`, default `xdg-open`.
    pub url_opener: Vec<String>,
    /// The logind session that logout terminates (`$XDG_SESSION_ID`).
    pub session_id: Option<String>,
    /// Command that ends the session when there is no logind session
    /// (`$LECTERN_LOGOUT_COMMAND`, split into arguments, never run by a shell).
    pub logout_command: Option<Vec<String>>,
    /// `pactl`, used to mute sound; `None` when it is not installed.
    pub pactl: Option<PathBuf>,
}

impl X11Options {
    /// Options from this process's environment and `$PATH`.
    pub fn from_env() -> Result<Self, DesktopError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Options from `get` (an environment lookup), with `pactl` from `$PATH`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, DesktopError> {
        let argv = |key: &str| -> Result<Option<Vec<String>>, DesktopError> {
            match get(key).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => split_argv(&v)
                    .map(Some)
                    .map_err(|e| DesktopError::Failed(format!("{key}: {e}"))),
            }
        };
        Ok(X11Options {
            url_opener: argv("LECTERN_URL_OPENER")?.unwrap_or_else(|| vec!["xdg-open".into()]),
            session_id: get("XDG_SESSION_ID").filter(|s| !s.is_empty()),
            logout_command: argv("LECTERN_LOGOUT_COMMAND")?,
            pactl: exec::find_in_path("pactl"),
        })
    }
}

/// How long the two stages of a capture took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTimings {
    /// Getting the screen image from the server.
    pub grab: Duration,
    /// Converting and scaling it to the requested width.
    pub scale: Duration,
}

/// The [`Desktop`] of an X11 session.
pub struct X11Desktop {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    capturer: Capturer,
    ui: UiHandle,
    opts: X11Options,
    display: String,
    school: String,
    lock_text: Option<String>,
    command_lock: bool,
    command_block: bool,
    policy: Policy,
    /// What the lock window shows now: `None` unlocked, `Some(text)` locked.
    shown_lock: Option<Option<String>>,
    sound_muted: bool,
    sound_failed: bool,
    broadcast: bool,
    /// Remote-control input, when the server offers XTEST.
    injector: Option<input::Injector>,
    /// A teacher controls the screen (the notice is up).
    controlled: bool,
    /// Closes blocked applications; started by the first policy with lists.
    apps: Option<apps::AppGuard>,
    /// The application lists could not be enforced (no X connection for them).
    apps_failed: bool,
    /// How long a blocked window has to close before its process is killed.
    app_grace: Duration,
    /// Focus, title and screen changes from X events; `None` when its
    /// connection failed (the agent then polls).
    watch: Option<watch::Watcher>,
}

/// Default of [`X11Desktop::set_app_grace`].
pub const APP_GRACE: Duration = Duration::from_secs(3);

impl X11Desktop {
    /// Connects to `display` (`None`: `$DISPLAY`) with options from the environment.
    pub fn connect(display: Option<&str>) -> Result<Self, DesktopError> {
        Self::with_options(display, X11Options::from_env()?)
    }

    /// Connects to `display` (`None`: `$DISPLAY`) with explicit options.
    pub fn with_options(display: Option<&str>, opts: X11Options) -> Result<Self, DesktopError> {
        let name = display
            .map(str::to_string)
            .or_else(|| std::env::var("DISPLAY").ok())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                DesktopError::Failed("no X display given and $DISPLAY is unset".into())
            })?;
        let (conn, screen_num) = x11rb::connect(Some(&name)).map_err(failed)?;
        let screen = conn.setup().roots[screen_num].clone();
        let capturer = Capturer::new(&conn, &screen)?;
        let atoms = Atoms::new(&conn).map_err(failed)?.reply().map_err(failed)?;
        let ui = UiHandle::spawn(Some(&name))?;
        let injector = input::available(&conn).then(|| input::Injector::new(screen.root));
        let watch = watch::Watcher::start(&name)
            .inspect_err(|e| tracing::warn!("no X11 change events, polling instead: {e}"))
            .ok();
        ui.shared().changes = watch.as_ref().map(watch::Watcher::changes);
        Ok(X11Desktop {
            root: screen.root,
            conn,
            atoms,
            capturer,
            ui,
            opts,
            display: name,
            school: String::new(),
            lock_text: None,
            command_lock: false,
            command_block: false,
            policy: Policy::default(),
            shown_lock: None,
            sound_muted: false,
            sound_failed: false,
            broadcast: false,
            injector,
            controlled: false,
            apps: None,
            apps_failed: false,
            app_grace: APP_GRACE,
            watch,
        })
    }

    /// The display this desktop is connected to.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Whether captures use MIT-SHM (else the slower core `GetImage`).
    pub fn uses_shm(&self) -> bool {
        self.capturer.uses_shm()
    }

    /// Captures through core `GetImage` from now on, even where MIT-SHM works:
    /// for comparison benchmarks, and for servers whose MIT-SHM misbehaves.
    pub fn force_core_capture(&mut self) {
        self.capturer.disable_shm(&self.conn);
    }

    /// Like [`Desktop::capture`], also saying how long each stage took.
    pub fn capture_timed(&mut self, width: u32) -> Result<(Frame, CaptureTimings), DesktopError> {
        // What is drawn from now on signals the next change.
        if let Some(w) = &self.watch {
            w.rearm();
        }
        let t0 = Instant::now();
        let img = self.capturer.grab(&self.conn)?;
        let t1 = Instant::now();
        // Never wider than the screen: the live view asks for up to 1920 px
        // and a smaller screen streams at its own size.
        let w = (width.clamp(16, 3840) as usize).min(img.width.max(16));
        let h = scale::scaled_height(img.width, img.height, w);
        let rgb = scale::box_to_rgb(&img, w, h);
        let frame = Frame {
            width: w as u32,
            height: h as u32,
            rgb,
        };
        Ok((
            frame,
            CaptureTimings {
                grab: t1 - t0,
                scale: t1.elapsed(),
            },
        ))
    }

    /// Shows, redraws or removes the lock window to match the teacher's and
    /// the policy's lock; the lock window is one, whoever asked for it.
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

    /// Mutes or unmutes the default sink through PulseAudio/PipeWire; only on a
    /// change, so the agent never unmutes sound a student muted themselves.
    fn apply_sound(&mut self, mute: bool) {
        if mute == self.sound_muted && !(mute && self.sound_failed) {
            return;
        }
        let Some(pactl) = &self.opts.pactl else {
            self.sound_failed = mute;
            return;
        };
        let argv = [
            pactl.display().to_string(),
            "set-sink-mute".into(),
            "@DEFAULT_SINK@".into(),
            if mute { "1" } else { "0" }.into(),
        ];
        match exec::run(&argv, Duration::from_secs(3)) {
            Ok(()) => {
                self.sound_muted = mute;
                self.sound_failed = false;
            }
            Err(e) => {
                tracing::warn!("cannot change the sound mute: {e}");
                self.sound_failed = mute;
            }
        }
    }

    /// How long a blocked application's window has to close before its
    /// process is killed (default [`APP_GRACE`]); for tests.
    pub fn set_app_grace(&mut self, grace: Duration) {
        self.app_grace = grace;
    }

    /// Puts the policy's application lists in force, starting the guard the
    /// first time they are set.
    fn apply_apps(&mut self, policy: &Policy) {
        let rules = AppRules::from_policy(policy);
        if self.apps.is_none() && rules.active() {
            let started = self.ui.sender().and_then(|ui| {
                apps::AppGuard::start(&self.display, ui, self.app_grace, info::user_name())
            });
            match started {
                Ok(g) => self.apps = Some(g),
                Err(e) => tracing::warn!("application lists are not enforced: {e}"),
            }
        }
        self.apps_failed = rules.active() && self.apps.is_none();
        if let Some(g) = &self.apps {
            g.set_rules(rules);
        }
    }

    /// Settings asked for that this backend does not enforce (yet).
    fn unsupported(&self, web_block: bool) -> Vec<String> {
        let p = &self.policy;
        [
            (web_block, "internet_blocked"),
            (p.web_filter_mode != WebFilterMode::Off, "web_filter_mode"),
            (p.printing_disabled, "printing_disabled"),
            (p.removable_media_disabled, "removable_media_disabled"),
            (self.sound_failed, "sound_muted"),
            (self.apps_failed, "app_mode"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect()
    }
}

impl Drop for X11Desktop {
    fn drop(&mut self) {
        self.capturer.release(&self.conn);
    }
}

impl Desktop for X11Desktop {
    // This backend runs as the session's user (the helper, or `run`): files
    // go to its own home, with its own ownership.
    fn user_home(&self) -> Result<lectern_desktop::UserHome, DesktopError> {
        let dir = std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .ok_or_else(|| DesktopError::Failed("no home folder (HOME is not set)".into()))?;
        let user = std::env::var("USER").unwrap_or_default();
        Ok(lectern_desktop::UserHome {
            user,
            dir,
            owner: None,
        })
    }

    fn start_control(&mut self, controller: &str) -> Result<(), DesktopError> {
        if self.injector.is_none() {
            return Err(DesktopError::Unsupported(
                "remote control (no XTEST on this display)",
            ));
        }
        self.ui.call(Cmd::StartControl(controller.to_string()))?;
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
        let Some(inj) = &mut self.injector else {
            return Err(DesktopError::Unsupported(
                "remote control (no XTEST on this display)",
            ));
        };
        inj.inject(&self.conn, events)
    }

    fn stop_control(&mut self) -> Result<(), DesktopError> {
        if !std::mem::take(&mut self.controlled) {
            return Ok(());
        }
        if let Some(inj) = &mut self.injector {
            inj.release_all(&self.conn)?;
        }
        self.ui.call(Cmd::StopControl)
    }

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
        if let Err(e) = self.ui.call(ui::Cmd::SetLogo(logo)) {
            tracing::warn!("school logo not shown: {e}");
        }
    }

    fn changes(&self) -> Option<std::sync::Arc<Changes>> {
        self.watch.as_ref().map(watch::Watcher::changes)
    }

    fn release_buffers(&mut self) {
        self.capturer.release(&self.conn);
    }

    fn capabilities(&self) -> Vec<Capability> {
        use Capability::*;
        // No InternetBlock: the web block is kept as state but not enforced.
        let mut caps = vec![
            Thumbnails,
            Message,
            LaunchUrl,
            Lock,
            Broadcast,
            StudentSignIn,
        ];
        if self.injector.is_some() {
            caps.push(RemoteControl);
        }
        if self.opts.session_id.is_some() || self.opts.logout_command.is_some() {
            caps.push(Logout);
        }
        caps
    }

    fn state(&self) -> DeviceState {
        let (focused_app, window_title) = info::focus(&self.conn, &self.atoms, self.root);
        DeviceState {
            user: info::user_name(),
            locked: self.shown_lock.is_some(),
            internet_blocked: self.internet_blocked(),
            focused_app,
            window_title,
            url: None,
            message_shown: self.ui.shared().message_shown,
            printing_disabled: false,
            removable_media_disabled: false,
            sound_muted: self.sound_muted,
            policy_version: self.policy.version,
            unsupported: self.unsupported(self.internet_blocked()),
            broadcast_shown: self.broadcast,
            ..DeviceState::default()
        }
    }

    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        self.capture_timed(width).map(|(f, _)| f)
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

    fn take_requests(&mut self) -> Vec<lectern_desktop::StudentRequest> {
        std::mem::take(&mut self.ui.shared().requests)
    }

    fn student_notice(
        &mut self,
        notice: lectern_desktop::StudentNotice,
    ) -> Result<(), DesktopError> {
        self.ui.call(Cmd::Notice(notice))
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
            tracing::warn!("cannot offer the student sign-out: {e}");
        }
    }

    fn open_url(&mut self, url: &str) -> Result<(), DesktopError> {
        if self.internet_blocked() {
            return Err(DesktopError::Failed(
                "internet is blocked on this device".into(),
            ));
        }
        exec::launch(&self.opts.url_opener, url, &self.display, OPENER_GRACE)
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
        let argv = match (&self.opts.session_id, &self.opts.logout_command) {
            (Some(id), _) => vec!["loginctl".into(), "terminate-session".into(), id.clone()],
            (None, Some(cmd)) => cmd.clone(),
            (None, None) => {
                return Err(DesktopError::Unsupported(
                    "logout without a logind session (set LECTERN_LOGOUT_COMMAND)",
                ))
            }
        };
        exec::run(&argv, LOGOUT_TIMEOUT)
    }

    fn apply_policy(&mut self, policy: &Policy) -> Vec<String> {
        self.policy = policy.clone();
        if let Err(e) = self.sync_lock() {
            tracing::warn!("cannot apply the policy's screen lock: {e}");
        }
        self.apply_sound(policy.sound_muted);
        self.apply_apps(policy);
        let unsupported = self.unsupported(policy.internet_blocked);
        let lock_failed = policy.screen_locked && self.shown_lock.is_none();
        if lock_failed {
            let mut u = unsupported;
            u.push("screen_locked".into());
            return u;
        }
        unsupported
    }

    /// Blocked applications' attempts (focus changes reach the service
    /// through `state`).
    fn take_activity(&mut self) -> Vec<lectern_proto::ActivityEvent> {
        self.apps
            .as_ref()
            .map_or_else(Vec::new, |g| g.take_events())
    }

    fn ask_remote_view(&mut self, teacher: &str) -> oneshot::Receiver<bool> {
        self.ask_remote_view_for(teacher, PROMPT_TIMEOUT)
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

    fn ask_school_code(&mut self, error: Option<&str>) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        let ask = Cmd::AskCode {
            error: error.map(str::to_owned),
            answer: tx,
        };
        if let Err(e) = self.ui.call(ask) {
            tracing::warn!("cannot show the registration form: {e}");
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
        if !self.ui.alive() {
            return Err(DesktopError::Failed(
                "the X display connection is closed".into(),
            ));
        }
        // Decoded here, on the caller's thread, so a bad frame is reported to
        // the caller and the window thread only scales and shows.
        self.ui.push_frame(decode_jpeg(jpeg)?);
        Ok(())
    }

    fn stop_broadcast(&mut self) -> Result<(), DesktopError> {
        self.broadcast = false;
        self.ui.call(Cmd::StopBroadcast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let o = X11Options::from_lookup(env(&[])).unwrap();
        assert_eq!(o.url_opener, vec!["xdg-open"]);
        assert_eq!((o.session_id, o.logout_command), (None, None));
        let o = X11Options::from_lookup(env(&[
            ("LECTERN_URL_OPENER", "firefox --new-tab"),
            ("LECTERN_LOGOUT_COMMAND", "pkill -u 'amy b'"),
            ("XDG_SESSION_ID", "c2"),
        ]))
        .unwrap();
        assert_eq!(o.url_opener, vec!["firefox", "--new-tab"]);
        assert_eq!(o.logout_command.unwrap(), vec!["pkill", "-u", "amy b"]);
        assert_eq!(o.session_id.as_deref(), Some("c2"));
        assert!(X11Options::from_lookup(env(&[("LECTERN_LOGOUT_COMMAND", "'x")])).is_err());
    }

    #[test]
    fn decodes_jpeg_frames() {
        let f = Frame {
            width: 64,
            height: 36,
            rgb: [0, 0, 200].repeat(64 * 36),
        };
        let back = decode_jpeg(&lectern_desktop::encode_jpeg(&f, 90).unwrap()).unwrap();
        assert_eq!((back.width, back.height), (64, 36));
        assert!(back.rgb.chunks(3).all(|p| p[2] > 180 && p[0] < 20));
        assert!(decode_jpeg(b"\xff\xd8 not really").is_err());
    }
}
