//! Issue 13 point 3 on a real X server: the raise-hand widget in the
//! corner (hidden while locked), the Ctrl+Alt+H shortcut, the form with a
//! Unicode note, the teacher's answer as a message, and the chat both ways.
//! Keys come from `xdotool` as a student's would; screenshots of each step
//! go to `tests/e2e/out/requests-x11-*.png`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{queued_requests, save_screen, wait_until, xdotool, Xvfb};
use lectern_desktop::{Desktop, StudentNotice, StudentRequest};
use lectern_proto::requests::ChatLine;
use lectern_student_ui::{HAND_BUTTON_BG, REQUEST_BG};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

type Rgb = [u8; 3];

fn screenshot(display: &str) -> Vec<Rgb> {
    let (conn, n) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[n].root;
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, 1280, 720, !0)
        .unwrap()
        .reply()
        .unwrap();
    img.data
        .chunks_exact(4)
        .map(|p| [p[2], p[1], p[0]])
        .collect()
}

fn share(display: &str, c: Rgb) -> f32 {
    let px = screenshot(display);
    px.iter().filter(|p| **p == c).count() as f32 / px.len() as f32
}

/// Share of `c` in the bottom-right corner (where the widget sits).
fn corner_share(display: &str, c: Rgb) -> f32 {
    let px = screenshot(display);
    let mut n = 0;
    let mut total = 0;
    for y in 620..720 {
        for x in 780..1280 {
            total += 1;
            if px[y * 1280 + x] == c {
                n += 1;
            }
        }
    }
    n as f32 / total as f32
}

#[test]
fn the_shortcut_raises_a_hand_with_a_note_and_the_answer_and_chat_show() {
    let x = Xvfb::start();
    let display = x.display.clone();
    // ë on a key of its own before the agent reads the keyboard map:
    // otherwise xdotool maps a spare key for it just while typing, and the
    // agent may read the map back after xdotool restored it.
    let ok = Command::new("xmodmap")
        .args([
            "-display",
            &display,
            "-e",
            "keycode 254 = ediaeresis Ediaeresis",
        ])
        .status()
        .expect("xmodmap runs")
        .success();
    assert!(ok, "xmodmap");
    let mut d = x.desktop();

    // The widget is in the corner from the start, and only there.
    wait_until("the raise-hand widget shows", || {
        corner_share(&display, HAND_BUTTON_BG) > 0.01
    });
    assert!(share(&display, HAND_BUTTON_BG) < 0.05);
    save_screen(&display, "requests-x11-1-widget");

    // Hidden under a lock, back after.
    d.lock(Some("Eyes on me")).unwrap();
    assert_eq!(corner_share(&display, HAND_BUTTON_BG), 0.0);
    d.unlock().unwrap();
    wait_until("the widget is back after the lock", || {
        corner_share(&display, HAND_BUTTON_BG) > 0.01
    });

    // Ctrl+Alt+H opens the form with the note field focused; the note is
    // typed as written (Unicode) and Enter sends it.
    xdotool(&display, &["key", "ctrl+alt+h"]);
    wait_until("the raise-hand form opens", || {
        share(&display, REQUEST_BG) > 0.1
    });
    std::thread::sleep(Duration::from_millis(300));
    xdotool(&display, &["type", "--delay", "30", "Zoë needs help"]);
    std::thread::sleep(Duration::from_millis(300));
    save_screen(&display, "requests-x11-2-form");
    xdotool(&display, &["key", "Return"]);
    let got = queued_requests(&mut d, "the student's request is queued");
    assert_eq!(
        got,
        vec![StudentRequest::RaiseHand {
            note: "Zoë needs help".into()
        }]
    );
    wait_until("the form closes", || share(&display, REQUEST_BG) < 0.01);

    // The server says it is raised; the widget says so.
    d.student_notice(StudentNotice::HandRaised).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    save_screen(&display, "requests-x11-3-raised");

    // The teacher's answer shows as a message.
    d.student_notice(StudentNotice::HandClosed {
        answer: Some("Coming — 2 min ✓".into()),
    })
    .unwrap();
    assert!(d.state().message_shown);
    save_screen(&display, "requests-x11-4-answer");
    xdotool(&display, &["key", "Return"]);
    wait_until("Enter dismisses the answer", || !d.state().message_shown);

    // A teacher's chat line opens the chat; the student answers.
    d.student_notice(StudentNotice::Chat {
        line: ChatLine {
            id: 1,
            from_teacher: true,
            author: "Ms Khan".into(),
            text: "Hello Zoë 👋 how is it going?".into(),
            at: 0,
        },
    })
    .unwrap();
    wait_until("the chat opens", || share(&display, REQUEST_BG) > 0.1);
    std::thread::sleep(Duration::from_millis(300));
    xdotool(&display, &["type", "--delay", "30", "Fine thanks"]);
    xdotool(&display, &["key", "Return"]);
    let got = queued_requests(&mut d, "the student's request is queued");
    assert_eq!(
        got,
        vec![StudentRequest::Chat {
            text: "Fine thanks".into()
        }]
    );
    d.student_notice(StudentNotice::Chat {
        line: ChatLine {
            id: 2,
            from_teacher: false,
            author: "zoe".into(),
            text: "Fine thanks".into(),
            at: 0,
        },
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    save_screen(&display, "requests-x11-5-chat");
    // A refusal is shown in the chat, which stays open.
    d.student_notice(StudentNotice::ChatRefused {
        message: "too many chat messages; wait 30 s".into(),
    })
    .unwrap();
    xdotool(&display, &["key", "Escape"]);
    wait_until("Escape closes the chat", || {
        share(&display, REQUEST_BG) < 0.01
    });
}
