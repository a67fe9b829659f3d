//! The student sign-in on a real (Wine) Windows desktop (issue 16 point
//! 3): it covers the screen like the lock and holds the keys, goes over an
//! acceptable use policy waiting to be accepted and under a teacher's
//! lock (keys typed then sign no one in); the name typed and the pictures
//! clicked come back as one request; a refusal shown keeps it; taken away,
//! the policy under it has the keyboard again. Run with an X display:
//! `cargo test -p lectern-windows --target x86_64-pc-windows-gnu --test
//! windows_signin` (scripts/test-windows.sh sets up Wine and Xvfb). The
//! screenshots go to target/windows-out/signin-*.png.
#![cfg(windows)]

mod common;

use common::*;
use lectern_desktop::{Desktop, SignInScreen, StudentRequest};
use lectern_proto::aup::AcceptableUse;
use lectern_proto::signin::{StudentSecret, PICTURES};
use lectern_student_ui::{Picture, StudentUi, Surface as UiSurface, AUP_PANEL, PICTURE_BG};
use lectern_windows::*;
use windows_sys::Win32::Foundation::POINT;

/// The tests share one screen, its pointer and its topmost windows: one at
/// a time.
static SCREEN: std::sync::Mutex<()> = std::sync::Mutex::new(());

const VK_RETURN: u16 = 0x0D;
const VK_OEM_PERIOD: u16 = 0xBE;

/// Where the `emoji` of the grid is on a sign-in covering the screen.
fn picture_at(school: &str, emoji: &str) -> POINT {
    text_at(school, &[], emoji)
}

/// Where `text` is on a sign-in of `school` offering `schools`, covering
/// the screen.
fn text_at(school: &str, schools: &[&str], text: &str) -> POINT {
    let (w, h) = screen_size();
    let surface = UiSurface::SignIn {
        school: school.into(),
        pictures: PICTURES
            .iter()
            .map(|(e, n)| Picture {
                emoji: (*e).into(),
                name: (*n).into(),
            })
            .collect(),
        error: None,
        schools: schools.iter().map(|s| s.to_string()).collect(),
    };
    let mut ui = StudentUi::new(surface, w as u32, h as u32, 1.0);
    let t = ui
        .texts()
        .into_iter()
        .find(|t| t.text == text)
        .expect("the text is on the screen");
    POINT {
        x: (t.x + t.width / 2.0) as i32,
        y: (t.y + t.height / 2.0) as i32,
    }
}

/// What the student asked for, once they have asked for something
/// (fails saying `what` otherwise).
fn requests(desk: &mut WindowsDesktop, what: &str) -> Vec<StudentRequest> {
    let mut got = Vec::new();
    wait_until(what, || {
        got.extend(desk.take_requests());
        !got.is_empty()
    });
    got
}

fn click(p: POINT) {
    point_at(p);
    for down in [true, false] {
        send_input(RemoteInput::Button {
            button: MouseButton::Left,
            down,
        })
        .unwrap();
    }
}

#[test]
fn the_sign_in_covers_the_screen_and_sends_the_name_and_pictures() {
    let _screen = SCREEN.lock().unwrap_or_else(|p| p.into_inner());
    let school = "Hillside School";
    let mut desk = WindowsDesktop::new().unwrap();
    desk.set_school(school);
    assert!(desk
        .capabilities()
        .contains(&lectern_proto::Capability::StudentSignIn));
    let policy = AcceptableUse {
        version_id: 7,
        version: 1,
        title: "Rules".into(),
        text: "Be kind online.".into(),
        published_at: 0,
    };
    desk.show_acceptable_use(Some(&policy)).unwrap();
    desk.show_student_sign_in(Some(&SignInScreen::default()))
        .unwrap();
    assert_eq!(windows_of(SIGN_IN_CLASS).len(), 1);
    assert!(desk.keyboard_hook_active(), "shortcuts are held");
    wait_until("the sign-in is drawn over the policy", || {
        let f = grab(&mut desk);
        count(&f, PICTURE_BG) > 10_000 && count(&f, AUP_PANEL) == 0
    });
    save_png(&grab(&mut desk), "signin.png");

    // Under a teacher's lock, Enter signs no one in.
    desk.lock(Some("Eyes on me")).unwrap();
    wait_until("the lock covers it", || {
        count(&grab(&mut desk), PICTURE_BG) == 0
    });
    send_input(key(VK_RETURN)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    desk.unlock().unwrap();
    assert!(desk.take_requests().is_empty(), "signed in under the lock");
    wait_until("the sign-in is back", || {
        count(&grab(&mut desk), PICTURE_BG) > 10_000
    });

    // The name (the field has the keys), three pictures, Enter.
    let before = grab(&mut desk);
    for vk in [0x42, 0x45, 0x4E, VK_OEM_PERIOD, 0x57] {
        send_input(key(vk)).unwrap();
    }
    for emoji in ["🦊", "🍕", "⚽"] {
        click(picture_at(school, emoji));
    }
    wait_until("the name and dots are drawn", || {
        grab(&mut desk).rgb != before.rgb
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    save_png(&grab(&mut desk), "signin-tapped.png");
    send_input(key(VK_RETURN)).unwrap();
    let got = requests(&mut desk, "Enter signs in");
    assert_eq!(
        got,
        [StudentRequest::SignIn {
            name: "ben.w".into(),
            secret: StudentSecret::Picture {
                picture: vec![3, 11, 12]
            },
        }]
    );

    // Refused: shown again with the reason; it stays.
    desk.show_student_sign_in(Some(&SignInScreen {
        error: Some("That user name and password do not match.".into()),
        schools: vec![],
    }))
    .unwrap();
    assert_eq!(windows_of(SIGN_IN_CLASS).len(), 1);

    // Signed in: it goes, the policy under it shows and keeps the keys.
    desk.show_student_sign_in(None).unwrap();
    assert!(windows_of(SIGN_IN_CLASS).is_empty());
    assert!(desk.keyboard_hook_active(), "the policy still holds them");
    wait_until("the policy is on top", || {
        count(&grab(&mut desk), AUP_PANEL) > 10_000
    });
    desk.show_acceptable_use(None).unwrap();
    assert!(!desk.keyboard_hook_active());
}

#[test]
fn sign_out_shows_in_a_corner_while_a_student_is_signed_in() {
    let _screen = SCREEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut desk = WindowsDesktop::new().unwrap();
    assert!(windows_of(SIGN_OUT_CLASS).is_empty());
    desk.show_signed_in(true);
    desk.show_signed_in(true);
    let shown = windows_of(SIGN_OUT_CLASS);
    assert_eq!(shown.len(), 1, "one widget, however often told");
    let mut r = windows_sys::Win32::Foundation::RECT {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    // SAFETY: reads the rectangle of a window of this process.
    unsafe { windows_sys::Win32::UI::WindowsAndMessaging::GetWindowRect(shown[0], &mut r) };
    let (w, h) = screen_size();
    assert!(
        r.left > w / 2 && r.top > h / 2 && r.right <= w && r.bottom <= h,
        "in the bottom-right corner: {:?}",
        (r.left, r.top, r.right, r.bottom)
    );
    wait_until("Sign out is drawn", || {
        count(&grab(&mut desk), lectern_student_ui::HAND_BUTTON_BG) > 100
    });
    save_png(&grab(&mut desk), "signout-widget.png");
    click(POINT {
        x: (r.left + r.right) / 2,
        y: (r.top + r.bottom) / 2,
    });
    let got = requests(&mut desk, "the click signs out");
    assert_eq!(got, [StudentRequest::SignOut]);
    desk.show_signed_in(false);
    assert!(
        windows_of(SIGN_OUT_CLASS).is_empty(),
        "gone once signed out"
    );
}

#[test]
fn the_sign_in_offers_other_schools_and_a_click_asks_to_switch() {
    let _screen = SCREEN.lock().unwrap_or_else(|p| p.into_inner());
    let school = "Hillside School";
    let mut desk = WindowsDesktop::new().unwrap();
    desk.set_school(school);
    desk.show_student_sign_in(Some(&SignInScreen {
        error: None,
        schools: vec!["Ysgol y Môr 🌊".into()],
    }))
    .unwrap();
    wait_until("the sign-in covers the screen", || {
        count(&grab(&mut desk), PICTURE_BG) > 10_000
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    save_png(&grab(&mut desk), "signin-schools.png");
    click(text_at(school, &["Ysgol y Môr 🌊"], "Ysgol y Môr 🌊"));
    let got = requests(&mut desk, "the click asks to switch");
    assert_eq!(
        got,
        [StudentRequest::SwitchSchool {
            school: "Ysgol y Môr 🌊".into()
        }]
    );
    desk.show_student_sign_in(None).unwrap();
}
