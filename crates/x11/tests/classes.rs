//! The teacher's "clear message" on a real X server (Xvfb): the message window
//! goes away without the student touching it, and clearing when nothing is
//! shown is fine.

mod common;

use common::Xvfb;
use lectern_desktop::{apply_command, Desktop};
use lectern_proto::{Command as Cmd, CommandResult};
use lectern_x11::MESSAGE_BG;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

/// The share of the screen's pixels that are exactly `c`, read from the X server.
fn share(display: &str, c: [u8; 3]) -> f32 {
    let (conn, n) = x11rb::connect(Some(display)).expect("connect to Xvfb");
    let root = conn.setup().roots[n].root;
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, 1280, 720, !0)
        .unwrap()
        .reply()
        .unwrap();
    let px: Vec<[u8; 3]> = img
        .data
        .chunks_exact(4)
        .map(|p| [p[2], p[1], p[0]])
        .collect();
    px.iter().filter(|p| **p == c).count() as f32 / px.len() as f32
}

#[test]
fn clear_message_takes_the_message_off_the_screen() {
    let x = Xvfb::start();
    let mut d = x.desktop();

    // Nothing on screen: clearing is done all the same.
    assert_eq!(
        apply_command(&mut d, &Cmd::ClearMessage),
        CommandResult::Done
    );

    let shown = apply_command(
        &mut d,
        &Cmd::Message {
            text: "Hand in your essays".into(),
        },
    );
    assert_eq!(shown, CommandResult::Done);
    assert!(d.state().message_shown);
    assert!(
        share(&x.display, MESSAGE_BG) > 0.1,
        "the message is on screen"
    );

    assert_eq!(
        apply_command(&mut d, &Cmd::ClearMessage),
        CommandResult::Done
    );
    assert!(!d.state().message_shown);
    assert!(
        share(&x.display, MESSAGE_BG) < 0.01,
        "the message window is gone from the X server"
    );
}
