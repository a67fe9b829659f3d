//! The window thread: owns every window the agent shows (lock screens,
//! acceptable use policy, message, remote-view question, broadcast) and the
//! keyboard hook while locked or while the policy is up. Callers send a [`Cmd`] and wait for its result; the thread's
//! message loop draws windows through the [`SurfacePainter`] and feeds their
//! pointer and key input back through it.
//!
//! Window procedures find the thread's state in a thread-local. Win32 calls
//! made while that state is borrowed (CreateWindowExW, DestroyWindow) send
//! messages re-entrantly; those go to `DefWindowProcW`, which is all they
//! need. Painting only ever happens from the loop (InvalidateRect, never
//! UpdateWindow), so no paint is lost that way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lectern_desktop::{DesktopError, Frame, StudentRequest};
use lectern_proto::aup::AcceptableUse;
use lectern_student_ui::Logo;
use tokio::sync::oneshot;
use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, RECT, WPARAM};
use windows_sys::Win32::Graphics::Gdi::{
    BeginPaint, EndPaint, EnumDisplayMonitors, GetMonitorInfoW, InvalidateRect, ScreenToClient,
    StretchDIBits, DIB_RGB_COLORS, HDC, HMONITOR, MONITORINFO, PAINTSTRUCT, SRCCOPY,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::HiDpi::{
    GetDpiForSystem, GetDpiForWindow, SetThreadDpiAwarenessContext,
    DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, DispatchMessageW, GetClientRect, GetMessageW,
    KillTimer, LoadCursorW, PeekMessageW, PostThreadMessageW, RegisterClassW, SetForegroundWindow,
    SetLayeredWindowAttributes, SetTimer, SetWindowPos, SystemParametersInfoW, TranslateMessage,
    HWND_TOPMOST, IDC_ARROW, LWA_ALPHA, MONITORINFOF_PRIMARY, MSG, PM_NOREMOVE, SPI_GETWORKAREA,
    SWP_NOACTIVATE, SWP_NOMOVE, SWP_NOSIZE, WM_APP, WM_CHAR, WM_CLOSE, WM_DPICHANGED,
    WM_ERASEBKGND, WM_KEYDOWN, WM_KEYUP, WM_LBUTTONDOWN, WM_LBUTTONUP, WM_MOUSEMOVE, WM_MOUSEWHEEL,
    WM_PAINT, WM_QUIT, WM_TIMER, WNDCLASSW, WS_BORDER, WS_EX_LAYERED, WS_EX_NOACTIVATE,
    WS_EX_TOOLWINDOW, WS_EX_TOPMOST, WS_EX_TRANSPARENT, WS_POPUP, WS_VISIBLE,
};

use crate::capture::bitmap_info;
use crate::hook::{swallowed_keys, KeyboardHook};
use crate::paint::{PainterFactory, Surface, SurfaceAction, SurfaceInput, SurfacePainter};
use crate::wide::{last_error, wide};

/// Window class of the lock windows (one per monitor).
pub const LOCK_CLASS: &str = "LecternLock";
/// Window class of the teacher's message.
pub const MESSAGE_CLASS: &str = "LecternMessage";
/// Window class of the remote-view question.
pub const ASK_CLASS: &str = "LecternAsk";
/// Window class of the broadcast viewer.
pub const BROADCAST_CLASS: &str = "LecternBroadcast";
/// Window class of the remote-control notice.
pub const BANNER_CLASS: &str = "LecternControlNotice";
/// Window class of the acceptable use policy (one window per monitor).
pub const AUP_CLASS: &str = "LecternAcceptableUse";
/// Window class of the student sign-in.
pub const SIGN_IN_CLASS: &str = "LecternSignIn";
/// Window class of the registration form.
pub const REGISTER_CLASS: &str = "LecternRegister";
/// Window class of the "Sign out" widget (tests find it by this).
pub const SIGN_OUT_CLASS: &str = "LecternSignOut";

/// How long a caller waits for the window thread to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the lock windows push themselves back on top, above windows
/// other programs made topmost after them.
const RAISE_MS: u32 = 500;
const RAISE_TIMER: usize = 1;
/// How often an open question checks its time: often enough that the
/// seconds shown tick on time and it closes promptly when they run out.
const QUESTION_TICK_MS: u32 = 250;
const QUESTION_TIMER: usize = 2;
/// Wakes the loop to read the command channel.
const WM_WAKE: u32 = WM_APP + 1;

/// A request to the window thread.
pub(crate) enum Cmd {
    Lock {
        school: String,
        text: Option<String>,
    },
    Unlock,
    Message(String),
    /// Take the message off the screen, if one is there.
    ClearMessage,
    Ask {
        teacher: String,
        answer: oneshot::Sender<bool>,
        /// How long the question stays up unanswered.
        timeout: Duration,
    },
    StartBroadcast(String),
    Frame(Frame),
    StopBroadcast,
    /// Show the remote-control notice naming the teacher.
    StartControl(String),
    /// Remove the remote-control notice.
    StopControl,
    /// The school's logo on the lock screen, now and from now on.
    SetLogo(Option<Logo>),
    /// Ask for the school's code (the registration form), with why the
    /// last one was refused; an open form shows the reason and answers on
    /// the new sender.
    AskCode {
        error: Option<String>,
        answer: oneshot::Sender<String>,
    },
    /// Show the student sign-in (again, with a reason) or, with `None`,
    /// take it away.
    SignIn {
        screen: Option<lectern_desktop::SignInScreen>,
        school: String,
    },
    /// Whether a student is signed in: "Sign out" in a corner, or not.
    SignedIn(bool),
    /// Show this acceptable use policy (replacing one shown) or, with
    /// `None`, take it away.
    Aup {
        policy: Option<AcceptableUse>,
        school: String,
    },
}

type Reply = mpsc::Sender<Result<(), DesktopError>>;

/// State the window thread shares with callers.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub message_shown: AtomicBool,
    pub hook_active: AtomicBool,
    /// What the student did for the server (an accepted policy), oldest
    /// first, until the agent takes it.
    pub requests: Mutex<Vec<StudentRequest>>,
}

/// The caller's end of the window thread.
pub(crate) struct UiHandle {
    thread_id: u32,
    tx: mpsc::Sender<(Cmd, Reply)>,
    shared: Arc<Shared>,
    join: Option<JoinHandle<()>>,
}

impl UiHandle {
    /// Starts the window thread; `painters` makes each window's painter there.
    pub fn spawn(painters: PainterFactory) -> Result<Self, DesktopError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let join = std::thread::Builder::new()
            .name("lectern-windows-ui".into())
            .spawn(move || run(painters, rx, sh, ready_tx))
            .map_err(|e| DesktopError::Failed(format!("cannot start the window thread: {e}")))?;
        let thread_id = ready_rx
            .recv()
            .map_err(|_| DesktopError::Failed("the window thread ended".into()))??;
        Ok(UiHandle {
            thread_id,
            tx,
            shared,
            join: Some(join),
        })
    }

    /// Runs `cmd` on the window thread and returns its result.
    pub fn call(&self, cmd: Cmd) -> Result<(), DesktopError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let gone = || DesktopError::Failed("the window thread has ended".into());
        self.tx.send((cmd, reply_tx)).map_err(|_| gone())?;
        // SAFETY: posts a wake-up to the window thread's queue.
        if unsafe { PostThreadMessageW(self.thread_id, WM_WAKE, 0, 0) } == 0 {
            return Err(last_error("PostThreadMessageW"));
        }
        match reply_rx.recv_timeout(CALL_TIMEOUT) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(DesktopError::Failed(
                "the window thread did not answer".into(),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for UiHandle {
    fn drop(&mut self) {
        // SAFETY: posts WM_QUIT to the window thread's queue.
        unsafe { PostThreadMessageW(self.thread_id, WM_QUIT, 0, 0) };
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// What a window is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Lock,
    Message,
    Ask,
    Broadcast,
    Banner,
    Aup,
    SignIn,
    Register,
    SignOut,
}

/// One window: what it is for, what it shows, and its painter.
struct Window {
    role: Role,
    surface: Surface,
    painter: Box<dyn SurfacePainter>,
}

struct Ui {
    painters: PainterFactory,
    windows: HashMap<isize, Window>,
    lock: Vec<HWND>,
    message: Option<HWND>,
    ask: Option<Question>,
    broadcast: Option<HWND>,
    /// The remote-control notice.
    banner: Option<HWND>,
    /// "Sign out", while a student is signed in.
    sign_out: Option<HWND>,
    /// The acceptable use policy's windows, while it is up.
    aup: Option<AupWindows>,
    /// The student sign-in's windows (one per monitor), while it is up: over
    /// the policy (which waits for the student), under a lock.
    sign_in: Vec<HWND>,
    /// The registration form and where its code goes.
    register: Option<(HWND, oneshot::Sender<String>)>,
    /// Installed while locked or while the policy or the sign-in is up.
    hook: Option<KeyboardHook>,
    /// [`swallowed_keys`] when the hook went in, for the log at unlock.
    swallowed_before: u64,
    shared: Arc<Shared>,
    /// The school's logo, given to every lock window's painter.
    logo: Option<Logo>,
}

/// The acceptable use policy on screen: one window per monitor.
struct AupWindows {
    windows: Vec<HWND>,
    /// The version shown (what an acceptance names).
    version_id: i64,
}

/// The open remote-view question.
struct Question {
    window: HWND,
    teacher: String,
    answer: oneshot::Sender<bool>,
    deadline: Instant,
}

/// Whole seconds left until `deadline`, rounded up (what the student reads).
fn seconds_left(deadline: Instant, now: Instant) -> u32 {
    deadline
        .saturating_duration_since(now)
        .as_millis()
        .div_ceil(1000) as u32
}

thread_local! {
    static UI: RefCell<Option<Ui>> = const { RefCell::new(None) };
}

/// Runs `f` on the thread's state unless it is already borrowed (re-entrant
/// messages) or gone.
fn with_ui<R>(f: impl FnOnce(&mut Ui) -> R) -> Option<R> {
    UI.with(|cell| cell.try_borrow_mut().ok()?.as_mut().map(f))
}

fn run(
    painters: PainterFactory,
    rx: mpsc::Receiver<(Cmd, Reply)>,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<u32, DesktopError>>,
) {
    // SAFETY: window class registration and the message loop of this thread.
    unsafe {
        let mut msg: MSG = std::mem::zeroed();
        PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_NOREMOVE);
        // Per-monitor DPI awareness for this thread's windows only: Windows
        // then gives them their monitor's real pixels and DPI (instead of
        // stretching a 96-DPI bitmap, which blurs text), and the painters
        // scale the surfaces by it. The capture on other threads keeps the
        // process's awareness. Where the call fails (before Windows 10
        // 1607) the windows stay at scale 1, as before.
        if SetThreadDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2).is_null() {
            tracing::debug!("per-monitor DPI awareness refused; surfaces drawn at scale 1");
        }
        if let Err(e) = register_classes() {
            let _ = ready.send(Err(e));
            return;
        }
        UI.with(|cell| {
            *cell.borrow_mut() = Some(Ui {
                painters,
                windows: HashMap::new(),
                lock: Vec::new(),
                message: None,
                ask: None,
                broadcast: None,
                banner: None,
                sign_out: None,
                aup: None,
                sign_in: Vec::new(),
                register: None,
                hook: None,
                swallowed_before: 0,
                shared,
                logo: None,
            })
        });
        let _ = ready.send(Ok(GetCurrentThreadId()));
        while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
            if msg.hwnd.is_null() && msg.message == WM_WAKE {
                while let Ok((cmd, reply)) = rx.try_recv() {
                    let r = with_ui(|ui| ui.handle(cmd)).unwrap_or_else(|| {
                        Err(DesktopError::Failed("the window thread is busy".into()))
                    });
                    let _ = reply.send(r);
                }
                continue;
            }
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        // Windows go with the thread; the hook is removed here.
        let ui = UI.with(|cell| cell.borrow_mut().take());
        if let Some(mut ui) = ui {
            ui.close_all();
        }
    }
}

unsafe fn register_classes() -> Result<(), DesktopError> {
    let instance = GetModuleHandleW(std::ptr::null());
    for name in [
        LOCK_CLASS,
        MESSAGE_CLASS,
        ASK_CLASS,
        BROADCAST_CLASS,
        BANNER_CLASS,
        AUP_CLASS,
        SIGN_IN_CLASS,
        REGISTER_CLASS,
        SIGN_OUT_CLASS,
    ] {
        let class_name = wide(name);
        let wc = WNDCLASSW {
            style: 0,
            lpfnWndProc: Some(wndproc),
            cbClsExtra: 0,
            cbWndExtra: 0,
            hInstance: instance,
            hIcon: std::ptr::null_mut(),
            hCursor: LoadCursorW(std::ptr::null_mut(), IDC_ARROW),
            hbrBackground: std::ptr::null_mut(),
            lpszMenuName: std::ptr::null(),
            lpszClassName: class_name.as_ptr(),
        };
        // A second desktop in the same process registers again: that fails
        // with "class already exists", which is fine.
        RegisterClassW(&wc);
    }
    Ok(())
}

impl Ui {
    fn handle(&mut self, cmd: Cmd) -> Result<(), DesktopError> {
        match cmd {
            Cmd::Lock { school, text } => self.lock(Surface::Lock { school, text }),
            Cmd::Unlock => {
                self.unlock();
                Ok(())
            }
            Cmd::Message(text) => self.message(text),
            Cmd::ClearMessage => {
                if let Some(h) = self.message.take() {
                    self.destroy(h);
                }
                self.shared.message_shown.store(false, Ordering::SeqCst);
                Ok(())
            }
            Cmd::Ask {
                teacher,
                answer,
                timeout,
            } => self.ask(teacher, answer, timeout),
            Cmd::StartBroadcast(title) => self.start_broadcast(title),
            Cmd::Frame(frame) => {
                self.frame(frame);
                Ok(())
            }
            Cmd::StopBroadcast => {
                if let Some(h) = self.broadcast.take() {
                    self.destroy(h);
                }
                Ok(())
            }
            Cmd::SetLogo(logo) => {
                self.set_logo(logo);
                Ok(())
            }
            Cmd::Aup { policy, school } => self.show_aup(policy, school),
            Cmd::SignIn { screen, school } => self.show_sign_in(screen, school),
            Cmd::SignedIn(on) => self.show_sign_out(on),
            Cmd::AskCode { error, answer } => self.ask_code(error, answer),
            Cmd::StartControl(teacher) => self.banner(teacher),
            Cmd::StopControl => {
                if let Some(h) = self.banner.take() {
                    self.destroy(h);
                }
                Ok(())
            }
        }
    }

    fn lock(&mut self, surface: Surface) -> Result<(), DesktopError> {
        if !self.lock.is_empty() {
            self.set_surfaces(&self.lock.clone(), &surface);
            return Ok(());
        }
        match self.cover_monitors(Role::Lock, &surface) {
            Ok(windows) => self.lock = windows,
            Err(e) => {
                self.unlock();
                return Err(e);
            }
        }
        if let Some(&first) = self.lock.first() {
            // SAFETY: focus on our own window.
            unsafe { SetForegroundWindow(first) };
        }
        self.raise_dialogs();
        self.hold_keyboard();
        Ok(())
    }

    /// Installs the keyboard hook unless it is in already.
    fn hold_keyboard(&mut self) {
        if self.hook.is_some() {
            return;
        }
        match KeyboardHook::install() {
            Ok(h) => {
                self.hook = Some(h);
                self.swallowed_before = swallowed_keys();
                self.shared.hook_active.store(true, Ordering::SeqCst);
            }
            // The window still covers the screen; shortcuts can switch away.
            Err(e) => tracing::warn!("full-screen window without a keyboard hook: {e}"),
        }
    }

    /// Removes the keyboard hook once neither the lock nor the policy needs it.
    fn release_keyboard(&mut self) {
        if !self.lock.is_empty() || self.aup.is_some() || !self.sign_in.is_empty() {
            return;
        }
        if self.hook.take().is_some() {
            // What the hook did is otherwise invisible from outside the
            // process; the end-to-end test reads this line.
            let n = swallowed_keys() - self.swallowed_before;
            tracing::info!("unlocked; the keyboard hook swallowed {n} shortcuts while locked");
        }
        self.shared.hook_active.store(false, Ordering::SeqCst);
    }

    /// Shows `policy` on every monitor (replacing one shown), below a lock
    /// if there is one, or takes it away (`None`).
    fn show_aup(
        &mut self,
        policy: Option<AcceptableUse>,
        school: String,
    ) -> Result<(), DesktopError> {
        let Some(p) = policy else {
            self.close_aup();
            return Ok(());
        };
        let surface = Surface::AcceptableUse {
            school,
            title: p.title,
            version: p.version,
            text: p.text,
        };
        if let Some(a) = &mut self.aup {
            a.version_id = p.version_id;
            let windows = a.windows.clone();
            self.set_surfaces(&windows, &surface);
            return Ok(());
        }
        let windows = self.cover_monitors(Role::Aup, &surface)?;
        self.aup = Some(AupWindows {
            windows,
            version_id: p.version_id,
        });
        // The keys go to what is on top: a sign-in over the policy keeps
        // them.
        self.focus_cover();
        self.raise_dialogs();
        self.hold_keyboard();
        Ok(())
    }

    /// Takes the policy's windows away (and the hook, unless locked).
    fn close_aup(&mut self) {
        let Some(a) = self.aup.take() else { return };
        for h in a.windows {
            // SAFETY: our own timer on our own window.
            unsafe { KillTimer(h, RAISE_TIMER) };
            self.destroy(h);
        }
        self.release_keyboard();
    }

    /// The student accepted the policy in window `h`: queue the acceptance
    /// for the agent and take the policy away.
    fn aup_accepted(&mut self, h: HWND) {
        let Some(version_id) = self
            .aup
            .as_ref()
            .filter(|a| a.windows.contains(&h))
            .map(|a| a.version_id)
        else {
            return;
        };
        self.close_aup();
        let mut requests = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        requests.push(StudentRequest::AcceptAup { version_id });
    }

    /// Whether window `h` is the policy's or the sign-in's and something
    /// covers it (a lock; the sign-in, over the policy): it then takes no
    /// input (a key typed blind must not accept or sign in).
    fn aup_covered(&self, h: HWND) -> bool {
        let aup = self.aup.as_ref().is_some_and(|a| a.windows.contains(&h));
        let sign_in = self.sign_in.contains(&h);
        (!self.lock.is_empty() && (aup || sign_in)) || (aup && !self.sign_in.is_empty())
    }

    /// Shows the registration form (or, if it is open, its new reason),
    /// answering on `answer`; an earlier question's sender is dropped
    /// unanswered.
    fn ask_code(
        &mut self,
        error: Option<String>,
        answer: oneshot::Sender<String>,
    ) -> Result<(), DesktopError> {
        let surface = Surface::Register { error };
        if let Some((h, old)) = &mut self.register {
            *old = answer;
            let h = *h;
            self.set_surface(h, surface);
            return Ok(());
        }
        let h = self.create(Role::Register, surface, register_rect())?;
        self.register = Some((h, answer));
        self.raise_dialogs();
        Ok(())
    }

    /// The form in window `h` was sent: the code goes to the agent and the
    /// form closes.
    fn registered(&mut self, h: HWND, code: String) {
        if self.register.as_ref().map(|r| r.0) != Some(h) {
            return;
        }
        if let Some((h, answer)) = self.register.take() {
            self.destroy(h);
            let _ = answer.send(code);
        }
    }

    /// The form was closed unanswered: the agent hears nothing and asks
    /// again later.
    fn close_register(&mut self) {
        if let Some((h, answer)) = self.register.take() {
            drop(answer);
            self.destroy(h);
        }
    }

    /// Shows the sign-in on every monitor (or its new reason), above the
    /// policy and below a lock, or takes it away (`None`).
    fn show_sign_in(
        &mut self,
        screen: Option<lectern_desktop::SignInScreen>,
        school: String,
    ) -> Result<(), DesktopError> {
        let Some(screen) = screen else {
            self.close_sign_in();
            return Ok(());
        };
        let surface = Surface::SignIn {
            school,
            error: screen.error,
            schools: screen.schools,
        };
        if !self.sign_in.is_empty() {
            self.set_surfaces(&self.sign_in.clone(), &surface);
            return Ok(());
        }
        self.sign_in = self.cover_monitors(Role::SignIn, &surface)?;
        if self.lock.is_empty() {
            // SAFETY: focus on our own window.
            unsafe { SetForegroundWindow(self.sign_in[0]) };
        }
        self.raise_dialogs();
        self.hold_keyboard();
        Ok(())
    }

    /// Takes the sign-in away; a policy waiting under it takes the focus.
    fn close_sign_in(&mut self) {
        if self.sign_in.is_empty() {
            return;
        }
        for h in std::mem::take(&mut self.sign_in) {
            // SAFETY: our own timer on our own window.
            unsafe { KillTimer(h, RAISE_TIMER) };
            self.destroy(h);
        }
        self.release_keyboard();
        self.focus_cover();
    }

    /// Gives the focus to what covers the screen for the student now (the
    /// sign-in, else the policy), unless a lock is up.
    fn focus_cover(&self) {
        if !self.lock.is_empty() {
            return;
        }
        let first = self
            .sign_in
            .first()
            .or_else(|| self.aup.as_ref().and_then(|a| a.windows.first()));
        if let Some(&first) = first {
            // SAFETY: focus on our own window.
            unsafe { SetForegroundWindow(first) };
            self.raise_dialogs();
        }
    }

    /// A student signed in on window `h`: queue it for the agent, which
    /// takes the sign-in away or shows why not.
    fn signed_in(&mut self, h: HWND, name: String, secret: lectern_proto::signin::StudentSecret) {
        self.push_request(h, StudentRequest::SignIn { name, secret });
    }

    /// Queues what the student did on sign-in window `h` for the agent
    /// (nothing if `h` is not one: keys typed under a lock sign no one in).
    fn push_request(&mut self, h: HWND, request: StudentRequest) {
        if self.sign_in.contains(&h) {
            self.queue(request);
        }
    }

    /// Queues `request` for the agent (its next `take_requests`).
    fn queue(&self, request: StudentRequest) {
        let mut requests = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        requests.push(request);
    }

    /// "Sign out" at the bottom-right of the primary monitor's work area
    /// (above the taskbar) while a student is signed in on this shared
    /// computer; gone otherwise. Under a lock, like everything else.
    fn show_sign_out(&mut self, on: bool) -> Result<(), DesktopError> {
        match (on, self.sign_out) {
            (true, Some(_)) | (false, None) => Ok(()),
            (false, Some(h)) => {
                self.sign_out = None;
                self.destroy(h);
                Ok(())
            }
            (true, None) => {
                let area = work_area();
                // SAFETY: reads the system DPI.
                let scale = dpi_scale(unsafe { GetDpiForSystem() });
                let h = ((40.0 * scale) as i32).min(area.bottom - area.top);
                let w = (h as f32 * lectern_student_ui::SIGN_OUT_BUTTON_WIDTH) as i32;
                let margin = (8.0 * scale) as i32;
                let rect = RECT {
                    left: area.right - w - margin,
                    top: area.bottom - h - margin,
                    right: area.right - margin,
                    bottom: area.bottom - margin,
                };
                let hwnd = self.create(Role::SignOut, Surface::SignOut, rect)?;
                self.sign_out = Some(hwnd);
                self.raise_dialogs();
                Ok(())
            }
        }
    }

    /// Keeps `logo` for lock and sign-in windows made from now on and redraws those
    /// already up with it.
    fn set_logo(&mut self, logo: Option<Logo>) {
        for h in self
            .lock
            .iter()
            .chain(&self.sign_in)
            .copied()
            .collect::<Vec<_>>()
        {
            if let Some(w) = self.windows.get_mut(&(h as isize)) {
                w.painter.set_logo(logo.clone());
            }
            // SAFETY: our own window.
            unsafe { InvalidateRect(h, std::ptr::null(), 0) };
        }
        self.logo = logo;
    }

    fn unlock(&mut self) {
        for h in std::mem::take(&mut self.lock) {
            // SAFETY: our own timer on our own window.
            unsafe { KillTimer(h, RAISE_TIMER) };
            self.destroy(h);
        }
        self.release_keyboard();
        // The sign-in or policy the lock covered takes the keyboard back.
        self.focus_cover();
    }

    fn message(&mut self, text: String) -> Result<(), DesktopError> {
        let surface = Surface::Message { text };
        if let Some(h) = self.message {
            self.set_surface(h, surface);
        } else {
            let h = self.create(Role::Message, surface, dialog_rect())?;
            self.message = Some(h);
        }
        self.shared.message_shown.store(true, Ordering::SeqCst);
        self.raise_dialogs();
        Ok(())
    }

    fn ask(
        &mut self,
        teacher: String,
        answer: oneshot::Sender<bool>,
        timeout: Duration,
    ) -> Result<(), DesktopError> {
        // A newer question replaces an unanswered one, whose asker then
        // hears nothing (and applies its default).
        if let Some(q) = self.ask.take() {
            self.destroy(q.window);
        }
        let deadline = Instant::now() + timeout;
        let surface = Surface::Ask {
            teacher: teacher.clone(),
            seconds_left: seconds_left(deadline, Instant::now()),
        };
        let window = self.create(Role::Ask, surface, dialog_rect())?;
        // SAFETY: a timer on our own window; it goes with the window.
        unsafe { SetTimer(window, QUESTION_TIMER, QUESTION_TICK_MS, None) };
        self.ask = Some(Question {
            window,
            teacher,
            answer,
            deadline,
        });
        self.raise_dialogs();
        Ok(())
    }

    /// Counts the open question down; when its time is up it closes
    /// unanswered (dropping the sender tells the asker, whose default applies).
    fn tick_question(&mut self) {
        let Some(q) = &self.ask else { return };
        let now = Instant::now();
        if now >= q.deadline {
            if let Some(q) = self.ask.take() {
                self.destroy(q.window);
            }
            return;
        }
        let surface = Surface::Ask {
            teacher: q.teacher.clone(),
            seconds_left: seconds_left(q.deadline, now),
        };
        let window = q.window;
        // Redrawn only when the number changes.
        if self.windows.get(&(window as isize)).map(|w| &w.surface) != Some(&surface) {
            self.set_surface(window, surface);
        }
    }

    fn start_broadcast(&mut self, title: String) -> Result<(), DesktopError> {
        let surface = Surface::Broadcast { title, frame: None };
        if let Some(h) = self.broadcast {
            self.set_surface(h, surface);
            return Ok(());
        }
        let h = self.create(Role::Broadcast, surface, primary_rect())?;
        self.broadcast = Some(h);
        Ok(())
    }

    /// The remote-control notice: a strip centred on the primary monitor's
    /// top edge, topmost, never activated, and transparent to the mouse (a
    /// layered window with `WS_EX_TRANSPARENT`), so the student and the
    /// teacher click what is under it.
    fn banner(&mut self, teacher: String) -> Result<(), DesktopError> {
        let surface = Surface::Controlled { teacher };
        if let Some(h) = self.banner {
            self.set_surface(h, surface);
            return Ok(());
        }
        let m = primary_rect();
        let (mw, mh) = (m.right - m.left, m.bottom - m.top);
        let h = (mh / 24).clamp(28, 64);
        let w = (h * 18).min(mw);
        let left = m.left + (mw - w) / 2;
        let rect = RECT {
            left,
            top: m.top,
            right: left + w,
            bottom: m.top + h,
        };
        let hwnd = self.create(Role::Banner, surface, rect)?;
        // SAFETY: our own window; fully opaque, layered only so that
        // WS_EX_TRANSPARENT lets the mouse through.
        unsafe { SetLayeredWindowAttributes(hwnd, 0, 255, LWA_ALPHA) };
        self.banner = Some(hwnd);
        Ok(())
    }

    fn frame(&mut self, frame: Frame) {
        let Some(h) = self.broadcast else { return };
        if let Some(Window {
            surface: Surface::Broadcast { frame: f, .. },
            ..
        }) = self.windows.get_mut(&(h as isize))
        {
            *f = Some(Arc::new(frame));
        }
        // SAFETY: our own window.
        unsafe { InvalidateRect(h, std::ptr::null(), 0) };
    }

    /// Creates a visible topmost popup of `role` over `rect`.
    fn create(&mut self, role: Role, surface: Surface, rect: RECT) -> Result<HWND, DesktopError> {
        let class = wide(match role {
            Role::Lock => LOCK_CLASS,
            Role::Message => MESSAGE_CLASS,
            Role::Ask => ASK_CLASS,
            Role::Broadcast => BROADCAST_CLASS,
            Role::Banner => BANNER_CLASS,
            Role::Aup => AUP_CLASS,
            Role::SignIn => SIGN_IN_CLASS,
            Role::Register => REGISTER_CLASS,
            Role::SignOut => SIGN_OUT_CLASS,
        });
        let title = wide(match role {
            Role::Lock => "Lectern: locked",
            Role::Message => "Lectern: message",
            Role::Ask => "Lectern: live view request",
            Role::Broadcast => "Lectern: broadcast",
            Role::Banner => "Lectern: remote control",
            Role::Aup => "Lectern: acceptable use policy",
            Role::SignIn => "Lectern: sign in",
            Role::Register => "Lectern: register this computer",
            Role::SignOut => "Lectern: sign out",
        });
        // Full-screen windows have no border and no taskbar button; the
        // message and the question get a border so they stand out.
        let (ex, style) = match role {
            Role::Lock | Role::Broadcast | Role::Aup | Role::SignIn => {
                (WS_EX_TOPMOST | WS_EX_TOOLWINDOW, WS_POPUP | WS_VISIBLE)
            }
            Role::Message | Role::Ask | Role::Register => {
                (WS_EX_TOPMOST, WS_POPUP | WS_VISIBLE | WS_BORDER)
            }
            Role::Banner => (
                WS_EX_TOPMOST
                    | WS_EX_TOOLWINDOW
                    | WS_EX_LAYERED
                    | WS_EX_TRANSPARENT
                    | WS_EX_NOACTIVATE,
                WS_POPUP | WS_VISIBLE,
            ),
            // Clicked, never activated: the student's window keeps the keys.
            Role::SignOut => (
                WS_EX_TOPMOST | WS_EX_TOOLWINDOW | WS_EX_NOACTIVATE,
                WS_POPUP | WS_VISIBLE,
            ),
        };
        // SAFETY: creates a window of a class registered on this thread.
        let h = unsafe {
            CreateWindowExW(
                ex,
                class.as_ptr(),
                title.as_ptr(),
                style,
                rect.left,
                rect.top,
                rect.right - rect.left,
                rect.bottom - rect.top,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                GetModuleHandleW(std::ptr::null()),
                std::ptr::null(),
            )
        };
        if h.is_null() {
            return Err(last_error("CreateWindowExW"));
        }
        let mut painter = (self.painters)();
        if matches!(role, Role::Lock | Role::SignIn) {
            painter.set_logo(self.logo.clone());
        }
        // SAFETY: our own, just created window.
        painter.set_scale(dpi_scale(unsafe { GetDpiForWindow(h) }));
        self.windows.insert(
            h as isize,
            Window {
                role,
                surface,
                painter,
            },
        );
        // SAFETY: our own window.
        unsafe {
            InvalidateRect(h, std::ptr::null(), 0);
            // The policy takes the focus itself, only when no lock is up.
            if !matches!(
                role,
                Role::Broadcast | Role::Banner | Role::Aup | Role::SignIn | Role::SignOut
            ) {
                SetForegroundWindow(h);
            }
        }
        Ok(h)
    }

    /// One `role` window per monitor showing `surface`, the first keeping
    /// them all on top (its raise timer); none at all if one fails.
    fn cover_monitors(&mut self, role: Role, surface: &Surface) -> Result<Vec<HWND>, DesktopError> {
        let mut windows = Vec::new();
        for rect in monitors() {
            match self.create(role, surface.clone(), rect) {
                Ok(h) => windows.push(h),
                Err(e) => {
                    for h in windows {
                        self.destroy(h);
                    }
                    return Err(e);
                }
            }
        }
        if let Some(&first) = windows.first() {
            // SAFETY: a timer on our own window.
            unsafe { SetTimer(first, RAISE_TIMER, RAISE_MS, None) };
        }
        Ok(windows)
    }

    /// Shows `surface` in each of `windows` instead.
    fn set_surfaces(&mut self, windows: &[HWND], surface: &Surface) {
        for &h in windows {
            self.set_surface(h, surface.clone());
        }
    }

    fn set_surface(&mut self, h: HWND, surface: Surface) {
        if let Some(w) = self.windows.get_mut(&(h as isize)) {
            w.surface = surface;
        }
        // SAFETY: our own window.
        unsafe { InvalidateRect(h, std::ptr::null(), 0) };
    }

    fn destroy(&mut self, h: HWND) {
        self.windows.remove(&(h as isize));
        // SAFETY: our own window, destroyed once (removed from every field first).
        unsafe { DestroyWindow(h) };
    }

    fn close_all(&mut self) {
        self.close_register();
        self.close_sign_in();
        self.close_aup();
        self.unlock();
        for h in [
            self.message.take(),
            self.ask.take().map(|q| q.window),
            self.broadcast.take(),
            self.banner.take(),
            self.sign_out.take(),
        ]
        .into_iter()
        .flatten()
        {
            self.destroy(h);
        }
        self.shared.message_shown.store(false, Ordering::SeqCst);
    }

    /// Puts the policy's windows back on top, the lock windows above them,
    /// and the message and question above those (each call puts its window
    /// at the top, so the last is highest).
    fn raise_dialogs(&self) {
        let flags = SWP_NOMOVE | SWP_NOSIZE | SWP_NOACTIVATE;
        let dialogs = [
            self.register.as_ref().map(|r| r.0),
            self.message,
            self.ask.as_ref().map(|q| q.window),
        ];
        let aup = self.aup.iter().flat_map(|a| a.windows.iter().copied());
        for h in self
            .sign_out
            .into_iter()
            .chain(aup)
            .chain(self.sign_in.iter().copied())
            .chain(self.lock.iter().copied())
            .chain(dialogs.into_iter().flatten())
        {
            // SAFETY: our own windows.
            unsafe { SetWindowPos(h, HWND_TOPMOST, 0, 0, 0, 0, flags) };
        }
    }

    /// Carries out what input on window `h` asked for.
    fn act(&mut self, h: HWND, action: SurfaceAction) {
        match action {
            SurfaceAction::Redraw => {
                // SAFETY: our own window.
                unsafe { InvalidateRect(h, std::ptr::null(), 0) };
            }
            SurfaceAction::Dismiss if self.message == Some(h) => {
                self.message = None;
                self.shared.message_shown.store(false, Ordering::SeqCst);
                self.destroy(h);
            }
            SurfaceAction::Answer(yes) if self.ask.as_ref().is_some_and(|q| q.window == h) => {
                // The window goes first: whoever hears the answer sees it gone.
                if let Some(q) = self.ask.take() {
                    self.destroy(h);
                    let _ = q.answer.send(yes);
                }
            }
            SurfaceAction::AcceptAup => self.aup_accepted(h),
            SurfaceAction::SignIn { name, secret } => self.signed_in(h, name, secret),
            SurfaceAction::SwitchSchool { school } => {
                self.push_request(h, StudentRequest::SwitchSchool { school })
            }
            SurfaceAction::SignOut if self.sign_out == Some(h) => {
                self.queue(StudentRequest::SignOut);
            }
            SurfaceAction::Register { code } => self.registered(h, code),
            _ => {}
        }
    }

    /// Window `h` moved to a monitor of another DPI (or the user changed
    /// the display's scale): its painter draws at the new scale.
    fn rescale(&mut self, h: HWND, dpi: u32) {
        if let Some(w) = self.windows.get_mut(&(h as isize)) {
            w.painter.set_scale(dpi_scale(dpi));
        }
        // SAFETY: our own window.
        unsafe { InvalidateRect(h, std::ptr::null(), 0) };
    }

    /// Pixels of window `h` at `w`×`h`, from its painter.
    fn paint(&mut self, hwnd: HWND, w: u32, h: u32) -> Option<Vec<u8>> {
        let win = self.windows.get_mut(&(hwnd as isize))?;
        Some(win.painter.paint(&win.surface, w, h))
    }

    fn input(&mut self, hwnd: HWND, input: SurfaceInput) {
        if self.aup_covered(hwnd) {
            return;
        }
        let Some(win) = self.windows.get_mut(&(hwnd as isize)) else {
            return;
        };
        let (w, h) = client_size(hwnd);
        if let Some(action) = win.painter.input(&win.surface, w, h, input) {
            self.act(hwnd, action);
        }
    }

    fn role(&self, hwnd: HWND) -> Option<Role> {
        self.windows.get(&(hwnd as isize)).map(|w| w.role)
    }
}

fn client_size(hwnd: HWND) -> (u32, u32) {
    let mut r = RECT {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    // SAFETY: writes the client rectangle of a window into `r`.
    unsafe { GetClientRect(hwnd, &mut r) };
    (
        (r.right - r.left).max(0) as u32,
        (r.bottom - r.top).max(0) as u32,
    )
}

/// Signed client coordinates packed in a mouse message's lparam.
fn point(lparam: LPARAM) -> (i32, i32) {
    (
        i32::from(lparam as u16 as i16),
        i32::from((lparam >> 16) as u16 as i16),
    )
}

unsafe extern "system" fn wndproc(hwnd: HWND, msg: u32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    let input = match msg {
        WM_PAINT => {
            paint(hwnd);
            return 0;
        }
        WM_ERASEBKGND => return 1, // WM_PAINT covers every pixel
        WM_DPICHANGED => {
            // The new DPI is in the low word; the suggested rectangle is
            // ignored: a lock keeps covering its monitor.
            with_ui(|ui| ui.rescale(hwnd, (wparam & 0xffff) as u32));
            return 0;
        }
        WM_TIMER if wparam == RAISE_TIMER => {
            with_ui(|ui| ui.raise_dialogs());
            return 0;
        }
        WM_TIMER if wparam == QUESTION_TIMER => {
            with_ui(|ui| ui.tick_question());
            return 0;
        }
        WM_CLOSE => {
            // Alt+F4 or a window manager's close: the lock, the policy and
            // the broadcast stay, a message is dismissed, a question is denied.
            match with_ui(|ui| ui.role(hwnd)).flatten() {
                Some(Role::Message) => with_ui(|ui| ui.act(hwnd, SurfaceAction::Dismiss)),
                Some(Role::Ask) => with_ui(|ui| ui.act(hwnd, SurfaceAction::Answer(false))),
                Some(Role::Register) => with_ui(|ui| ui.close_register()),
                Some(_) => Some(()),
                None => return DefWindowProcW(hwnd, msg, wparam, lparam),
            };
            return 0;
        }
        WM_MOUSEMOVE => {
            let (x, y) = point(lparam);
            SurfaceInput::PointerMove { x, y }
        }
        WM_LBUTTONDOWN => {
            let (x, y) = point(lparam);
            SurfaceInput::PointerDown { x, y }
        }
        WM_LBUTTONUP => {
            let (x, y) = point(lparam);
            SurfaceInput::PointerUp { x, y }
        }
        WM_MOUSEWHEEL => {
            // The turn is the high word of wparam; the point is in screen
            // coordinates.
            let delta = i32::from((wparam >> 16) as u16 as i16);
            let (x, y) = point(lparam);
            let mut p = windows_sys::Win32::Foundation::POINT { x, y };
            ScreenToClient(hwnd, &mut p);
            SurfaceInput::Wheel {
                x: p.x,
                y: p.y,
                delta,
            }
        }
        WM_KEYDOWN => SurfaceInput::KeyDown(wparam as u16),
        WM_KEYUP => SurfaceInput::KeyUp(wparam as u16),
        WM_CHAR => match char::from_u32(wparam as u32) {
            Some(c) => SurfaceInput::Char(c),
            None => return 0,
        },
        _ => return DefWindowProcW(hwnd, msg, wparam, lparam),
    };
    if with_ui(|ui| ui.input(hwnd, input)).is_none() {
        return DefWindowProcW(hwnd, msg, wparam, lparam);
    }
    0
}

/// Paints window `hwnd` from the painter's pixels (computed before any
/// drawing call, outside the borrow of the state).
unsafe fn paint(hwnd: HWND) {
    let (w, h) = client_size(hwnd);
    let pixels = with_ui(|ui| ui.paint(hwnd, w, h)).flatten();
    let mut ps: PAINTSTRUCT = std::mem::zeroed();
    let hdc: HDC = BeginPaint(hwnd, &mut ps);
    if let Some(px) = pixels.filter(|p| p.len() == (w * h * 4) as usize && w > 0 && h > 0) {
        let info = bitmap_info(w as i32, h as i32);
        StretchDIBits(
            hdc,
            0,
            0,
            w as i32,
            h as i32,
            0,
            0,
            w as i32,
            h as i32,
            px.as_ptr().cast(),
            &info,
            DIB_RGB_COLORS,
            SRCCOPY,
        );
    }
    EndPaint(hwnd, &ps);
}

/// The rectangles of every monitor, primary first.
pub(crate) fn monitors() -> Vec<RECT> {
    unsafe extern "system" fn each(m: HMONITOR, _: HDC, _: *mut RECT, data: LPARAM) -> i32 {
        let out = &mut *(data as *mut Vec<(bool, RECT)>);
        let mut info: MONITORINFO = std::mem::zeroed();
        info.cbSize = std::mem::size_of::<MONITORINFO>() as u32;
        if GetMonitorInfoW(m, &mut info) != 0 {
            out.push((info.dwFlags & MONITORINFOF_PRIMARY != 0, info.rcMonitor));
        }
        1
    }
    let mut found: Vec<(bool, RECT)> = Vec::new();
    // SAFETY: the callback only runs during this call and writes to `found`.
    unsafe {
        EnumDisplayMonitors(
            std::ptr::null_mut(),
            std::ptr::null(),
            Some(each),
            &mut found as *mut _ as LPARAM,
        )
    };
    found.sort_by_key(|(primary, _)| !primary);
    let mut rects: Vec<RECT> = found.into_iter().map(|(_, r)| r).collect();
    if rects.is_empty() {
        rects.push(primary_fallback());
    }
    rects
}

fn primary_fallback() -> RECT {
    use windows_sys::Win32::UI::WindowsAndMessaging::{GetSystemMetrics, SM_CXSCREEN, SM_CYSCREEN};
    // SAFETY: reads system metrics.
    let (w, h) = unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) };
    RECT {
        left: 0,
        top: 0,
        right: w.max(640),
        bottom: h.max(360),
    }
}

fn primary_rect() -> RECT {
    monitors()[0]
}

/// The primary monitor's work area (without the taskbar), or the whole
/// monitor if the system does not say.
fn work_area() -> RECT {
    let mut r = RECT {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    // SAFETY: SPI_GETWORKAREA writes one RECT into `r`.
    let ok = unsafe { SystemParametersInfoW(SPI_GETWORKAREA, 0, (&mut r as *mut RECT).cast(), 0) };
    if ok == 0 || r.right <= r.left || r.bottom <= r.top {
        return primary_rect();
    }
    r
}

/// The registration form's box: 720 × 540 at the primary monitor's scale
/// (as on X11), centred, never larger than the monitor.
fn register_rect() -> RECT {
    let m = primary_rect();
    let (mw, mh) = (m.right - m.left, m.bottom - m.top);
    // SAFETY: reads the system DPI.
    let scale = dpi_scale(unsafe { GetDpiForSystem() });
    let w = ((720.0 * scale) as i32).min(mw);
    let h = ((540.0 * scale) as i32).min(mh);
    let (x, y) = (m.left + (mw - w) / 2, m.top + (mh - h) / 2);
    RECT {
        left: x,
        top: y,
        right: x + w,
        bottom: y + h,
    }
}

/// A 16:9 box centred on the primary monitor, half its width (at least 480 px).
fn dialog_rect() -> RECT {
    let m = primary_rect();
    let (mw, mh) = (m.right - m.left, m.bottom - m.top);
    let w = (mw / 2).max(480).min(mw);
    let h = (w * 9 / 16).min(mh);
    let (x, y) = (m.left + (mw - w) / 2, m.top + (mh - h) / 2);
    RECT {
        left: x,
        top: y,
        right: x + w,
        bottom: y + h,
    }
}

/// The surfaces' scale for a window at `dpi` (96 is 100 %); an unknown DPI
/// (0, from a failed call) is 100 %.
pub(crate) fn dpi_scale(dpi: u32) -> f32 {
    if dpi == 0 {
        1.0
    } else {
        dpi as f32 / 96.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_shows_whole_seconds_rounded_up() {
        let now = Instant::now();
        let left = |ms| seconds_left(now + Duration::from_millis(ms), now);
        assert_eq!((left(2000), left(1999), left(1001)), (2, 2, 2));
        assert_eq!((left(1000), left(1), left(0)), (1, 1, 0));
        assert_eq!(seconds_left(now, now + Duration::from_secs(5)), 0, "past");
    }

    #[test]
    fn a_monitors_dpi_is_the_surfaces_scale() {
        assert_eq!(dpi_scale(96), 1.0);
        assert_eq!(dpi_scale(144), 1.5);
        assert_eq!(dpi_scale(192), 2.0);
        assert_eq!(dpi_scale(0), 1.0, "a failed call draws at 100 %");
    }
}
