//! Helpers shared by the Wine tests of the full-screen surfaces.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use lectern_desktop::{Desktop, Frame};
use lectern_windows::*;
use windows_sys::Win32::Foundation::{HWND, LPARAM, POINT};
use windows_sys::Win32::UI::WindowsAndMessaging::*;

/// Generous: Wine on a busy 2-core machine is slow; no test asserts on time.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Visible top-level windows of window class `class`.
pub fn windows_of(class: &str) -> Vec<HWND> {
    unsafe extern "system" fn each(h: HWND, data: LPARAM) -> i32 {
        let (class, out) = &mut *(data as *mut (String, Vec<HWND>));
        let mut buf = [0u16; 128];
        let n = GetClassNameW(h, buf.as_mut_ptr(), 128);
        if IsWindowVisible(h) != 0 && String::from_utf16_lossy(&buf[..n as usize]) == *class {
            out.push(h);
        }
        1
    }
    let mut data = (class.to_string(), Vec::new());
    unsafe { EnumWindows(Some(each), &mut data as *mut _ as LPARAM) };
    data.1
}

pub fn screen_size() -> (i32, i32) {
    unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) }
}

/// A full-size capture of the screen.
pub fn grab(desk: &mut WindowsDesktop) -> Frame {
    desk.capture(screen_size().0 as u32).unwrap()
}

pub fn count(f: &Frame, rgb: [u8; 3]) -> usize {
    f.rgb.chunks(3).filter(|p| *p == rgb).count()
}

pub fn key(vk: u16) -> RemoteInput {
    RemoteInput::Key {
        vk,
        modifiers: Modifiers::default(),
    }
}

/// Moves the real pointer to `p` (and waits until it is there: under Wine
/// an event still on its way from the X server can move it back).
pub fn point_at(p: POINT) {
    let (w, h) = screen_size();
    let frac = |v: i32, max: i32| f64::from(v) / f64::from(max - 1);
    send_input(RemoteInput::PointerMove {
        x: frac(p.x, w),
        y: frac(p.y, h),
    })
    .unwrap();
    wait_until("the pointer is there", || {
        let mut c = POINT { x: 0, y: 0 };
        unsafe { GetCursorPos(&mut c) };
        (c.x - p.x).abs() <= 2 && (c.y - p.y).abs() <= 2
    });
}

pub fn save_png(f: &Frame, name: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/windows-out");
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::File::create(format!("{dir}/{name}")).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), f.width, f.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(&f.rgb)
        .unwrap();
}
