//! Application allow and block lists on a real X server with a real window
//! manager (Xvfb + openbox, which keeps `_NET_CLIENT_LIST`): a blocked xterm
//! is closed and the attempt logged, an allowed application stays, and with
//! the lists off nothing is closed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Xvfb;
use lectern_desktop::Desktop;
use lectern_proto::{AppMode, Policy};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};

/// A program on the test's display; killed when dropped.
struct App(Child);

impl App {
    fn start(display: &str, argv: &[&str]) -> App {
        App(Command::new(argv[0])
            .args(&argv[1..])
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {}: {e} (apt-get install -y openbox xterm x11-utils)",
                    argv[0]
                )
            }))
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// The signal that ended it (after it ended).
    fn killed_by(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.0.try_wait().unwrap().and_then(|s| s.signal())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The WM_CLASS class of each window in the window manager's client list
/// (xterm: "XTerm", xmessage: "Xmessage").
fn clients(display: &str) -> Vec<String> {
    let (conn, n) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[n].root;
    let list = conn
        .intern_atom(false, b"_NET_CLIENT_LIST")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    let wins: Vec<u32> = conn
        .get_property(false, root, list, AtomEnum::WINDOW, 0, 1024)
        .unwrap()
        .reply()
        .unwrap()
        .value32()
        .map(|v| v.collect())
        .unwrap_or_default();
    wins.iter()
        .filter_map(|w| {
            let v = conn
                .get_property(false, *w, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 256)
                .ok()?
                .reply()
                .ok()?
                .value;
            let class = v.split(|b| *b == 0).nth(1)?;
            Some(String::from_utf8_lossy(class).into_owned())
        })
        .collect()
}

/// How many client windows have `class`.
fn count(display: &str, class: &str) -> usize {
    clients(display).iter().filter(|c| *c == class).count()
}

/// Xvfb with openbox running (its client list exists).
fn desktop_with_wm() -> (Xvfb, App) {
    let x = Xvfb::start();
    let wm = App::start(&x.display, &["openbox", "--sm-disable"]);
    let (conn, n) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[n].root;
    let check = conn
        .intern_atom(false, b"_NET_SUPPORTING_WM_CHECK")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    let list = conn
        .intern_atom(false, b"_NET_CLIENT_LIST")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    // Its check window, then its (empty) client list: set up to manage.
    wait_until("openbox to manage the screen", || {
        let has = |prop, ty: AtomEnum| {
            conn.get_property(false, root, prop, ty, 0, 1)
                .unwrap()
                .reply()
                .is_ok_and(|r| r.type_ != x11rb::NONE)
        };
        has(check, AtomEnum::WINDOW) && has(list, AtomEnum::WINDOW)
    });
    (x, wm)
}

fn lists(mode: AppMode, allow: &[&str], block: &[&str]) -> Policy {
    Policy {
        app_mode: mode,
        app_allow_list: allow.iter().map(|s| s.to_string()).collect(),
        app_block_list: block.iter().map(|s| s.to_string()).collect(),
        ..Policy::default()
    }
}

#[test]
fn a_blocked_xterm_is_closed_and_logged_and_an_allowed_application_stays() {
    let (x, _wm) = desktop_with_wm();
    let mut d = x.desktop();
    d.set_app_grace(Duration::from_secs(2));
    assert!(d
        .apply_policy(&lists(AppMode::BlockList, &[], &["XTerm"]))
        .is_empty());

    let mut allowed = App::start(&x.display, &["xmessage", "allowed"]);
    wait_until("xmessage's window", || count(&x.display, "Xmessage") == 1);
    let mut blocked = App::start(&x.display, &["xterm", "-T", "homework"]);
    wait_until("the blocked xterm to close", || !blocked.running());
    assert!(
        allowed.running(),
        "an application not on the block list stays"
    );
    // The message is drawn by the window thread: wait for it.
    wait_until("the student to be told why", || d.state().message_shown);
    let events = d.take_activity();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "app");
    assert_eq!(events[0].app.as_deref(), Some("xterm"));
    assert!(
        events[0]
            .title
            .as_deref()
            .is_some_and(|t| t.starts_with("blocked")),
        "{events:?}"
    );
    d.clear_message().unwrap();

    // Allow list: only xmessage (and the window manager) may run; an xterm
    // already open is closed as soon as the list applies.
    d.apply_policy(&Policy::default());
    let mut open = App::start(&x.display, &["xterm"]);
    wait_until("the new xterm's window", || count(&x.display, "XTerm") == 1);
    assert!(d
        .apply_policy(&lists(AppMode::AllowList, &["xmessage"], &[]))
        .is_empty());
    wait_until("the xterm outside the allow list to close", || {
        !open.running()
    });
    assert!(allowed.running());
    assert!(_wm_alive(&x.display), "the window manager is never closed");
    assert_eq!(d.take_activity().len(), 1);
}

fn _wm_alive(display: &str) -> bool {
    // openbox keeps its check window while it runs.
    let (conn, n) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[n].root;
    let check = conn
        .intern_atom(false, b"_NET_SUPPORTING_WM_CHECK")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    conn.get_property(false, root, check, AtomEnum::WINDOW, 0, 1)
        .unwrap()
        .reply()
        .is_ok_and(|r| r.value_len > 0)
}

#[test]
fn with_the_lists_off_nothing_is_closed() {
    let (x, _wm) = desktop_with_wm();
    let mut d = x.desktop();
    // Lists were on, then the policy ends.
    d.apply_policy(&lists(AppMode::BlockList, &[], &["nothing-here"]));
    d.apply_policy(&lists(AppMode::Off, &[], &["xterm"]));
    let mut term = App::start(&x.display, &["xterm"]);
    wait_until("xterm's window", || count(&x.display, "XTerm") == 1);
    // Another change of the client list: the guard would have looked again.
    let _other = App::start(&x.display, &["xmessage", "later"]);
    wait_until("xmessage's window", || count(&x.display, "Xmessage") == 1);
    assert!(term.running());
    assert!(d.take_activity().is_empty());
}

/// Set to a display, the `stubborn_client` "test" becomes an X client that
/// names its process (`_NET_WM_PID`), says it takes WM_DELETE_WINDOW, and
/// ignores it.
const STUBBORN: &str = "LECTERN_TEST_STUBBORN_DISPLAY";

#[test]
fn stubborn_client() {
    use x11rb::protocol::xproto::{CreateWindowAux, PropMode, WindowClass};
    use x11rb::wrapper::ConnectionExt as _;
    let Ok(display) = std::env::var(STUBBORN) else {
        return; // an ordinary test run: nothing to do
    };
    let (conn, n) = x11rb::connect(Some(&display)).unwrap();
    let screen = &conn.setup().roots[n];
    let win = conn.generate_id().unwrap();
    conn.create_window(
        0,
        win,
        screen.root,
        0,
        0,
        200,
        100,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new(),
    )
    .unwrap();
    let atom = |name: &str| {
        conn.intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    };
    let (protocols, delete, pid) = (
        atom("WM_PROTOCOLS"),
        atom("WM_DELETE_WINDOW"),
        atom("_NET_WM_PID"),
    );
    conn.change_property32(PropMode::REPLACE, win, protocols, AtomEnum::ATOM, &[delete])
        .unwrap();
    conn.change_property32(
        PropMode::REPLACE,
        win,
        pid,
        AtomEnum::CARDINAL,
        &[std::process::id()],
    )
    .unwrap();
    conn.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        b"stubborn\0Stubborn\0",
    )
    .unwrap();
    conn.map_window(win).unwrap();
    conn.flush().unwrap();
    // Every event, the close request included, is read and ignored.
    while conn.wait_for_event().is_ok() {}
}

#[test]
fn an_application_ignoring_the_close_request_is_killed_after_the_grace() {
    let (x, _wm) = desktop_with_wm();
    let mut d = x.desktop();
    d.set_app_grace(Duration::from_millis(500));
    let exe = std::env::current_exe().unwrap();
    let mut stubborn = App(Command::new(exe)
        .args(["--exact", "stubborn_client", "--test-threads=1"])
        .env(STUBBORN, &x.display)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    wait_until("the stubborn window", || count(&x.display, "Stubborn") == 1);
    d.apply_policy(&lists(AppMode::BlockList, &[], &["stubborn"]));
    wait_until("the stubborn client to be killed", || !stubborn.running());
    assert_eq!(stubborn.killed_by(), Some(9), "killed after the grace");
    assert_eq!(d.take_activity().len(), 1);
}
