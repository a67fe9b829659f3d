//! The student sign-in on a real X server (issue 16 point 3): it covers
//! the screen and takes the keyboard, the name typed and the pictures
//! tapped (with `xdotool`, as a student would) come back as one
//! `StudentRequest::SignIn`; a refusal shown keeps the screen; a teacher's
//! lock goes over it; an acceptable use policy waiting behind it shows
//! once the sign-in is taken away. Screenshots go to
//! `tests/e2e/out/signin-x11-unit-*.png`.

mod common;

use common::{queued_requests, save_screen, wait_until, xdotool, Xvfb, H, W};
use lectern_desktop::{Desktop, SignInScreen, StudentRequest};
use lectern_proto::aup::AcceptableUse;
use lectern_proto::signin::StudentSecret;
use lectern_student_ui::{StudentUi, AUP_PANEL, PICTURE_BG};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

fn share(display: &str, c: [u8; 3]) -> f32 {
    let (conn, n) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[n].root;
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, W as u16, H as u16, !0)
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

/// The centre of `text` on the sign-in screen of `school`.
fn centre(school: &str, text: &str) -> (String, String) {
    let mut ui = StudentUi::new(
        lectern_x11::sign_in_view(school, &SignInScreen::default()),
        W as u32,
        H as u32,
        1.0,
    );
    let t = ui
        .texts()
        .into_iter()
        .find(|t| t.text == text)
        .unwrap_or_else(|| panic!("{text} is not on the sign-in screen"));
    (
        ((t.x + t.width / 2.0) as i32).to_string(),
        ((t.y + t.height / 2.0) as i32).to_string(),
    )
}

#[test]
fn the_sign_in_covers_the_screen_and_sends_the_name_and_pictures() {
    let x = Xvfb::start();
    let display = x.display.clone();
    let mut d = x.desktop();
    d.set_school("Ysgol Gŵyr");
    assert!(d
        .capabilities()
        .contains(&lectern_proto::Capability::StudentSignIn));

    // A policy waits to be accepted; the sign-in goes over it.
    let policy = AcceptableUse {
        version_id: 5,
        version: 1,
        title: "Rules".into(),
        text: "Be kind online.".into(),
        published_at: 0,
    };
    d.show_acceptable_use(Some(&policy)).unwrap();
    wait_until("the policy shows", || share(&display, AUP_PANEL) > 0.2);
    d.show_student_sign_in(Some(&SignInScreen::default()))
        .unwrap();
    wait_until("the sign-in covers the screen", || {
        share(&display, PICTURE_BG) > 0.1 && share(&display, AUP_PANEL) == 0.0
    });
    save_screen(&display, "signin-x11-unit-1-shown");

    // A teacher's lock goes over it, and after the unlock it is back.
    d.lock(Some("Eyes on me")).unwrap();
    wait_until("the lock covers it", || share(&display, PICTURE_BG) == 0.0);
    d.unlock().unwrap();
    wait_until("the sign-in is back", || share(&display, PICTURE_BG) > 0.1);
    std::thread::sleep(std::time::Duration::from_millis(300));

    // The name typed (the field has the keyboard), then three pictures.
    xdotool(&display, &["type", "--delay", "20", "ben.w"]);
    for emoji in ["🦊", "🍕", "⚽"] {
        let (cx, cy) = centre("Ysgol Gŵyr", emoji);
        xdotool(&display, &["mousemove", &cx, &cy, "click", "1"]);
    }
    save_screen(&display, "signin-x11-unit-2-tapped");
    xdotool(&display, &["key", "Return"]);
    assert_eq!(
        queued_requests(&mut d, "the sign-in is queued"),
        vec![StudentRequest::SignIn {
            name: "ben.w".into(),
            secret: StudentSecret::Picture {
                picture: vec![3, 11, 12]
            },
        }]
    );
    // It stays until the agent says: refused, so shown with the reason.
    d.show_student_sign_in(Some(&SignInScreen {
        error: Some("That user name and password do not match.".into()),
        schools: vec![],
    }))
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(share(&display, PICTURE_BG) > 0.1, "the screen stays");
    save_screen(&display, "signin-x11-unit-3-refused");

    // Signed in: taken away, and the waiting policy shows.
    d.show_student_sign_in(None).unwrap();
    wait_until("the policy shows again", || {
        share(&display, AUP_PANEL) > 0.2 && share(&display, PICTURE_BG) == 0.0
    });
    d.show_acceptable_use(None).unwrap();
    wait_until("nothing covers the screen", || {
        share(&display, AUP_PANEL) == 0.0
    });
    assert!(d.take_requests().is_empty());
}

/// Where the corner widget is: (x, y, width, height).
fn widget(display: &str) -> Option<(i32, i32, u32, u32)> {
    let out = std::process::Command::new("xdotool")
        .args(["search", "--name", lectern_x11::HAND_BUTTON_NAME])
        .env("DISPLAY", display)
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .to_string();
    let out = std::process::Command::new("xdotool")
        .args(["getwindowgeometry", "--shell", &id])
        .env("DISPLAY", display)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let get = |k: &str| -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((
        get("X")? as i32,
        get("Y")? as i32,
        get("WIDTH")? as u32,
        get("HEIGHT")? as u32,
    ))
}

#[test]
fn a_signed_in_student_signs_out_from_the_corner_widget() {
    let x = Xvfb::start();
    let display = x.display.clone();
    let mut d = x.desktop();
    wait_until("the corner widget shows", || widget(&display).is_some());
    let (_, _, narrow, _) = widget(&display).unwrap();

    d.show_signed_in(true);
    wait_until("the widget grows a Sign out button", || {
        widget(&display).is_some_and(|(_, _, w, _)| w > narrow)
    });
    let (wx, wy, w, h) = widget(&display).unwrap();
    save_screen(&display, "signin-x11-unit-4-widget");
    let mut ui = StudentUi::new(
        lectern_student_ui::Surface::HandButton {
            raised: false,
            signed_in: true,
        },
        w,
        h,
        1.0,
    );
    let t = ui
        .texts()
        .into_iter()
        .find(|t| t.text == "Sign out")
        .expect("a Sign out button");
    let (cx, cy) = (
        wx + (t.x + t.width / 2.0) as i32,
        wy + (t.y + t.height / 2.0) as i32,
    );
    xdotool(
        &display,
        &["mousemove", &cx.to_string(), &cy.to_string(), "click", "1"],
    );
    assert_eq!(
        queued_requests(&mut d, "the sign-out is queued"),
        vec![StudentRequest::SignOut]
    );

    // Signed out: the widget is back to two buttons.
    d.show_signed_in(false);
    wait_until("the widget shrinks", || {
        widget(&display).is_some_and(|(_, _, w, _)| w == narrow)
    });
}
