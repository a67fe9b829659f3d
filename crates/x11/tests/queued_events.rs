//! The window thread never sleeps on events it has already read.
//!
//! Writing a large picture upload can block when the X server is slow to
//! read it; x11rb then reads the server's pending events into its own queue
//! while it waits, so the socket no longer shows them as readable. A window
//! thread that then sleeps on the socket misses those events until something
//! else wakes it, which on a busy machine made a click on the message's OK
//! go unanswered (the flaky `message_shows_and_ok_dismisses_it_when_clicked`).
//!
//! This test makes that happen on purpose: it holds a server grab (the X
//! server then reads nothing from the window thread) while it moves the
//! pointer onto OK, presses and releases. Each event makes the surface
//! redraw, and its ~600 kB upload fills the socket and blocks, so the next
//! events arrive while the thread is writing. After the grab ends the click
//! must still dismiss the message.

use std::time::{Duration, Instant};

use lectern_desktop::Desktop;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, ImageFormat, Window, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT,
    MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

mod common;

use common::Xvfb;

const W: usize = 1024;
const H: usize = 768;
/// The message's OK button as the student UI draws it.
const OK_BUTTON: [u8; 3] = [60, 60, 80];

/// Polls `cond` every 50 ms for up to 30 s (generous: debug builds on a
/// loaded machine).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sync(conn: &RustConnection) {
    conn.get_input_focus().unwrap().reply().unwrap();
}

/// Where the OK button is: the middle of its pixels on screen, once drawn.
fn ok_button(conn: &RustConnection, root: Window) -> Option<(i16, i16)> {
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, W as u16, H as u16, !0)
        .unwrap()
        .reply()
        .unwrap();
    // Xvfb at depth 24 is BGRX.
    let hits: Vec<(usize, usize)> = img
        .data
        .chunks_exact(4)
        .enumerate()
        .filter(|(_, p)| [p[2], p[1], p[0]] == OK_BUTTON)
        .map(|(i, _)| (i % W, i / W))
        .collect();
    let n = hits.len();
    if n < 100 {
        return None;
    }
    let x = hits.iter().map(|p| p.0).sum::<usize>() / n;
    let y = hits.iter().map(|p| p.1).sum::<usize>() / n;
    Some((x as i16, y as i16))
}

#[test]
fn a_click_read_while_an_upload_waits_still_dismisses_the_message() {
    let x = Xvfb::with_size(W, H);
    let (conn, n) = x11rb::connect(Some(&x.display)).expect("connect to Xvfb");
    let root = conn.setup().roots[n].root;
    let mut d = x.desktop();
    d.show_message("Rendez vos essais vendredi").unwrap();
    let mut ok = None;
    wait_until("the OK button is drawn", || {
        ok = ok_button(&conn, root);
        ok.is_some()
    });
    let (cx, cy) = ok.unwrap();

    // While the grab holds, the server reads nothing from the window thread
    // but still hands it the events of our fake input.
    conn.grab_server().unwrap();
    sync(&conn);
    // The pauses only give the window thread time to read each event and
    // start its (blocked) upload, so that the next event reaches it
    // mid-write; the outcome asserted below must not depend on them.
    let pause = Duration::from_millis(700);
    conn.xtest_fake_input(MOTION_NOTIFY_EVENT, 0, CURRENT_TIME, root, cx, cy, 0)
        .unwrap();
    sync(&conn);
    std::thread::sleep(pause);
    conn.xtest_fake_input(BUTTON_PRESS_EVENT, 1, CURRENT_TIME, root, 0, 0, 0)
        .unwrap();
    sync(&conn);
    std::thread::sleep(pause);
    conn.xtest_fake_input(BUTTON_RELEASE_EVENT, 1, CURRENT_TIME, root, 0, 0, 0)
        .unwrap();
    sync(&conn);
    std::thread::sleep(pause);
    conn.ungrab_server().unwrap();
    sync(&conn);

    wait_until("OK dismisses the message", || !d.state().message_shown);
    // And the thread still serves calls afterwards.
    d.show_message("encore").unwrap();
    assert!(d.state().message_shown);
}
