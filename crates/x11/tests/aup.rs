//! Issue 14 point 1 on a real X server: the acceptable use policy covers
//! the screen with Unicode text (every glyph drawn, checked with
//! `missing_glyphs`), scrolls with the keyboard, and "I accept" (a click
//! or Enter) queues the acceptance for the agent and takes it away; a
//! teacher's lock goes over it and the policy takes the keyboard back
//! after. Input comes from `xdotool` as a student's would; screenshots go
//! to `tests/e2e/out/aup-x11-*.png`.

mod common;

use std::time::Duration;

use common::{queued_requests, save_screen, wait_until, xdotool, Xvfb, H, W};
use lectern_desktop::{Desktop, StudentRequest};
use lectern_proto::aup::AcceptableUse;
use lectern_student_ui::{StudentUi, Surface, AUP_PANEL};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

type Rgb = [u8; 3];

fn screenshot(display: &str) -> Vec<Rgb> {
    let (conn, n) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[n].root;
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, W as u16, H as u16, !0)
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

fn policy(version_id: i64, version: i64) -> AcceptableUse {
    let mut text = String::from(
        "Règles d'utilisation: Zoë, Zażółć gęślą jaźń ✓\n\n\
         Будьте вежливы в сети. 日本語のページも同じ規則です。\n\n",
    );
    for i in 1..=25 {
        text.push_str(&format!("{i}. Log out when you leave the computer.\n\n"));
    }
    AcceptableUse {
        version_id,
        version,
        title: "Acceptable use — Ysgol Gŵyr".into(),
        text,
        published_at: 0,
    }
}

#[test]
fn the_policy_covers_the_screen_and_accepting_sends_the_acceptance() {
    let x = Xvfb::start();
    let display = x.display.clone();
    let mut d = x.desktop();
    let p = policy(41, 3);

    // Every glyph of this text has a font (the surface the window draws).
    let mut ui = StudentUi::new(
        Surface::AcceptableUse {
            school: String::new(),
            title: p.title.clone(),
            version: p.version,
            text: p.text.clone(),
        },
        W as u32,
        H as u32,
        1.0,
    );
    let missing = ui.missing_glyphs();
    assert!(missing.is_empty(), "missing glyphs: {missing:?}");
    let button = ui
        .texts()
        .into_iter()
        .find(|t| t.text == "I accept")
        .expect("an I accept button");

    d.show_acceptable_use(Some(&p)).unwrap();
    wait_until("the policy covers the screen", || {
        share(&display, AUP_PANEL) > 0.2
    });
    save_screen(&display, "aup-x11-1-shown");
    let before = screenshot(&display);

    // The keyboard reaches it: Down scrolls the text.
    xdotool(&display, &["key", "Down", "Down", "Down"]);
    wait_until("the text scrolls", || screenshot(&display) != before);
    save_screen(&display, "aup-x11-2-scrolled");

    // A teacher's lock goes over it; after the unlock it is back.
    d.lock(Some("Eyes on me")).unwrap();
    wait_until("the lock covers the policy", || {
        share(&display, AUP_PANEL) == 0.0
    });
    d.unlock().unwrap();
    wait_until("the policy is back", || share(&display, AUP_PANEL) > 0.2);

    // A click on I accept queues the acceptance and takes it away.
    let (bx, by) = (
        (button.x + button.width / 2.0) as i32,
        (button.y + button.height / 2.0) as i32,
    );
    xdotool(
        &display,
        &["mousemove", &bx.to_string(), &by.to_string(), "click", "1"],
    );
    assert_eq!(
        queued_requests(&mut d, "the acceptance is queued"),
        vec![StudentRequest::AcceptAup { version_id: 41 }]
    );
    wait_until("the policy goes", || share(&display, AUP_PANEL) == 0.0);
    save_screen(&display, "aup-x11-3-accepted");

    // A new version: Enter accepts it (after the lock's grab came and went).
    d.show_acceptable_use(Some(&policy(42, 4))).unwrap();
    wait_until("the new version shows", || share(&display, AUP_PANEL) > 0.2);
    std::thread::sleep(Duration::from_millis(200));
    xdotool(&display, &["key", "Return"]);
    assert_eq!(
        queued_requests(&mut d, "the acceptance is queued"),
        vec![StudentRequest::AcceptAup { version_id: 42 }]
    );
    wait_until("the policy goes", || share(&display, AUP_PANEL) == 0.0);

    // Taken away by the server (the user logged out): nothing is queued.
    d.show_acceptable_use(Some(&policy(43, 5))).unwrap();
    wait_until("the policy shows", || share(&display, AUP_PANEL) > 0.2);
    d.show_acceptable_use(None).unwrap();
    wait_until("the policy goes", || share(&display, AUP_PANEL) == 0.0);
    assert!(d.take_requests().is_empty());
}
