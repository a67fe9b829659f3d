//! The acceptable use policy on a real (Wine) Windows desktop: it covers
//! the screen like the lock, scrolls, a teacher's lock goes over it (and
//! keys typed then do not accept it), and Enter or a click on "I accept"
//! queues the acceptance for the agent. Before this, the Windows desktop
//! kept the trait's default and could not show a policy. Run with an X
//! display: `cargo test -p lectern-windows --target x86_64-pc-windows-gnu
//! --test windows_aup` (scripts/test-windows.sh sets up Wine and Xvfb). The
//! screenshot goes to target/windows-out/aup.png.
#![cfg(windows)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use lectern_desktop::{Desktop, Frame, StudentRequest};
use lectern_proto::aup::AcceptableUse;
use lectern_student_ui::AUP_PANEL;
use lectern_windows::*;
use windows_sys::Win32::Foundation::{POINT, RECT};
use windows_sys::Win32::UI::WindowsAndMessaging::*;

/// The "I accept" button's fill (student-ui's `GO`), while not hovered.
const ACCEPT_FILL: [u8; 3] = [40, 110, 200];

const VK_RETURN: u16 = 0x0D;
const VK_NEXT: u16 = 0x22;

/// A policy long enough to scroll, in several scripts.
fn policy(version_id: i64) -> AcceptableUse {
    let mut text = String::from(
        "Use the school's computers for schoolwork. Ünïcödé: café, naïve, Zürich; \
         日本語のテキスト; Ελληνικά; русский текст.",
    );
    for n in 1..=30 {
        text.push_str(&format!(
            "\n\nRule {n}: be kind online, keep your password to yourself, and tell a teacher \
             about anything that worries you — 规则 {n}."
        ));
    }
    AcceptableUse {
        version_id,
        version: 3,
        title: "Acceptable use of school computers — Übersicht".into(),
        text,
        published_at: 0,
    }
}

/// The policy's light text panel is on screen (a lock shows none of it).
fn panel_shown(f: &Frame) -> bool {
    count(f, AUP_PANEL) > 10_000
}

/// The centre of the "I accept" button on screen.
fn accept_button(desk: &mut WindowsDesktop) -> POINT {
    let mut found = None;
    wait_until("the I accept button is drawn", || {
        let f = grab(desk);
        let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
        for (i, p) in f.rgb.chunks(3).enumerate() {
            if p == ACCEPT_FILL {
                let (x, y) = (i as u64 % u64::from(f.width), i as u64 / u64::from(f.width));
                (sx, sy, n) = (sx + x, sy + y, n + 1);
            }
        }
        found = (n > 500).then(|| POINT {
            x: (sx / n) as i32,
            y: (sy / n) as i32,
        });
        found.is_some()
    });
    found.unwrap()
}

/// Records the input each window's (real) painter gets.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Surface, SurfaceInput)>>>);

struct Recording {
    log: Recorder,
    inner: StudentUiPainter,
}

impl SurfacePainter for Recording {
    fn paint(&mut self, surface: &Surface, width: u32, height: u32) -> Vec<u8> {
        self.inner.paint(surface, width, height)
    }
    fn input(
        &mut self,
        surface: &Surface,
        width: u32,
        height: u32,
        input: SurfaceInput,
    ) -> Option<SurfaceAction> {
        self.log.0.lock().unwrap().push((surface.clone(), input));
        self.inner.input(surface, width, height, input)
    }
}

impl Recorder {
    fn painters(&self) -> PainterFactory {
        let log = self.clone();
        Box::new(move || {
            Box::new(Recording {
                log: log.clone(),
                inner: StudentUiPainter::new(),
            })
        })
    }

    /// Whether the lock's window got a key-down of `vk`.
    fn lock_got(&self, vk: u16) -> bool {
        let v = self.0.lock().unwrap();
        v.iter().any(
            |(s, i)| matches!((s, i), (Surface::Lock { .. }, SurfaceInput::KeyDown(k)) if *k == vk),
        )
    }
}

#[test]
fn the_policy_covers_the_screen_scrolls_stays_under_a_lock_and_is_accepted() {
    let rec = Recorder::default();
    let mut desk = WindowsDesktop::with_painter(rec.painters()).unwrap();
    desk.set_school("Hillside School — École");
    desk.show_acceptable_use(Some(&policy(41))).unwrap();

    // Full screen, topmost, on every monitor (Wine has one), keys held.
    let windows = windows_of(AUP_CLASS);
    assert_eq!(windows.len(), 1);
    let mut r = RECT {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    unsafe { GetWindowRect(windows[0], &mut r) };
    assert_eq!((r.left, r.top, (r.right, r.bottom)), (0, 0, screen_size()));
    assert!(unsafe { GetWindowLongW(windows[0], GWL_EXSTYLE) } as u32 & WS_EX_TOPMOST != 0);
    assert!(
        desk.keyboard_hook_active(),
        "shortcuts are held while it is up"
    );
    wait_until("the policy is drawn", || panel_shown(&grab(&mut desk)));
    let top = grab(&mut desk);
    save_png(&top, "aup.png");

    // Page Down and the wheel scroll the text (the screen changes).
    send_input(key(VK_NEXT)).unwrap();
    wait_until("Page Down scrolls the text", || {
        grab(&mut desk).rgb != top.rgb
    });
    let (w, h) = screen_size();
    point_at(POINT { x: w / 2, y: h / 2 });
    let paged = grab(&mut desk);
    // Three notches towards the student: down.
    send_input(RemoteInput::Wheel {
        delta: -360,
        horizontal: false,
    })
    .unwrap();
    wait_until("the wheel scrolls the text", || {
        grab(&mut desk).rgb != paged.rgb
    });
    save_png(&grab(&mut desk), "aup-scrolled.png");

    // A teacher's lock goes over it; Enter typed then reaches the lock and
    // accepts nothing.
    desk.lock(Some("Eyes on the board")).unwrap();
    wait_until("the lock covers the policy", || {
        !panel_shown(&grab(&mut desk))
    });
    send_input(key(VK_RETURN)).unwrap();
    wait_until("the lock gets the Enter", || rec.lock_got(VK_RETURN));
    desk.unlock().unwrap();
    assert!(desk.take_requests().is_empty(), "accepted under the lock");
    assert_eq!(windows_of(AUP_CLASS).len(), 1, "the policy came back");
    assert!(
        desk.keyboard_hook_active(),
        "the policy still holds the keys"
    );
    wait_until("the policy is on top again", || {
        panel_shown(&grab(&mut desk))
    });

    // Enter accepts: the request names the version shown; the window and
    // the hook go.
    send_input(key(VK_RETURN)).unwrap();
    let mut got = Vec::new();
    wait_until("Enter accepts the policy", || {
        got.extend(desk.take_requests());
        !got.is_empty()
    });
    assert_eq!(got, [StudentRequest::AcceptAup { version_id: 41 }]);
    assert!(windows_of(AUP_CLASS).is_empty());
    assert!(!desk.keyboard_hook_active());

    // A new version, accepted with the mouse.
    desk.show_acceptable_use(Some(&policy(42))).unwrap();
    let p = accept_button(&mut desk);
    point_at(p);
    for down in [true, false] {
        send_input(RemoteInput::Button {
            button: MouseButton::Left,
            down,
        })
        .unwrap();
    }
    let mut got = Vec::new();
    wait_until("the click accepts the policy", || {
        got.extend(desk.take_requests());
        !got.is_empty()
    });
    assert_eq!(got, [StudentRequest::AcceptAup { version_id: 42 }]);
    assert!(windows_of(AUP_CLASS).is_empty());

    // `None` takes a shown policy away without an acceptance.
    desk.show_acceptable_use(Some(&policy(43))).unwrap();
    assert_eq!(windows_of(AUP_CLASS).len(), 1);
    desk.show_acceptable_use(None).unwrap();
    assert!(windows_of(AUP_CLASS).is_empty());
    assert!(!desk.keyboard_hook_active());
    assert!(desk.take_requests().is_empty());
}
