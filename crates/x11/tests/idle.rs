//! Issue 13.2, free when idle: focus, title and screen changes come from X
//! events (a window manager, Debian's `openbox`, on the Xvfb display sets
//! `_NET_ACTIVE_WINDOW`), and a still screen signals nothing at all, so the
//! agent has nothing to poll.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lectern_desktop::{Changes, Desktop};
use tokio::sync::Notify;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask,
    PropMode, Rectangle, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Generous: a busy machine may be slow, but a signal must come.
const DEADLINE: Duration = Duration::from_secs(20);
/// How long nothing may be signalled while nothing changes.
const QUIET: Duration = Duration::from_secs(3);

/// openbox on a display; killed when dropped.
struct Openbox(Child);

impl Openbox {
    fn start(display: &str, conn: &RustConnection, root: Window) -> Openbox {
        let child = Command::new("openbox")
            .arg("--sm-disable")
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "openbox not found: these tests need a window manager on the Xvfb display \
                 (apt-get install -y openbox)",
            );
        // Killed and reaped on drop, whether it started or not.
        let wm = Openbox(child);
        let check = intern(conn, "_NET_SUPPORTING_WM_CHECK");
        for _ in 0..200 {
            let r = conn
                .get_property(false, root, check, AtomEnum::WINDOW, 0, 1)
                .unwrap()
                .reply()
                .unwrap();
            if r.value_len > 0 {
                return wm;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("openbox did not start on {display}");
    }
}

impl Drop for Openbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn intern(conn: &RustConnection, name: &str) -> u32 {
    conn.intern_atom(false, name.as_bytes())
        .unwrap()
        .reply()
        .unwrap()
        .atom
}

/// A managed window titled `title`, mapped (openbox focuses it).
fn open_window(conn: &RustConnection, root: Window, title: &str) -> Window {
    let win = conn.generate_id().unwrap();
    let aux = CreateWindowAux::new()
        .background_pixel(0x00ff_ffff)
        .event_mask(EventMask::EXPOSURE);
    conn.create_window(
        0,
        win,
        root,
        100,
        100,
        400,
        300,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )
    .unwrap();
    conn.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        b"worksheet\0Worksheet\0",
    )
    .unwrap();
    set_title(conn, win, title);
    conn.map_window(win).unwrap();
    conn.flush().unwrap();
    activate(conn, root, win);
    win
}

/// Once openbox manages `win` (it sets `WM_STATE`), asks it to focus it
/// (openbox does not focus every new window, e.g. while it starts).
fn activate(conn: &RustConnection, root: Window, win: Window) {
    let wm_state = intern(conn, "WM_STATE");
    let managed = (0..200).any(|i| {
        let r = conn
            .get_property(false, win, wm_state, AtomEnum::ANY, 0, 1)
            .unwrap()
            .reply()
            .unwrap();
        if r.value_len > 0 {
            return true;
        }
        // A map that raced openbox's start can go unnoticed: map it again.
        if i % 20 == 19 {
            conn.unmap_window(win).unwrap();
            conn.map_window(win).unwrap();
            conn.flush().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(managed, "openbox never managed the window");
    // EWMH: source 2 (a pager), so the window manager does as asked.
    let active = intern(conn, "_NET_ACTIVE_WINDOW");
    let msg = ClientMessageEvent::new(32, win, active, [2u32, 0, 0, 0, 0]);
    let mask = EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY;
    conn.send_event(false, root, mask, msg).unwrap();
    conn.flush().unwrap();
}

fn set_title(conn: &RustConnection, win: Window, title: &str) {
    let (net_name, utf8) = (intern(conn, "_NET_WM_NAME"), intern(conn, "UTF8_STRING"));
    conn.change_property8(PropMode::REPLACE, win, net_name, utf8, title.as_bytes())
        .unwrap();
    conn.flush().unwrap();
}

/// Draws a rectangle into `win`.
fn draw(conn: &RustConnection, win: Window, colour: u32) {
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, win, &CreateGCAux::new().foreground(colour))
        .unwrap();
    let r = Rectangle {
        x: 10,
        y: 10,
        width: 50,
        height: 50,
    };
    conn.poly_fill_rectangle(win, gc, &[r]).unwrap();
    conn.free_gc(gc).unwrap();
    conn.flush().unwrap();
}

/// Waits (signal by signal) until `ok` holds.
async fn until_signalled(n: &Notify, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !ok() {
        tokio::time::timeout_at(deadline, n.notified())
            .await
            .unwrap_or_else(|_| panic!("{what}: no signal within {DEADLINE:?}"));
    }
}

/// Lets earlier signals pass (until a second without one), then asserts
/// that nothing is signalled for [`QUIET`].
async fn assert_quiet(n: &Notify, what: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::timeout(Duration::from_secs(1), n.notified())
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: signals keep coming"
        );
    }
    assert!(
        tokio::time::timeout(QUIET, n.notified()).await.is_err(),
        "{what}: signalled while nothing changed"
    );
}

#[tokio::test]
async fn focus_and_title_changes_are_signalled_and_nothing_else() {
    let x = common::Xvfb::start();
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let _wm = Openbox::start(&x.display, &conn, root);
    let desktop = x.desktop();
    let changes: std::sync::Arc<Changes> = desktop.changes().expect("X11 signals its changes");

    let title = |d: &lectern_x11::X11Desktop| d.state().window_title;
    let win = open_window(&conn, root, "Maths worksheet");
    until_signalled(&changes.state, "a new focused window", || {
        title(&desktop).as_deref() == Some("Maths worksheet")
    })
    .await;
    assert_eq!(desktop.state().focused_app.as_deref(), Some("Worksheet"));

    set_title(&conn, win, "Maths worksheet — question 2");
    until_signalled(&changes.state, "a new title", || {
        title(&desktop).as_deref() == Some("Maths worksheet — question 2")
    })
    .await;

    // A second window takes the focus, and its title is followed, not the
    // first one's any more.
    let other = open_window(&conn, root, "Essay");
    until_signalled(&changes.state, "focus moving", || {
        title(&desktop).as_deref() == Some("Essay")
    })
    .await;
    assert_quiet(&changes.state, "focus and titles unchanged").await;
    set_title(&conn, other, "Essay (draft)");
    until_signalled(&changes.state, "the focused window's title", || {
        title(&desktop).as_deref() == Some("Essay (draft)")
    })
    .await;
    drop(desktop);
}

#[tokio::test]
async fn a_still_screen_signals_nothing_and_drawing_signals_once_per_capture() {
    let x = common::Xvfb::start();
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let _wm = Openbox::start(&x.display, &conn, root);
    let mut desktop = x.desktop();
    let changes = desktop.changes().expect("X11 signals its changes");
    let win = open_window(&conn, root, "Drawing");
    until_signalled(&changes.state, "the window", || {
        desktop.state().window_title.as_deref() == Some("Drawing")
    })
    .await;

    // A capture takes what was drawn; then a still screen is silent.
    desktop.capture(320).unwrap();
    assert_quiet(&changes.screen, "a still screen").await;

    draw(&conn, win, 0x00ff_0000);
    tokio::time::timeout(DEADLINE, changes.screen.notified())
        .await
        .expect("drawing is signalled");
    // More drawing before the next capture adds nothing: one signal per
    // capture, however busy the screen.
    draw(&conn, win, 0x0000_ff00);
    draw(&conn, win, 0x0000_00ff);
    assert!(
        tokio::time::timeout(QUIET, changes.screen.notified())
            .await
            .is_err(),
        "signalled again before the next capture"
    );
    desktop.capture(320).unwrap();
    draw(&conn, win, 0x00ff_ff00);
    tokio::time::timeout(DEADLINE, changes.screen.notified())
        .await
        .expect("drawing after a capture is signalled again");
}

#[tokio::test]
async fn without_a_window_manager_the_desktop_asks_to_be_polled_until_one_starts() {
    let x = common::Xvfb::start();
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let desktop = x.desktop();
    let changes = desktop.changes().expect("X11 signals its changes");
    // No _NET_ACTIVE_WINDOW without a window manager: focus cannot be
    // signalled, so the agent must look itself.
    assert!(changes.polls(), "no window manager, yet not polled");
    let _wm = Openbox::start(&x.display, &conn, root);
    until_signalled(&changes.state, "the window manager starting", || {
        !changes.polls()
    })
    .await;
}
