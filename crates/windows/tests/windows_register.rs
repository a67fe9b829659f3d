//! The registration form on a real (Wine) Windows desktop (issue 16
//! point 2): asked for the school's code, the desktop shows a form on top;
//! the code typed and Enter go back to the agent and the form closes;
//! asked again (a refused code), it shows why; a newer ask replaces the
//! older one's answer, and closing the form answers nothing (the agent
//! asks again later). Before this, the Windows desktop kept the trait's
//! default and a new Windows computer could only be registered with a file
//! or the MSI's property. Run with an X display: `cargo test -p
//! lectern-windows --target x86_64-pc-windows-gnu --test windows_register`
//! (scripts/test-windows.sh sets up Wine and Xvfb). The screenshot goes to
//! target/windows-out/register.png.
#![cfg(windows)]

mod common;

use common::*;
use lectern_desktop::Desktop;
use lectern_windows::*;
use tokio::sync::oneshot::error::TryRecvError;
use windows_sys::Win32::UI::WindowsAndMessaging::{PostMessageW, WM_CLOSE};

const VK_RETURN: u16 = 0x0D;
const VK_SPACE: u16 = 0x20;

/// The Windows form's background is the lock blue (student-ui's `LOCK`).
const FORM_BG: [u8; 3] = [24, 28, 64];

#[test]
fn a_code_typed_in_the_form_goes_to_the_agent() {
    let mut desk = WindowsDesktop::new().unwrap();
    let mut first = desk.ask_school_code(None);
    assert_eq!(windows_of(REGISTER_CLASS).len(), 1);
    wait_until("the form is drawn", || {
        count(&grab(&mut desk), FORM_BG) > 10_000
    });

    // "7kq2m xh4pd" as typed on a keyboard, then Enter.
    for vk in [
        0x37, 0x4B, 0x51, 0x32, 0x4D, VK_SPACE, 0x58, 0x48, 0x34, 0x50, 0x44,
    ] {
        send_input(key(vk)).unwrap();
    }
    send_input(key(VK_RETURN)).unwrap();
    let mut code = None;
    wait_until("the code comes back", || {
        match first.try_recv() {
            Ok(c) => code = Some(c),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Closed) => panic!("the form closed unanswered"),
        }
        code.is_some()
    });
    assert_eq!(code.as_deref(), Some("7kq2m xh4pd"));
    assert!(windows_of(REGISTER_CLASS).is_empty(), "the form closes");

    // Refused: asked again with the reason; a newer ask takes over.
    let mut older = desk.ask_school_code(Some("The school code is unknown."));
    let mut newer = desk.ask_school_code(Some("The school code is unknown."));
    assert_eq!(windows_of(REGISTER_CLASS).len(), 1, "one form");
    assert_eq!(older.try_recv(), Err(TryRecvError::Closed));
    std::thread::sleep(std::time::Duration::from_millis(500));
    save_png(&grab(&mut desk), "register.png");

    // Closed by the student (Alt+F4, the close box): no code.
    let form = windows_of(REGISTER_CLASS)[0];
    unsafe { PostMessageW(form, WM_CLOSE, 0, 0) };
    wait_until("the form goes, answering nothing", || {
        windows_of(REGISTER_CLASS).is_empty() && newer.try_recv() == Err(TryRecvError::Closed)
    });
}
