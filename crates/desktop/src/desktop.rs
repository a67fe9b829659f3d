//! The [`Desktop`] trait and the command dispatch every backend shares.

use lectern_proto::control::InputEvent;
use lectern_proto::{
    ActivityEvent, Capability, Command, CommandResult, DeviceState, Policy, WebFilterMode,
};
use tokio::sync::oneshot;

/// Why a desktop operation failed; the text goes to the teacher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesktopError {
    /// The backend cannot do this on this platform.
    #[error("not supported on this device: {0}")]
    Unsupported(&'static str),
    /// The operation was refused or failed.
    #[error("{0}")]
    Failed(String),
}

/// An RGB image, 3 bytes per pixel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixels, `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// Everything platform-specific the agent needs. A new platform (X11, macOS,
/// Windows) is a new implementation of this trait and nothing else.
pub trait Desktop: Send + 'static {
    /// What this backend can do.
    fn capabilities(&self) -> Vec<Capability>;
    /// Current user, focus and enforcement state.
    fn state(&self) -> DeviceState;
    /// The screen scaled to `width` pixels wide, aspect kept.
    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError>;
    /// Covers the screen and takes input away, showing `text` if any.
    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError>;
    /// Removes the lock screen.
    fn unlock(&mut self) -> Result<(), DesktopError>;
    /// Shows a teacher's message until the student dismisses it.
    fn show_message(&mut self, text: &str) -> Result<(), DesktopError>;
    /// Takes a teacher's message off the screen; nothing on screen is fine.
    fn clear_message(&mut self) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("clearing messages"))
    }
    /// Opens `url` (already validated) in the user's browser.
    fn open_url(&mut self, url: &str) -> Result<(), DesktopError>;
    /// Blocks or unblocks web access.
    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError>;
    /// Ends the user's session.
    fn logout(&mut self) -> Result<(), DesktopError>;
    /// Enforces a policy's device settings: screen lock, web block, printing,
    /// removable media, sound. A policy lock or block holds independently of a
    /// teacher's lock or block. Returns the names of settings this device cannot
    /// enforce, so the console can show them.
    fn apply_policy(&mut self, policy: &Policy) -> Vec<String>;
    /// Asks the student whether `teacher` may see the screen live; the receiver
    /// yields the answer (or never does, if the student ignores the question).
    fn ask_remote_view(&mut self, teacher: &str) -> oneshot::Receiver<bool>;
    /// [`Desktop::ask_remote_view`] for a question the server gives the
    /// student `timeout` to answer (its `remote_view_ask_secs`): a backend
    /// that shows the question takes it away then. By default, the backend's
    /// own question.
    fn ask_remote_view_for(
        &mut self,
        teacher: &str,
        timeout: std::time::Duration,
    ) -> oneshot::Receiver<bool> {
        let _ = timeout;
        self.ask_remote_view(teacher)
    }
    /// Asks whoever is at the computer for the school's code to register it
    /// with (the agent has neither a token nor a code), saying why the last
    /// one was refused, if it was. The receiver yields the typed code; it
    /// closes without one where the backend cannot ask (the default), and
    /// the form stays until answered or asked again.
    fn ask_school_code(&mut self, error: Option<&str>) -> oneshot::Receiver<String> {
        let _ = error;
        oneshot::channel().1
    }
    /// Covers the screen with a broadcast (the teacher's or a student's screen)
    /// titled `title`, until [`Desktop::stop_broadcast`].
    fn start_broadcast(&mut self, title: &str) -> Result<(), DesktopError>;
    /// Shows the next broadcast frame, a JPEG image.
    fn broadcast_frame(&mut self, jpeg: &[u8]) -> Result<(), DesktopError>;
    /// Removes the broadcast window.
    fn stop_broadcast(&mut self) -> Result<(), DesktopError>;
    /// A teacher (`controller`) takes control of the mouse and keyboard: show
    /// the student a notice that does not block input until
    /// [`Desktop::stop_control`].
    fn start_control(&mut self, _controller: &str) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("remote control"))
    }
    /// Injects checked input events ([`InputEvent::check`] passed) from the
    /// controlling teacher.
    fn inject_input(&mut self, _events: &[InputEvent]) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("remote control"))
    }
    /// Control ended: release any mouse button or key still held and remove
    /// the notice.
    fn stop_control(&mut self) -> Result<(), DesktopError> {
        Ok(())
    }
    /// Closes a browser tab (through the browser extension).
    fn close_tab(&mut self, _tab_id: i64) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("closing browser tabs"))
    }
    /// Closes every browser tab but the school's home page ("eyes on me").
    /// Only the browser extension's standalone mode can; agents say so.
    fn close_all_tabs(&mut self) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported(
            "closing all browser tabs (only the browser extension in standalone mode can)",
        ))
    }
    /// Sets a teacher's web lists over the policy's (`Off` clears them).
    fn set_web_filter(
        &mut self,
        _mode: WebFilterMode,
        _allow: &[String],
        _block: &[String],
    ) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("web allow and block lists"))
    }
    /// Sets the school name the lock screen shows (the enrolled school); a
    /// backend without a lock screen ignores it.
    fn set_school(&mut self, _school: &str) {}
    /// Sets the school's logo (PNG bytes, as the server re-encoded them; `None`
    /// removes it) that the lock and sign-in screens show above the school's
    /// name. A logo the backend cannot decode is left out with a warning; a
    /// backend without a lock screen ignores it.
    fn set_school_logo(&mut self, _png: Option<&[u8]>) {}
    /// Activity events gathered since the last call, oldest first.
    fn take_activity(&mut self) -> Vec<ActivityEvent> {
        Vec::new()
    }
    /// Text typed into web pages since the last call (from the browser
    /// extension), for keyword scanning only: it is never logged.
    fn take_typed(&mut self) -> Vec<TypedText> {
        Vec::new()
    }
    /// Raised hands, withdrawals and chat messages the student sent since
    /// the last call, oldest first, for the server.
    fn take_requests(&mut self) -> Vec<crate::StudentRequest> {
        Vec::new()
    }
    /// Shows the student what the server said about their requests (a raised
    /// hand's answer, a chat line, a refusal).
    fn student_notice(&mut self, _notice: crate::StudentNotice) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("raised hands and chat"))
    }
    /// Covers the screen with an acceptable use policy the student must
    /// accept before using the device (scrollable text and an "I accept"
    /// button, input kept from everything else like the lock), or takes it
    /// away (`None`). The student's acceptance comes back through
    /// [`Desktop::take_requests`] as [`crate::StudentRequest::AcceptAup`].
    /// By default unsupported: the agent then tells the server so.
    fn show_acceptable_use(
        &mut self,
        _policy: Option<&lectern_proto::aup::AcceptableUse>,
    ) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("acceptable use policies"))
    }
    /// Covers the screen with the student sign-in of a shared computer (a
    /// user name, then a picture or text password; input kept from
    /// everything else like the lock) or takes it away (`None`). Shown again
    /// with a reason after a refusal; what the student submits comes back
    /// through [`Desktop::take_requests`] as
    /// [`crate::StudentRequest::SignIn`]. By default unsupported: such a
    /// backend does not announce [`Capability::StudentSignIn`].
    fn show_student_sign_in(
        &mut self,
        _screen: Option<&crate::SignInScreen>,
    ) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("student sign-in"))
    }
    /// Whether a student is signed in on this shared computer: a backend
    /// with a corner widget then offers "Sign out" there, which comes back
    /// as [`crate::StudentRequest::SignOut`]. By default nothing is shown
    /// (the student signs out by logging out of the desktop).
    fn show_signed_in(&mut self, _signed_in: bool) {}
    /// Which login of the desktop's user this is: a key that changes when
    /// someone logs out and in again, even to the same shared account, so a
    /// student signed in on the last login is not carried into the next
    /// (which a user name alone cannot tell, above all across a time
    /// offline). `None`: the backend cannot tell logins apart, and only a
    /// change of user signs the student out.
    fn login_key(&self) -> Option<String> {
        None
    }
    /// Where this machine's inventory comes from; `None`: this backend does
    /// not report one (the session then sends none).
    fn inventory(&self) -> Option<std::sync::Arc<dyn InventorySource>> {
        None
    }
    /// Whether this backend can carry out `action`.
    fn power_supported(&self, _action: lectern_proto::power::PowerAction) -> bool {
        false
    }
    /// Carries out `action` now (the countdown is over).
    fn power(&mut self, _action: lectern_proto::power::PowerAction) -> Result<(), DesktopError> {
        Err(DesktopError::Unsupported("power control"))
    }
    /// Sends Wake-on-LAN `packets` to `target` (a broadcast address the
    /// caller checked). Backends redirect it only in tests.
    fn send_wake(
        &mut self,
        packets: &[[u8; 102]],
        target: std::net::SocketAddr,
    ) -> Result<(), DesktopError> {
        let sock = std::net::UdpSocket::bind(if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .map_err(|e| DesktopError::Failed(format!("cannot open a UDP socket: {e}")))?;
        sock.set_broadcast(true)
            .map_err(|e| DesktopError::Failed(format!("cannot broadcast: {e}")))?;
        for p in packets {
            sock.send_to(p, target)
                .map_err(|e| DesktopError::Failed(format!("cannot send to {target}: {e}")))?;
        }
        Ok(())
    }
    /// The logged-in user's home folder and owner, where sent files go and
    /// collected files come from (`Unsupported` where the backend has none).
    fn user_home(&self) -> Result<UserHome, DesktopError> {
        Err(DesktopError::Unsupported("files"))
    }
    /// Signals for what changed without being asked, so the agent can wait
    /// for them instead of polling; `None`: this backend cannot tell, and the
    /// agent looks once a second.
    fn changes(&self) -> Option<std::sync::Arc<Changes>> {
        None
    }
    /// Gives back memory kept to make the next capture quick (a
    /// screen-sized buffer); called when captures have stopped for a while.
    fn release_buffers(&mut self) {}
}

/// A user's home folder and who owns what the agent writes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHome {
    /// The user's name.
    pub user: String,
    /// The home folder (it must exist; the agent never creates it).
    pub dir: std::path::PathBuf,
    /// Owner for new files and folders (`None`: the agent's own, when it runs
    /// as the user).
    pub owner: Option<(u32, u32)>,
}

/// A machine's inventory and word of when it may have changed.
pub trait InventorySource: Send + Sync + std::fmt::Debug {
    /// Reads the inventory now (blocking: reads files).
    fn collect(&self) -> lectern_proto::inventory::Inventory;
    /// Its value changes whenever the inventory may have changed.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// What a desktop signals when it changes; each [`Notify`] keeps one permit,
/// so a change between two waits is not lost and many changes wake once.
///
/// [`Notify`]: tokio::sync::Notify
#[derive(Debug, Default)]
pub struct Changes {
    /// The state (user, focus, title, lock) or the activity may have changed.
    pub state: tokio::sync::Notify,
    /// The screen was drawn on since the last capture.
    pub screen: tokio::sync::Notify,
    /// Sources connected now that cannot signal (an older session helper, an
    /// X display without a window manager): while any is, the agent also
    /// looks once a second.
    pub unsignalled: std::sync::atomic::AtomicUsize,
}

impl Changes {
    /// Whether some source must be polled now.
    pub fn polls(&self) -> bool {
        self.unsignalled.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// A source that cannot signal came (`true`) or went; signalled as a
    /// change of state, so a waiting agent starts or stops polling.
    pub fn unsignalled_source(&self, came: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if came {
            self.unsignalled.fetch_add(1, Relaxed);
        } else {
            let _ = self
                .unsignalled
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
        self.state.notify_one();
    }
}

/// Text a student typed into a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedText {
    /// The text.
    pub text: String,
    /// The page it was typed into.
    pub url: Option<String>,
    /// Who typed it, when known.
    pub user: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// Validates `cmd` with the shared rules and runs it on `desktop`. The agent
/// re-checks what the server checked: a compromised or buggy server still cannot
/// make it open a `file:` URL.
pub fn apply_command(desktop: &mut dyn Desktop, cmd: &Command) -> CommandResult {
    if let Err(e) = lectern_policy::validate_command(cmd) {
        return CommandResult::Failed {
            reason: e.to_string(),
        };
    }
    let r = match cmd {
        Command::Message { text } => desktop.show_message(text),
        Command::LaunchUrl { url } | Command::Meeting { url } => desktop.open_url(url),
        // The timer of a timed lock is the agent's (it outlives a session).
        Command::Lock { text, .. } => desktop.lock(text.as_deref()),
        Command::Unlock => desktop.unlock(),
        Command::ClearMessage => desktop.clear_message(),
        Command::BlockInternet => desktop.set_internet_blocked(true),
        Command::UnblockInternet => desktop.set_internet_blocked(false),
        Command::Logout => desktop.logout(),
        Command::CloseTab { tab_id } => desktop.close_tab(*tab_id),
        Command::CloseAllTabs => desktop.close_all_tabs(),
        Command::SetWebFilter { mode, allow, block } => desktop.set_web_filter(*mode, allow, block),
        // The countdown and the action are the agent's power timer's (it
        // outlives a session); here only whether the backend can.
        Command::Power { action, .. } => match desktop.power_supported(*action) {
            true => Ok(()),
            false => Err(DesktopError::Unsupported("power control")),
        },
        Command::CancelPower => Ok(()),
    };
    match r {
        Ok(()) => CommandResult::Done,
        Err(e) => CommandResult::Failed {
            reason: e.to_string(),
        },
    }
}
