//! Application allow and block lists (`app_mode`) on an X11 session.
//!
//! A thread with its own X connection sleeps in `wait_for_event` on the root
//! window's `_NET_CLIENT_LIST` (the window manager's list of application
//! windows, changed whenever one opens) and checks each window: its names
//! are the `WM_CLASS` instance and class and, from `_NET_WM_PID`, the
//! process's executable base name and `comm`, compared without case. A
//! blocked window is asked to close (`WM_DELETE_WINDOW`, else its client is
//! disconnected); if it is still there after the grace period its process is
//! killed. The student sees why, and the attempt is logged as `app` activity.
//!
//! Never closed: the agent's own windows, processes of other users (system
//! processes), docks and desktops (`_NET_WM_WINDOW_TYPE`), and in allow-list
//! mode the built-in [`EXEMPT`] set (window managers, desktop shells, the
//! agent). Needs an EWMH window manager (every desktop has one); the thread
//! starts only when a policy first sets a mode, so a session without
//! application lists pays nothing.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lectern_proto::{ActivityEvent, AppMode, Policy};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ClientMessageEvent, ConnectionExt as _, EventMask, Window,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::capture::failed;
use crate::ui::{Cmd, UiSender};
use lectern_desktop::DesktopError;

/// Applications an allow list never closes: window managers, panels and
/// desktop shells (closing them would break the session, not stop an
/// application) and the agent itself. Matched like list entries.
pub const EXEMPT: &[&str] = &[
    // The agent and its surfaces.
    "lectern-agent",
    "lectern",
    // Window managers.
    "openbox",
    "xfwm4",
    "mutter",
    "metacity",
    "marco",
    "muffin",
    "kwin",
    "kwin_x11",
    "fluxbox",
    "icewm",
    "i3",
    // Desktop shells, panels and desktop icons.
    "gnome-shell",
    "plasmashell",
    "cinnamon",
    "xfce4-panel",
    "xfdesktop",
    "mate-panel",
    "lxpanel",
    "lxqt-panel",
    "pcmanfm-qt",
    "tint2",
    "plank",
];

/// Most attempts kept between two collections.
const MAX_EVENTS: usize = 100;

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        _NET_CLIENT_LIST,
        _NET_WM_PID,
        _NET_WM_NAME,
        _NET_WM_WINDOW_TYPE,
        _NET_WM_WINDOW_TYPE_DOCK,
        _NET_WM_WINDOW_TYPE_DESKTOP,
        WM_PROTOCOLS,
        WM_DELETE_WINDOW,
        UTF8_STRING,
    }
}

/// The lists in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRules {
    mode: AppMode,
    allow: Vec<String>,
    block: Vec<String>,
}

impl AppRules {
    /// The rules of `policy` (names lower-cased).
    pub fn from_policy(p: &Policy) -> Self {
        let lower = |l: &[String]| l.iter().map(|n| n.to_lowercase()).collect();
        AppRules {
            mode: p.app_mode,
            allow: lower(&p.app_allow_list),
            block: lower(&p.app_block_list),
        }
    }

    /// Whether any rule is in force.
    pub fn active(&self) -> bool {
        self.mode != AppMode::Off
    }

    /// The name to show if an application with `names` must close.
    pub fn blocks(&self, names: &[String]) -> Option<String> {
        let has = |list: &[String]| {
            names
                .iter()
                .any(|n| list.iter().any(|l| l.eq_ignore_ascii_case(n)))
        };
        let exempt: Vec<String> = EXEMPT.iter().map(|s| s.to_string()).collect();
        let blocked = match self.mode {
            AppMode::Off => false,
            AppMode::BlockList => has(&self.block),
            AppMode::AllowList => !has(&self.allow) && !has(&exempt),
        };
        blocked.then(|| names.first().cloned().unwrap_or_default())
    }
}

/// What the guard's thread and its callers share.
struct Inner {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    rules: Mutex<AppRules>,
    /// Windows being closed, with who they belonged to (window ids are
    /// reused, so a new window with an old id is checked afresh); each
    /// attempt is logged and acted on once.
    closing: Mutex<HashMap<Window, Ident>>,
    events: Mutex<Vec<ActivityEvent>>,
    ui: Mutex<UiSender>,
    grace: Duration,
    user: Option<String>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes blocked applications on one display.
pub struct AppGuard {
    inner: Arc<Inner>,
}

impl AppGuard {
    /// Watches `display` on a thread of its own; windows still open `grace`
    /// after being asked to close are killed.
    pub fn start(
        display: &str,
        ui: UiSender,
        grace: Duration,
        user: Option<String>,
    ) -> Result<AppGuard, DesktopError> {
        let (conn, n) = x11rb::connect(Some(display)).map_err(failed)?;
        let root = conn.setup().roots[n].root;
        let atoms = Atoms::new(&conn).map_err(failed)?.reply().map_err(failed)?;
        conn.change_window_attributes(
            root,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(failed)?
        .check()
        .map_err(failed)?;
        let inner = Arc::new(Inner {
            conn,
            root,
            atoms,
            rules: Mutex::new(AppRules::default()),
            closing: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            ui: Mutex::new(ui),
            grace,
            user,
        });
        let for_thread = inner.clone();
        std::thread::Builder::new()
            .name("lectern-x11-apps".into())
            .spawn(move || watch(&for_thread))
            .map_err(failed)?;
        Ok(AppGuard { inner })
    }

    /// Puts `rules` in force, checking the windows already open.
    pub fn set_rules(&self, rules: AppRules) {
        let changed = *guard(&self.inner.rules) != rules;
        *guard(&self.inner.rules) = rules;
        if changed {
            check_all(&self.inner);
        }
    }

    /// Attempts logged since the last call.
    pub fn take_events(&self) -> Vec<ActivityEvent> {
        std::mem::take(&mut *guard(&self.inner.events))
    }
}

/// The thread: one check per change of the client list, nothing otherwise.
fn watch(inner: &Arc<Inner>) {
    loop {
        match inner.conn.wait_for_event() {
            Ok(Event::PropertyNotify(e)) if e.atom == inner.atoms._NET_CLIENT_LIST => {
                check_all(inner)
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("application guard: the X connection closed: {e}");
                return;
            }
        }
    }
}

fn check_all(inner: &Arc<Inner>) {
    let rules = guard(&inner.rules).clone();
    if !rules.active() {
        return;
    }
    let list = client_list(inner);
    // Windows that went are done with.
    guard(&inner.closing).retain(|w, _| list.contains(w));
    for win in list {
        let Some(w) = describe(inner, win) else {
            continue;
        };
        let Some(app) = rules.blocks(&w.names) else {
            continue;
        };
        // Checked and marked at once: the guard's thread and a policy change
        // may look at the same time.
        let before = guard(&inner.closing).insert(win, w.ident.clone());
        if before.as_ref() != Some(&w.ident) {
            close(inner, win, &w, &app);
        }
    }
}

/// Who a window belongs to: its process (pid and start time, which tells it
/// from a later process given the same pid) and its WM_CLASS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ident {
    pid: Option<u32>,
    started: Option<u64>,
    class: Vec<u8>,
}

/// What is known about one application window.
struct WinInfo {
    names: Vec<String>,
    ident: Ident,
    title: Option<String>,
}

/// The window's names, or `None` when it must never be closed.
fn describe(inner: &Inner, win: Window) -> Option<WinInfo> {
    let a = &inner.atoms;
    let types = cardinals(inner, win, a._NET_WM_WINDOW_TYPE, AtomEnum::ATOM.into());
    if types
        .iter()
        .any(|t| *t == a._NET_WM_WINDOW_TYPE_DOCK || *t == a._NET_WM_WINDOW_TYPE_DESKTOP)
    {
        return None;
    }
    let pid = cardinals(inner, win, a._NET_WM_PID, AtomEnum::CARDINAL.into())
        .first()
        .copied()
        .filter(|p| *p > 1);
    let mut names = Vec::new();
    if let Some(pid) = pid {
        if pid == std::process::id() || !same_user(pid) {
            return None;
        }
        names.extend(process_names(pid));
    }
    let class = bytes(
        inner,
        win,
        AtomEnum::WM_CLASS.into(),
        AtomEnum::STRING.into(),
    );
    for part in class.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        names.push(String::from_utf8_lossy(part).to_lowercase());
    }
    if names.iter().any(|n| n == "lectern-agent") {
        return None;
    }
    names.dedup();
    let title = bytes(inner, win, a._NET_WM_NAME, a.UTF8_STRING);
    let title = (!title.is_empty()).then(|| String::from_utf8_lossy(&title).into_owned());
    let ident = Ident {
        pid,
        started: pid.and_then(start_time),
        class,
    };
    (!names.is_empty()).then_some(WinInfo {
        names,
        ident,
        title,
    })
}

/// The executable's base name and `comm` of `pid`.
fn process_names(pid: u32) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        if let Some(n) = exe.file_name() {
            v.push(n.to_string_lossy().to_lowercase());
        }
    }
    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        v.push(comm.trim().to_lowercase());
    }
    v
}

/// Whether `pid` runs as this session's user (never close system processes).
fn same_user(pid: u32) -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == me)
}

fn close(inner: &Arc<Inner>, win: Window, w: &WinInfo, app: &str) {
    tracing::info!(app, "closing a blocked application");
    // Logged and shown before the close, so whoever sees the window go
    // also finds the attempt recorded.
    guard(&inner.ui).send(Cmd::Message(format!(
        "{app} is blocked on this computer by your school."
    )));
    let mut events = guard(&inner.events);
    if events.len() < MAX_EVENTS {
        events.push(ActivityEvent {
            kind: "app".into(),
            user: inner.user.clone(),
            app: Some(app.to_string()),
            title: Some(match &w.title {
                Some(t) => format!("blocked: {t}"),
                None => "blocked".into(),
            }),
            at: now_ms(),
            blocked: true,
            ..Default::default()
        });
    }
    drop(events);
    if supports_delete(inner, win) {
        let msg = ClientMessageEvent::new(
            32,
            win,
            inner.atoms.WM_PROTOCOLS,
            [inner.atoms.WM_DELETE_WINDOW, 0, 0, 0, 0],
        );
        let _ = inner.conn.send_event(false, win, EventMask::NO_EVENT, msg);
    } else {
        let _ = inner.conn.kill_client(win);
    }
    let _ = inner.conn.flush();
    let (inner, ident) = (inner.clone(), w.ident.clone());
    std::thread::spawn(move || {
        std::thread::sleep(inner.grace);
        force(&inner, win, &ident);
    });
}

/// The grace is over: kill the process if the very same one still runs, or,
/// for a window without a pid, disconnect its client if the window is still
/// the same application's (its id may have been given to another window).
fn force(inner: &Inner, win: Window, ident: &Ident) {
    match ident.pid {
        Some(pid) => {
            let same = ident.started.is_some() && start_time(pid) == ident.started;
            if same && pid != std::process::id() && same_user(pid) {
                tracing::info!(pid, "killing a blocked application that did not close");
                // SAFETY: kill(2) on a process of this user.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        None => {
            let there = client_list(inner).contains(&win);
            if there
                && cardinals(
                    inner,
                    win,
                    inner.atoms._NET_WM_PID,
                    AtomEnum::CARDINAL.into(),
                )
                .is_empty()
                && wm_class(inner, win) == ident.class
            {
                let _ = inner.conn.kill_client(win);
                let _ = inner.conn.flush();
            }
        }
    }
}

/// When `pid` started (clock ticks since boot, `/proc/PID/stat` field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn wm_class(inner: &Inner, win: Window) -> Vec<u8> {
    bytes(
        inner,
        win,
        AtomEnum::WM_CLASS.into(),
        AtomEnum::STRING.into(),
    )
}

fn supports_delete(inner: &Inner, win: Window) -> bool {
    cardinals(inner, win, inner.atoms.WM_PROTOCOLS, AtomEnum::ATOM.into())
        .contains(&inner.atoms.WM_DELETE_WINDOW)
}

fn client_list(inner: &Inner) -> Vec<Window> {
    cardinals(
        inner,
        inner.root,
        inner.atoms._NET_CLIENT_LIST,
        AtomEnum::WINDOW.into(),
    )
}

/// A 32-bit list property (at most 4096 values).
fn cardinals(inner: &Inner, win: Window, prop: u32, ty: u32) -> Vec<u32> {
    inner
        .conn
        .get_property(false, win, prop, ty, 0, 4096)
        .ok()
        .and_then(|c| c.reply().ok())
        .and_then(|r| r.value32().map(|v| v.collect()))
        .unwrap_or_default()
}

/// An 8-bit property (at most 4 KiB).
fn bytes(inner: &Inner, win: Window, prop: u32, ty: u32) -> Vec<u8> {
    inner
        .conn
        .get_property(false, win, prop, ty, 0, 1024)
        .ok()
        .and_then(|c| c.reply().ok())
        .map(|r| r.value)
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(mode: AppMode, allow: &[&str], block: &[&str]) -> AppRules {
        AppRules::from_policy(&Policy {
            app_mode: mode,
            app_allow_list: allow.iter().map(|s| s.to_string()).collect(),
            app_block_list: block.iter().map(|s| s.to_string()).collect(),
            ..Policy::default()
        })
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_match_any_name_without_case_and_exempt_the_shell() {
        let block = rules(AppMode::BlockList, &[], &["XTerm"]);
        assert_eq!(
            block.blocks(&names(&["xterm", "xterm"])),
            Some("xterm".into())
        );
        assert_eq!(block.blocks(&names(&["xmessage"])), None);
        let allow = rules(AppMode::AllowList, &["firefox"], &["firefox"]);
        assert_eq!(allow.blocks(&names(&["firefox-esr", "firefox"])), None);
        assert!(allow.blocks(&names(&["xterm"])).is_some());
        assert_eq!(allow.blocks(&names(&["openbox"])), None, "window manager");
        assert_eq!(allow.blocks(&names(&["lectern-agent"])), None);
        let off = rules(AppMode::Off, &[], &["xterm"]);
        assert!(!off.active() && off.blocks(&names(&["xterm"])).is_none());
    }

    #[test]
    fn a_process_is_known_by_its_start_time() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(u32::MAX), None);
    }
}
