//! The window thread: one thread owns an X connection for the agent's own
//! windows (lock screen, message, broadcast, remote-view question) and runs
//! their event loop, so the agent's calls, made from a blocking thread under a
//! mutex, only hand over work and wait briefly for it to be done.
//!
//! Every window shows a [`StudentUi`] surface (real fonts, full Unicode):
//! its pixels go into a pixmap that is the window's background, so the
//! server repaints exposed parts itself and this thread redraws only when
//! the surface changes (a new text, the question's countdown, a button's
//! hover after pointer input). Pointer and key events on the message and
//! the question go to their `StudentUi`, whose answers close them. Nothing
//! runs on a timer unless a lock, broadcast or question is up.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ReplyError, ReplyOrIdError};
use x11rb::properties::{WmHints, WmSizeHints, WmSizeHintsSpecification};
use x11rb::protocol::shape::{self, ConnectionExt as _};
use x11rb::protocol::xproto::ClipOrdering;
use x11rb::protocol::xproto::{
    AtomEnum, ButtonIndex, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux,
    EventMask, Gcontext, GrabMode, GrabStatus, ImageFormat, InputFocus, KeyButMask, Mapping,
    Pixmap, PropMode, StackMode, Visibility, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, CURRENT_TIME, NONE};

mod cover;
mod register;
mod requests;
pub use cover::{sign_in_view, AUP_WINDOW_NAME, SIGN_IN_WINDOW_NAME};
pub use register::REGISTER_WINDOW_NAME;
pub use requests::HAND_BUTTON_NAME;

use super::capture::{failed, screen_layout};
use super::info::Atoms;
use super::keys::Keymap;
use super::pictures;
use super::scale::{bgra_to_rgb, bgra_to_screen, rgb_to_screen, Layout};
use lectern_desktop::{DesktopError, Frame, StudentNotice, StudentRequest};
use lectern_student_ui::{Answer, Logo, StudentUi, Surface as View};

/// How long a remote-view question stays on screen unanswered, unless the
/// server says otherwise ([`Cmd::Ask`]'s `timeout`).
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the lock screen checks that it is on top and holds the grabs.
const TICK: Duration = Duration::from_millis(250);
/// How long a caller waits for the window thread to carry out a request.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the window thread is asked to do.
pub enum Cmd {
    /// Show (or redraw) the lock screen.
    Lock {
        /// School name shown under "LOCKED".
        school: String,
        /// The teacher's text.
        text: Option<String>,
    },
    /// Remove the lock screen.
    Unlock,
    /// Show a message (replacing one on screen).
    Message(String),
    /// Take the message off the screen, if one is there.
    ClearMessage,
    /// Open the broadcast window.
    StartBroadcast(String),
    /// Close the broadcast window.
    StopBroadcast,
    /// Show the remote-control notice naming the teacher (replacing one
    /// shown).
    StartControl(String),
    /// Remove the remote-control notice.
    StopControl,
    /// The school's logo for the lock screen, now and from now on.
    SetLogo(Option<Logo>),
    /// Ask whether a teacher may view the screen.
    Ask {
        /// Who asks.
        teacher: String,
        /// Where the student's answer goes.
        answer: oneshot::Sender<bool>,
        /// How long the question stays on screen unanswered.
        timeout: Duration,
    },
    /// What the server said about the student's requests (raised hand,
    /// chat).
    Notice(StudentNotice),
    /// Ask for the school's code to register with (see
    /// `Desktop::ask_school_code`).
    AskCode {
        /// Why the code before was refused, if it was.
        error: Option<String>,
        /// Where the typed code goes.
        answer: oneshot::Sender<String>,
    },
    /// A student is (or no longer is) signed in: the corner widget offers
    /// "Sign out".
    SignedIn(bool),
    /// Show the student sign-in (again, with a reason), or take it away.
    SignIn {
        /// What it shows; `None` takes it away.
        screen: Option<lectern_desktop::SignInScreen>,
        /// The school's name, shown above the form.
        school: String,
    },
    /// Show the acceptable use policy to accept (replacing one shown), or
    /// take it away.
    Aup {
        /// The policy; `None` takes it away.
        policy: Option<lectern_proto::aup::AcceptableUse>,
        /// The school's name, shown above its title.
        school: String,
    },
}

enum Msg {
    Do(Cmd, mpsc::Sender<Result<(), String>>),
    Quit,
}

/// State the window thread shares with the desktop.
#[derive(Default)]
pub struct Shared {
    /// A message is on screen.
    pub message_shown: bool,
    /// The newest broadcast frame not yet shown; older ones are dropped, so a
    /// slow display never builds a queue.
    pub frame: Option<Frame>,
    /// Raised hands and chat messages the student sent, for the agent.
    pub requests: Vec<StudentRequest>,
    /// The desktop's change signals: a queued request wakes the agent (it
    /// no longer looks every second).
    pub changes: Option<Arc<lectern_desktop::Changes>>,
}

/// The desktop's end of the window thread.
pub struct UiHandle {
    tx: mpsc::Sender<Msg>,
    wake: UnixStream,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl UiHandle {
    /// Connects to `display` and starts the window thread.
    pub fn spawn(display: Option<&str>) -> Result<UiHandle, DesktopError> {
        let (conn, screen_num) = x11rb::connect(display).map_err(failed)?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (wake, wake_rx) = UnixStream::pair().map_err(failed)?;
        wake.set_nonblocking(true).map_err(failed)?;
        wake_rx.set_nonblocking(true).map_err(failed)?;
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let for_thread = shared.clone();
        // The student surfaces are not Send, so the window state is made on
        // the thread that keeps it.
        let thread = std::thread::Builder::new()
            .name("lectern-x11-ui".into())
            .spawn(move || match Ui::new(conn, screen_num, for_thread) {
                Ok(mut ui) => {
                    // Ready only once started, so that no caller's
                    // CALL_TIMEOUT is spent on the start-up work.
                    ui.start();
                    let _ = ready_tx.send(Ok(()));
                    ui.run(rx, wake_rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(failed)?;
        let gone = || DesktopError::Failed("the X11 window thread stopped".into());
        ready_rx.recv().map_err(|_| gone())??;
        Ok(UiHandle {
            tx,
            wake,
            shared,
            thread: Some(thread),
        })
    }

    fn wake(&self) {
        use std::io::Write;
        // A full socket already means "wake up"; nothing is lost by ignoring it.
        let _ = (&self.wake).write(&[1]);
    }

    /// Hands `cmd` to the window thread and waits until it is done.
    pub fn call(&self, cmd: Cmd) -> Result<(), DesktopError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let gone = || DesktopError::Failed("the X display connection is closed".into());
        self.tx.send(Msg::Do(cmd, reply_tx)).map_err(|_| gone())?;
        self.wake();
        match reply_rx.recv_timeout(CALL_TIMEOUT) {
            Ok(r) => r.map_err(DesktopError::Failed),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(DesktopError::Failed(
                "the X display did not answer in time".into(),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }

    /// The shared state.
    pub fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a broadcast frame (replacing one not yet shown) without waiting.
    pub fn push_frame(&self, frame: Frame) {
        self.shared().frame = Some(frame);
        self.wake();
    }

    /// Whether the window thread is still running (its X connection alive).
    pub fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// Hands commands to the window thread from another thread without waiting
/// for them (the application guard shows its message this way).
pub struct UiSender {
    tx: mpsc::Sender<Msg>,
    wake: UnixStream,
}

impl UiSender {
    /// Queues `cmd`; a window thread that stopped makes it a no-op.
    pub fn send(&self, cmd: Cmd) {
        use std::io::Write;
        let (reply, _) = mpsc::channel();
        let _ = self.tx.send(Msg::Do(cmd, reply));
        let _ = (&self.wake).write(&[1]);
    }
}

impl UiHandle {
    /// A sender for another thread.
    pub fn sender(&self) -> Result<UiSender, DesktopError> {
        Ok(UiSender {
            tx: self.tx.clone(),
            wake: self.wake.try_clone().map_err(failed)?,
        })
    }
}

impl Drop for UiHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Quit);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One of the agent's windows: the X window, the pixmap that is its
/// background (so the server repaints it on every expose without a round
/// trip to this thread), and the student surface drawn into it.
struct Win {
    win: Window,
    pix: Pixmap,
    w: u16,
    h: u16,
    ui: StudentUi,
    /// Pointer input may have changed the look (hover, press): redraw once
    /// the queued events are handled.
    dirty: bool,
    /// The primary button is held over the window (a countdown redraw
    /// waits, so the press is not lost).
    pressed: bool,
    /// Hash of the pixels in the pixmap, so a redraw that changed nothing
    /// is not uploaded.
    shown: u64,
}

struct Lock {
    s: Win,
    keyboard: bool,
    pointer: bool,
}

struct Prompt {
    s: Win,
    teacher: String,
    answer: Option<oneshot::Sender<bool>>,
    deadline: Instant,
}

struct Broadcast {
    s: Win,
    /// The title bar (the surface's first rows, RGB), kept over every frame.
    bar: Vec<u8>,
}

/// What uploading pictures needs: the pixmaps' depth, the screen's pixel
/// layout, a GC and the largest request the server takes.
#[derive(Clone, Copy)]
struct Painter {
    gc: Gcontext,
    depth: u8,
    layout: Layout,
    max_request: usize,
}

impl Painter {
    /// Uploads a screen-format image into a pixmap, in strips that fit the
    /// server's request size limit (a full-HD screen is 8 MB, more than one
    /// request).
    fn put(&self, conn: &RustConnection, pix: Pixmap, w: u16, h: u16, data: &[u8]) -> XResult<()> {
        let row = usize::from(w) * 4;
        let max = self.max_request.saturating_sub(64);
        let rows_per = (max / row.max(1)).clamp(1, usize::from(h.max(1)));
        for (i, chunk) in data.chunks(rows_per * row).enumerate() {
            let y = i * rows_per;
            conn.put_image(
                ImageFormat::Z_PIXMAP,
                pix,
                self.gc,
                w,
                (chunk.len() / row) as u16,
                0,
                y as i16,
                0,
                self.depth,
                chunk,
            )?;
        }
        Ok(())
    }

    fn put_rgb(
        &self,
        conn: &RustConnection,
        pix: Pixmap,
        w: u16,
        h: u16,
        rgb: &[u8],
    ) -> XResult<()> {
        self.put(conn, pix, w, h, &rgb_to_screen(rgb, self.layout))
    }

    /// Draws `s`'s surface and shows it, unless the pixels are those shown.
    fn redraw(&self, conn: &RustConnection, s: &mut Win) -> XResult<()> {
        s.dirty = false;
        let bgra = s.ui.render();
        let mut hasher = DefaultHasher::new();
        bgra.hash(&mut hasher);
        let hash = hasher.finish();
        if hash == s.shown {
            return Ok(());
        }
        let data: Cow<'_, [u8]> = bgra_to_screen(bgra, self.layout);
        self.put(conn, s.pix, s.w, s.h, &data)?;
        // Not mapped yet while a window is being made: it shows the pixmap
        // when it is.
        if s.win != NONE {
            conn.clear_area(false, s.win, 0, 0, 0, 0)?;
        }
        s.shown = hash;
        Ok(())
    }
}

struct Ui {
    conn: RustConnection,
    root: Window,
    paint: Painter,
    atoms: Atoms,
    keymap: Keymap,
    lock: Option<Lock>,
    message: Option<Win>,
    broadcast: Option<Broadcast>,
    prompts: Vec<Prompt>,
    /// The remote-control notice, while a teacher controls the screen.
    banner: Option<Win>,
    shared: Arc<Mutex<Shared>>,
    /// The raise-hand widget, form and chat.
    asks: requests::Asks,
    /// Physical pixels per logical pixel (see [`super::dpi`]): surfaces are
    /// drawn at it and the dialogs and strip are sized by it.
    scale: f32,
    /// The school's logo, shown on the lock screen.
    logo: Option<Logo>,
    /// The window covering the screen until the student acts: the
    /// acceptable use policy or the student sign-in.
    cover: Option<cover::CoverWin>,
    /// What the covering window is wanted for.
    wanted: cover::Wanted,
    /// The registration form, while the agent asks for a school code.
    register: Option<register::RegisterWin>,
}

type XResult<T> = Result<T, Box<dyn std::error::Error>>;

impl Ui {
    fn new(
        conn: RustConnection,
        screen_num: usize,
        shared: Arc<Mutex<Shared>>,
    ) -> Result<Ui, DesktopError> {
        let screen = conn.setup().roots[screen_num].clone();
        let layout = screen_layout(&conn, &screen)?;
        let atoms = Atoms::new(&conn).map_err(failed)?.reply().map_err(failed)?;
        let gc = conn.generate_id().map_err(failed)?;
        conn.create_gc(gc, screen.root, &CreateGCAux::new())
            .map_err(failed)?;
        let keymap = keymap(&conn).map_err(failed)?;
        let scale = super::dpi::query(&conn, screen.root);
        tracing::debug!(scale, "student surfaces' scale");
        Ok(Ui {
            scale,
            logo: None,
            root: screen.root,
            paint: Painter {
                gc,
                depth: screen.root_depth,
                layout,
                max_request: conn.maximum_request_bytes(),
            },
            atoms,
            keymap,
            lock: None,
            message: None,
            broadcast: None,
            prompts: Vec::new(),
            banner: None,
            shared,
            asks: Default::default(),
            cover: None,
            wanted: Default::default(),
            register: None,
            conn,
        })
    }

    /// The start-up work: loads the fonts (seconds in a debug build on a
    /// busy machine) and shows the raise-hand widget.
    fn start(&mut self) {
        let _ = lectern_student_ui::fonts::families();
        if let Err(e) = survive(self.start_requests()) {
            tracing::warn!("cannot show the raise-hand widget: {e}");
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>, wake: UnixStream) {
        let mut next_tick = Instant::now();
        let result: XResult<()> = (|| loop {
            loop {
                match rx.try_recv() {
                    Ok(Msg::Do(cmd, reply)) => {
                        let r = self.handle(cmd).and_then(|()| self.sync());
                        let _ = reply.send(r.map_err(|e| e.to_string()));
                    }
                    Ok(Msg::Quit) | Err(mpsc::TryRecvError::Disconnected) => {
                        self.close_all();
                        return Ok(());
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            let frame = self.lock_shared().frame.take();
            if let Some(f) = frame {
                survive(self.show_frame(&f))?;
            }
            if Instant::now() >= next_tick {
                survive(self.tick())?;
                next_tick = Instant::now() + TICK;
            }
            self.settle()?;
            // Idle with nothing on screen that needs watching: sleep until
            // an event or a call.
            let timeout = if self.needs_tick() {
                let wait = next_tick.saturating_duration_since(Instant::now());
                wait.as_millis() as i32 + 1
            } else {
                -1
            };
            wait_readable([self.conn.stream().as_raw_fd(), wake.as_raw_fd()], timeout);
            drain(&wake);
        })();
        if let Err(e) = result {
            tracing::error!("X11 window thread stopped: {e}");
        }
        self.lock_shared().message_shown = false;
    }

    /// Handles every event read so far, redraws what they changed and
    /// flushes, until a flush leaves no event behind: only then may the
    /// loop sleep on the socket.
    ///
    /// Requests with replies, and any write that blocks (a surface upload is
    /// hundreds of kB, more than the socket holds while a busy server is slow
    /// to read), make x11rb read the server's events into its own queue;
    /// those no longer show on the socket, so sleeping with them queued
    /// would leave a click unanswered until something else woke the thread.
    fn settle(&mut self) -> XResult<()> {
        loop {
            while let Some(ev) = self.conn.poll_for_event()? {
                survive(self.event(ev))?;
            }
            // One redraw for all the pointer motion just handled.
            survive(self.redraw_dirty())?;
            self.conn.flush()?;
            match self.conn.poll_for_event()? {
                Some(ev) => survive(self.event(ev))?,
                None => return Ok(()),
            }
        }
    }

    fn lock_shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A round trip: when it returns, the server has carried out every
    /// request sent before, so a caller told "done" can rely on the screen.
    fn sync(&self) -> XResult<()> {
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// `logical` pixels at the screen's scale.
    fn px(&self, logical: u16) -> u16 {
        (f32::from(logical) * self.scale)
            .round()
            .min(f32::from(u16::MAX)) as u16
    }

    fn screen_size(&self) -> XResult<(u16, u16)> {
        let g = self.conn.get_geometry(self.root)?.reply()?;
        Ok((g.width, g.height))
    }

    fn handle(&mut self, cmd: Cmd) -> XResult<()> {
        match cmd {
            Cmd::Lock { school, text } => self.show_lock(&school, text.as_deref()),
            Cmd::Unlock => {
                if let Some(l) = self.lock.take() {
                    self.conn.ungrab_keyboard(CURRENT_TIME)?;
                    self.conn.ungrab_pointer(CURRENT_TIME)?;
                    self.destroy(&l.s)?;
                    self.restack()?;
                    self.cover_after_unlock()?;
                    self.unlocked()?;
                }
                Ok(())
            }
            Cmd::Message(text) => self.show_message(&text),
            Cmd::ClearMessage => self.dismiss_message(),
            Cmd::StartBroadcast(title) => self.start_broadcast(&title),
            Cmd::StopBroadcast => {
                if let Some(b) = self.broadcast.take() {
                    self.destroy(&b.s)?;
                }
                self.lock_shared().frame = None;
                Ok(())
            }
            Cmd::Ask {
                teacher,
                answer,
                timeout,
            } => self.ask(&teacher, answer, timeout),
            Cmd::StartControl(teacher) => self.show_banner(&teacher),
            Cmd::StopControl => {
                if let Some(b) = self.banner.take() {
                    self.destroy(&b)?;
                }
                Ok(())
            }
            Cmd::Notice(n) => self.notice(n),
            Cmd::Aup { policy, school } => self.show_aup(policy, &school),
            Cmd::SignIn { screen, school } => self.show_sign_in(screen, &school),
            Cmd::SignedIn(yes) => self.set_signed_in(yes),
            Cmd::AskCode { error, answer } => self.ask_code(error, answer),
            Cmd::SetLogo(logo) => self.set_logo(logo),
        }
    }

    /// Opens an override-redirect window at `area` showing `view` with the
    /// school's logo.
    fn open_with_logo(
        &self,
        area: (i16, i16, u16, u16),
        view: View,
        events: EventMask,
    ) -> XResult<Win> {
        let logo = self.logo.clone();
        self.open_with(area, true, view, events, move |ui| ui.set_logo(logo))
    }

    /// Opens a window at `area` showing `view`.
    fn open(
        &self,
        area: (i16, i16, u16, u16),
        override_redirect: bool,
        view: View,
        events: EventMask,
    ) -> XResult<Win> {
        self.open_with(area, override_redirect, view, events, |_| {})
    }

    /// Opens a window at `area` showing `view`, after `setup` has prepared
    /// its surface (before the first drawing).
    fn open_with(
        &self,
        (x, y, w, h): (i16, i16, u16, u16),
        override_redirect: bool,
        view: View,
        events: EventMask,
        setup: impl FnOnce(&mut StudentUi),
    ) -> XResult<Win> {
        let pix = self.conn.generate_id()?;
        self.conn
            .create_pixmap(self.paint.depth, pix, self.root, w, h)?;
        let mut s = Win {
            win: NONE,
            pix,
            w,
            h,
            ui: StudentUi::new(view, u32::from(w), u32::from(h), self.scale),
            dirty: false,
            pressed: false,
            shown: 0,
        };
        setup(&mut s.ui);
        self.paint.redraw(&self.conn, &mut s)?;
        s.win = self.conn.generate_id()?;
        self.conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            s.win,
            self.root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            COPY_FROM_PARENT,
            &CreateWindowAux::new()
                .background_pixmap(pix)
                .override_redirect(u32::from(override_redirect))
                .event_mask(events),
        )?;
        self.conn.change_property8(
            PropMode::REPLACE,
            s.win,
            AtomEnum::WM_CLASS,
            AtomEnum::STRING,
            b"lectern-agent\0Lectern\0",
        )?;
        Ok(s)
    }

    /// Makes a window a well-behaved dialog for a window manager, if one runs:
    /// title, fixed size and position, close button, kept above, takes focus.
    fn dialog_hints(&self, s: &Win, x: i16, y: i16, title: &str) -> XResult<()> {
        let (c, a) = (&self.conn, &self.atoms);
        c.change_property8(
            PropMode::REPLACE,
            s.win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            title.as_bytes(),
        )?;
        c.change_property8(
            PropMode::REPLACE,
            s.win,
            a._NET_WM_NAME,
            a.UTF8_STRING,
            title.as_bytes(),
        )?;
        c.change_property32(
            PropMode::REPLACE,
            s.win,
            a.WM_PROTOCOLS,
            AtomEnum::ATOM,
            &[a.WM_DELETE_WINDOW],
        )?;
        c.change_property32(
            PropMode::REPLACE,
            s.win,
            a._NET_WM_WINDOW_TYPE,
            AtomEnum::ATOM,
            &[a._NET_WM_WINDOW_TYPE_DIALOG],
        )?;
        c.change_property32(
            PropMode::REPLACE,
            s.win,
            a._NET_WM_STATE,
            AtomEnum::ATOM,
            &[a._NET_WM_STATE_ABOVE],
        )?;
        let (w, h) = (i32::from(s.w), i32::from(s.h));
        let hints = WmSizeHints {
            position: Some((WmSizeHintsSpecification::UserSpecified, x.into(), y.into())),
            size: Some((WmSizeHintsSpecification::UserSpecified, w, h)),
            min_size: Some((w, h)),
            max_size: Some((w, h)),
            ..WmSizeHints::default()
        };
        hints.set_normal_hints(c, s.win)?;
        WmHints {
            input: Some(true),
            ..WmHints::default()
        }
        .set(c, s.win)?;
        Ok(())
    }

    fn destroy(&self, s: &Win) -> XResult<()> {
        self.conn.destroy_window(s.win)?;
        self.conn.free_pixmap(s.pix)?;
        Ok(())
    }

    /// Puts the agent's windows on top in their order: broadcast, message,
    /// questions, and the lock screen above everything. With a lock, only the
    /// lock and the broadcast right under it move (relative to each other, so
    /// nothing ever shows through the lock, even for a moment); the rest is
    /// sorted out when the lock goes.
    fn restack(&self) -> XResult<()> {
        let above = ConfigureWindowAux::new().stack_mode(StackMode::ABOVE);
        match &self.lock {
            Some(l) => {
                self.conn.configure_window(l.s.win, &above)?;
                if let Some(b) = &self.broadcast {
                    self.conn.configure_window(
                        b.s.win,
                        &ConfigureWindowAux::new()
                            .sibling(l.s.win)
                            .stack_mode(StackMode::BELOW),
                    )?;
                }
            }
            None => {
                let order = self
                    .broadcast
                    .iter()
                    .map(|b| b.s.win)
                    .chain(self.message.iter().map(|m| m.win))
                    .chain(self.prompts.iter().map(|p| p.s.win))
                    .chain(self.banner.iter().map(|b| b.win))
                    .chain(self.register.iter().map(|r| r.s.win))
                    .chain(self.cover.iter().map(|a| a.s.win));
                for win in order {
                    self.conn.configure_window(win, &above)?;
                }
            }
        }
        Ok(())
    }

    /// Whether a foreign window sits above the lock screen or the broadcast.
    /// Restacking only then keeps the agent's own windows from triggering
    /// each other's VisibilityNotify forever.
    fn needs_restack(&self) -> XResult<bool> {
        let children = self.conn.query_tree(self.root)?.reply()?.children;
        if let Some(l) = &self.lock {
            return Ok(children.last() != Some(&l.s.win));
        }
        if let Some(a) = &self.cover {
            return Ok(children.last() != Some(&a.s.win));
        }
        let Some(b) = &self.broadcast else {
            return Ok(false);
        };
        let Some(i) = children.iter().position(|&w| w == b.s.win) else {
            return Ok(false);
        };
        for &w in &children[i + 1..] {
            if !self.is_ours(w)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One of the agent's windows, or a window manager's frame around one.
    fn is_ours(&self, w: Window) -> XResult<bool> {
        let ours: Vec<Window> = self
            .message
            .iter()
            .map(|m| m.win)
            .chain(self.prompts.iter().map(|p| p.s.win))
            .chain(self.lock.iter().map(|l| l.s.win))
            .chain(self.broadcast.iter().map(|b| b.s.win))
            .chain(self.banner.iter().map(|b| b.win))
            .chain(self.cover.iter().map(|a| a.s.win))
            .chain(self.register.iter().map(|r| r.s.win))
            .collect();
        let mut level = vec![w];
        // Frames nest the client one or two levels deep in common managers.
        for _ in 0..3 {
            if level.iter().any(|w| ours.contains(w)) {
                return Ok(true);
            }
            let mut next = Vec::new();
            for p in level {
                // A window destroyed meanwhile has no children to check.
                if let Ok(tree) = self.conn.query_tree(p)?.reply() {
                    next.extend(tree.children);
                }
            }
            level = next;
        }
        Ok(false)
    }

    /// Maps a new window of ours; under an existing lock it goes straight
    /// below the lock instead of appearing over it for a moment.
    fn map_below_lock(&self, win: Window) -> XResult<()> {
        if let Some(l) = &self.lock {
            self.conn.configure_window(
                win,
                &ConfigureWindowAux::new()
                    .sibling(l.s.win)
                    .stack_mode(StackMode::BELOW),
            )?;
        }
        self.conn.map_window(win)?;
        Ok(())
    }

    /// Keeps the logo for lock screens to come and redraws one shown.
    fn set_logo(&mut self, logo: Option<Logo>) -> XResult<()> {
        self.logo = logo;
        if let Some(l) = &mut self.lock {
            l.s.ui.set_logo(self.logo.clone());
            self.paint.redraw(&self.conn, &mut l.s)?;
        }
        Ok(())
    }

    fn show_lock(&mut self, school: &str, text: Option<&str>) -> XResult<()> {
        let view = View::Lock {
            school: school.to_owned(),
            text: text.map(str::to_owned),
        };
        if let Some(l) = &mut self.lock {
            // Already locked: only the text changes.
            l.s.ui.set_surface(view);
            self.paint.redraw(&self.conn, &mut l.s)?;
            return self.restack();
        }
        self.hide_hand_button()?;
        let (w, h) = self.screen_size()?;
        let s = self.open_with_logo(
            (0, 0, w, h),
            view,
            EventMask::VISIBILITY_CHANGE
                | EventMask::KEY_PRESS
                | EventMask::BUTTON_PRESS
                | EventMask::BUTTON_RELEASE,
        )?;
        self.conn.map_window(s.win)?;
        self.lock = Some(Lock {
            s,
            keyboard: false,
            pointer: false,
        });
        self.restack()?;
        // Another client (a menu, a game) may hold a grab for a moment; try
        // for half a second here, then keep trying on every tick.
        for _ in 0..10 {
            if self.grab()? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(
            "lock screen shown, but the keyboard or pointer grab is held elsewhere; retrying"
        );
        Ok(())
    }

    /// Takes the keyboard and pointer for the lock window; true when both held.
    fn grab(&mut self) -> XResult<bool> {
        let Some(l) = &mut self.lock else {
            return Ok(true);
        };
        let events = EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE;
        grab_input(
            &self.conn,
            l.s.win,
            (&mut l.keyboard, &mut l.pointer),
            events,
        )
    }

    fn show_message(&mut self, text: &str) -> XResult<()> {
        let view = View::Message {
            from: None,
            text: text.to_owned(),
        };
        if let Some(m) = &mut self.message {
            m.ui.set_surface(view);
            self.paint.redraw(&self.conn, m)?;
            self.lock_shared().message_shown = true;
            return self.restack();
        }
        let (sw, sh) = self.screen_size()?;
        let w = (sw / 2).clamp(sw.min(self.px(480)), self.px(960).min(sw));
        let h = (w * 9 / 16).min(sh);
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
        self.dialog_hints(&s, x, y, "Message from your teacher")?;
        self.map_below_lock(s.win)?;
        self.message = Some(s);
        self.lock_shared().message_shown = true;
        self.restack()
    }

    fn dismiss_message(&mut self) -> XResult<()> {
        if let Some(m) = self.message.take() {
            self.destroy(&m)?;
        }
        self.lock_shared().message_shown = false;
        Ok(())
    }

    fn start_broadcast(&mut self, title: &str) -> XResult<()> {
        if let Some(b) = self.broadcast.take() {
            self.destroy(&b.s)?;
        }
        let (w, h) = self.screen_size()?;
        let view = View::Broadcast {
            title: title.to_owned(),
        };
        let mut s = self.open((0, 0, w, h), true, view, EventMask::VISIBILITY_CHANGE)?;
        // The waiting screen's top rows are the title bar kept over frames.
        let rows = s.ui.title_bar_rows() as usize;
        let bar = bgra_to_rgb(&s.ui.render()[..usize::from(w) * rows * 4]);
        self.map_below_lock(s.win)?;
        self.broadcast = Some(Broadcast { bar, s });
        self.restack()
    }

    fn show_frame(&mut self, frame: &Frame) -> XResult<()> {
        let Some(b) = &self.broadcast else {
            return Ok(());
        };
        let (w, h) = (usize::from(b.s.w), usize::from(b.s.h));
        let rgb = pictures::broadcast_frame(w, h, frame, &b.bar);
        self.paint
            .put_rgb(&self.conn, b.s.pix, b.s.w, b.s.h, &rgb)?;
        self.conn.clear_area(false, b.s.win, 0, 0, 0, 0)?;
        Ok(())
    }

    fn ask(
        &mut self,
        teacher: &str,
        answer: oneshot::Sender<bool>,
        timeout: Duration,
    ) -> XResult<()> {
        let (sw, sh) = self.screen_size()?;
        // Top right, like a notification, so it leaves a message readable.
        let w = (sw / 3).clamp(sw.min(self.px(480)), self.px(640).min(sw));
        let h = (w * 9 / 16).min(sh);
        let margin = (sw - w).min(24);
        let (x, y) = ((sw - w - margin) as i16, margin.min(sh / 20) as i16);
        let deadline = Instant::now() + timeout;
        let view = question(teacher, deadline);
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
        self.dialog_hints(&s, x, y, "Screen view request")?;
        self.map_below_lock(s.win)?;
        self.prompts.push(Prompt {
            s,
            teacher: teacher.to_owned(),
            answer: Some(answer),
            deadline,
        });
        self.restack()
    }

    /// The remote-control notice: a strip centred on the top edge, above
    /// the student's windows, that takes no input (its input shape is
    /// empty, so clicks and the pointer go to what is under it).
    fn show_banner(&mut self, teacher: &str) -> XResult<()> {
        let view = View::Controlled {
            teacher: teacher.to_owned(),
        };
        if let Some(b) = &mut self.banner {
            b.ui.set_surface(view);
            self.paint.redraw(&self.conn, b)?;
            return self.restack();
        }
        let (sw, sh) = self.screen_size()?;
        let h = (sh / 24).clamp(self.px(28), self.px(64)).min(sh);
        let w = (h * 18).min(sw);
        let x = ((sw - w) / 2) as i16;
        let s = self.open((x, 0, w, h), true, view, EventMask::NO_EVENT)?;
        self.conn.shape_rectangles(
            shape::SO::SET,
            shape::SK::INPUT,
            ClipOrdering::UNSORTED,
            s.win,
            0,
            0,
            &[],
        )?;
        self.map_below_lock(s.win)?;
        self.banner = Some(s);
        self.restack()
    }

    fn close_prompt(&mut self, i: usize, answer: Option<bool>) -> XResult<()> {
        let mut p = self.prompts.remove(i);
        if let (Some(tx), Some(a)) = (p.answer.take(), answer) {
            let _ = tx.send(a);
        }
        self.destroy(&p.s)
    }

    /// Whether anything on screen needs the periodic check: a lock or a
    /// broadcast (kept on top, grabs retried) or a question (its countdown).
    fn needs_tick(&self) -> bool {
        self.lock.is_some()
            || self.broadcast.is_some()
            || !self.prompts.is_empty()
            || self.cover.is_some()
    }

    fn tick(&mut self) -> XResult<()> {
        let now = Instant::now();
        while let Some(i) = self.prompts.iter().position(|p| p.deadline <= now) {
            // Unanswered: dropping the sender tells the agent so, and the
            // default from the policy applies.
            self.close_prompt(i, None)?;
        }
        self.count_down()?;
        if self
            .lock
            .as_ref()
            .is_some_and(|l| !(l.keyboard && l.pointer))
        {
            self.grab()?;
        }
        if self.cover_needs_grab() {
            self.grab_cover()?;
        }
        // VisibilityNotify misses windows stacked above under a compositing
        // manager; the stacking order never lies.
        let on_top = self.lock.is_some() || self.broadcast.is_some() || self.cover.is_some();
        if on_top && self.needs_restack()? {
            self.restack()?;
        }
        Ok(())
    }

    /// Shows each question's seconds left; a redraw happens only when the
    /// number changes (once a second), and waits while a button is held.
    fn count_down(&mut self) -> XResult<()> {
        for p in &mut self.prompts {
            let view = question(&p.teacher, p.deadline);
            if p.s.pressed || *p.s.ui.surface() == view {
                continue;
            }
            p.s.ui.set_surface(view);
            self.paint.redraw(&self.conn, &mut p.s)?;
        }
        Ok(())
    }

    /// Redraws the windows whose look pointer input may have changed.
    fn redraw_dirty(&mut self) -> XResult<()> {
        let wins = self
            .message
            .iter_mut()
            .chain(self.prompts.iter_mut().map(|p| &mut p.s))
            .chain(self.asks.wins_mut())
            .chain(self.cover.iter_mut().map(|a| &mut a.s))
            .chain(self.register.iter_mut().map(|r| &mut r.s));
        for s in wins.filter(|s| s.dirty) {
            self.paint.redraw(&self.conn, s)?;
        }
        Ok(())
    }

    /// The window of ours that takes input (the message or a question).
    fn input_win(&mut self, win: Window) -> Option<&mut Win> {
        let message = self.message.iter_mut();
        let prompts = self.prompts.iter_mut().map(|p| &mut p.s);
        message
            .chain(prompts)
            .chain(self.asks.wins_mut())
            .chain(self.cover.iter_mut().map(|a| &mut a.s))
            .chain(self.register.iter_mut().map(|r| &mut r.s))
            .find(|s| s.win == win)
    }

    /// The pointer moved to (`x`, `y`) of `win`, and the primary button
    /// went down or up if `button` says so.
    fn pointer(&mut self, win: Window, x: i16, y: i16, button: Option<bool>) -> XResult<()> {
        let Some(s) = self.input_win(win) else {
            return Ok(());
        };
        let mut answer = s.ui.pointer_moved(x.into(), y.into());
        if let Some(pressed) = button {
            s.pressed = pressed;
            answer = answer.or(s.ui.pointer_button(pressed));
        }
        s.dirty = true;
        self.answered(win, answer)
    }

    fn key(&mut self, win: Window, keycode: u8, state: KeyButMask) -> XResult<()> {
        let press = self.keymap.press(keycode, state);
        let Some(s) = self.input_win(win) else {
            return Ok(());
        };
        let answer = s.ui.key(press.key, press.modifiers, press.text.as_deref());
        // Typing into a form changes its look.
        s.dirty = true;
        self.answered(win, answer)
    }

    /// Acts on a surface's answer: OK closes the message, Allow and Deny
    /// answer the question.
    fn answered(&mut self, win: Window, answer: Option<Answer>) -> XResult<()> {
        if answer == Some(Answer::AcceptAup) && self.aup_accepted(win)? {
            return Ok(());
        }
        if let Some(Answer::SignIn { name, secret }) = &answer {
            if self.signed_in(win, name, secret)? {
                return Ok(());
            }
        }
        if let Some(Answer::SwitchSchool { school }) = &answer {
            if self.switched_school(win, school)? {
                return Ok(());
            }
        }
        if let Some(Answer::Register { code }) = &answer {
            if self.register.as_ref().map(|r| r.s.win) == Some(win) {
                return self.registered(code.clone());
            }
        }
        if let Some(a) = &answer {
            if self.request_answer(win, a)? {
                return Ok(());
            }
        }
        let prompt = self.prompts.iter().position(|p| p.s.win == win);
        match (answer, prompt) {
            (Some(Answer::Dismissed), None) => self.dismiss_message(),
            (Some(Answer::Allowed), Some(i)) => self.close_prompt(i, Some(true)),
            (Some(Answer::Denied), Some(i)) => self.close_prompt(i, Some(false)),
            _ => Ok(()),
        }
    }

    fn event(&mut self, ev: Event) -> XResult<()> {
        let message = self.message.as_ref().map(|m| m.win);
        let primary = |b: u8| b == u8::from(ButtonIndex::M1);
        match ev {
            Event::VisibilityNotify(e) if e.state != Visibility::UNOBSCURED => {
                let ours = self.lock.as_ref().map(|l| l.s.win) == Some(e.window)
                    || self.broadcast.as_ref().map(|b| b.s.win) == Some(e.window)
                    || self.cover.as_ref().map(|a| a.s.win) == Some(e.window);
                if ours && self.needs_restack()? {
                    self.restack()?;
                }
            }
            Event::MapNotify(e) if self.input_win(e.window).is_some() => {
                // Without a window manager nobody gives the new window the
                // keyboard focus, and Enter/Escape would go elsewhere.
                self.conn
                    .set_input_focus(InputFocus::PARENT, e.window, CURRENT_TIME)?;
            }
            Event::MotionNotify(e) => self.pointer(e.event, e.event_x, e.event_y, None)?,
            Event::LeaveNotify(e) => self.pointer(e.event, -1, -1, None)?,
            Event::ButtonPress(e) if primary(e.detail) => {
                self.pointer(e.event, e.event_x, e.event_y, Some(true))?
            }
            Event::ButtonRelease(e) if primary(e.detail) => {
                self.pointer(e.event, e.event_x, e.event_y, Some(false))?
            }
            Event::ButtonPress(e) if e.detail == 4 || e.detail == 5 => {
                self.wheel(e.event, e.event_x, e.event_y, e.detail)?
            }
            Event::KeyPress(e) if self.is_hotkey(e.event, e.detail, e.state.into()) => {
                self.open_request(None)?
            }
            Event::KeyPress(e) => self.key(e.event, e.detail, e.state)?,
            Event::MappingNotify(e) if e.request == Mapping::KEYBOARD => {
                self.keymap = keymap(&self.conn)?;
            }
            Event::ClientMessage(e) if e.type_ == self.atoms.WM_PROTOCOLS => {
                // The window manager's close button.
                if message == Some(e.window) {
                    return self.dismiss_message();
                }
                if let Some(i) = self.prompts.iter().position(|p| p.s.win == e.window) {
                    return self.close_prompt(i, None);
                }
                if self.register.as_ref().map(|r| r.s.win) == Some(e.window) {
                    // Closed unanswered: the agent asks again later.
                    if let Some(r) = self.register.take() {
                        return self.destroy(&r.s);
                    }
                }
                self.request_closed(e.window)?;
            }
            Event::Error(e) => tracing::debug!("X11 error on the window connection: {e:?}"),
            _ => {}
        }
        Ok(())
    }

    fn close_all(&mut self) {
        let lock = self.lock.take().map(|l| l.s);
        let message = self.message.take();
        let broadcast = self.broadcast.take().map(|b| b.s);
        let prompts = std::mem::take(&mut self.prompts).into_iter().map(|p| p.s);
        let banner = self.banner.take();
        let asks = self.asks.take_all();
        let cover = self.cover.take().map(|a| a.s);
        let register = self.register.take().map(|r| r.s);
        for s in lock
            .into_iter()
            .chain(cover)
            .chain(register)
            .chain(banner)
            .chain(message)
            .chain(broadcast)
            .chain(prompts)
            .chain(asks)
        {
            let _ = self.destroy(&s);
        }
        let _ = self.conn.flush();
    }
}

/// The server's keyboard mapping.
fn keymap(conn: &RustConnection) -> XResult<Keymap> {
    let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
    let reply = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    Ok(Keymap::new(min, max, reply))
}

/// The remote-view question with the whole seconds left until `deadline`
/// (rounded up, so it counts 10 … 1).
fn question(teacher: &str, deadline: Instant) -> View {
    let left = deadline.saturating_duration_since(Instant::now());
    View::Question {
        teacher: teacher.to_owned(),
        seconds_left: left.as_millis().div_ceil(1000) as u32,
    }
}

/// Lets the loop go on after an X protocol error (a window that another
/// client destroyed between two requests, say); only a broken connection ends it.
fn survive(r: XResult<()>) -> XResult<()> {
    let Err(e) = r else {
        return Ok(());
    };
    let protocol = matches!(
        e.downcast_ref::<ReplyError>(),
        Some(ReplyError::X11Error(_))
    ) || matches!(
        e.downcast_ref::<ReplyOrIdError>(),
        Some(ReplyOrIdError::X11Error(_))
    );
    if protocol {
        tracing::debug!("X11 request failed: {e}");
        return Ok(());
    }
    Err(e)
}

/// Sleeps until one of `fds` is readable or `timeout_ms` passes.
fn wait_readable(fds: [RawFd; 2], timeout_ms: i32) {
    let mut p = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `p` is a valid array of two pollfd structures for the call's duration.
    unsafe {
        libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms);
    }
}

fn drain(s: &UnixStream) {
    use std::io::Read;
    let mut buf = [0u8; 64];
    while matches!((&*s).read(&mut buf), Ok(n) if n > 0) {}
}

/// Grabs for `win` whichever of the keyboard and the pointer (reporting
/// `events`) is not held yet, noting each success in `held`; true when both
/// are held. Another client holding either makes its grab fail until the
/// next try.
pub(super) fn grab_input(
    conn: &RustConnection,
    win: Window,
    held: (&mut bool, &mut bool),
    events: EventMask,
) -> XResult<bool> {
    let (keyboard, pointer) = held;
    if !*keyboard {
        let r = conn
            .grab_keyboard(false, win, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)?
            .reply()?;
        *keyboard = r.status == GrabStatus::SUCCESS;
    }
    if !*pointer {
        let r = conn
            .grab_pointer(
                false,
                win,
                events,
                GrabMode::ASYNC,
                GrabMode::ASYNC,
                win,
                NONE,
                CURRENT_TIME,
            )?
            .reply()?;
        *pointer = r.status == GrabStatus::SUCCESS;
    }
    Ok(*keyboard && *pointer)
}
