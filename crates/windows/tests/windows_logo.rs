//! The school's logo on the Windows lock screen, on a real (Wine) desktop:
//! `set_school_logo` decodes the PNG and every lock window draws it (before
//! this, the Windows desktop kept the trait's default and ignored it). Run
//! with an X display: `cargo test -p lectern-windows --target
//! x86_64-pc-windows-gnu --test windows_logo` (scripts/test-windows.sh sets
//! up Wine and Xvfb).
#![cfg(windows)]

use std::time::{Duration, Instant};

use lectern_desktop::{Desktop, Frame};
use lectern_student_ui::SURFACE_COLOURS;
use lectern_windows::*;

/// Generous: Wine on a busy 2-core machine is slow; no test asserts on time.
const DEADLINE: Duration = Duration::from_secs(30);

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A 240×120 PNG of the logo's red, a colour nothing else on the lock
/// screen has.
fn red_png() -> Vec<u8> {
    let (w, h) = (240u32, 120u32);
    let rgba: Vec<u8> = (0..w * h).flat_map(|_| [220u8, 30, 30, 255]).collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("png header");
    writer.write_image_data(&rgba).expect("png data");
    drop(writer);
    out
}

fn red_pixels(f: &Frame) -> usize {
    f.rgb
        .chunks(3)
        .filter(|p| p[0] > 190 && p[1] < 70 && p[2] < 70)
        .count()
}

/// Whether the lock's background is on screen (its bottom right corner).
fn lock_shown(f: &Frame) -> bool {
    let i = (((f.height - 4) * f.width + f.width - 10) * 3) as usize;
    let p = &f.rgb[i..i + 3];
    p.iter()
        .zip(SURFACE_COLOURS.lock)
        .all(|(a, b)| a.abs_diff(b) <= 3)
}

#[test]
fn the_lock_screen_shows_the_schools_logo() {
    let mut desk = WindowsDesktop::new().unwrap();
    desk.set_school("Hillside School");
    // Locked without a logo: nothing red.
    desk.lock(Some("Eyes on the board, please")).unwrap();
    wait_until("the lock screen is shown", || {
        lock_shown(&desk.capture(640).unwrap())
    });
    let f = desk.capture(640).unwrap();
    assert_eq!(red_pixels(&f), 0, "a lock without a logo shows none");

    // The logo given while locked is drawn at once, above the text.
    desk.set_school_logo(Some(&red_png()));
    wait_until("the lock screen shows the logo's red", || {
        red_pixels(&desk.capture(640).unwrap()) > 100
    });
    let f = desk.capture(640).unwrap();
    let top = f
        .rgb
        .chunks(3)
        .position(|p| p[0] > 190 && p[1] < 70 && p[2] < 70)
        .map(|i| i as u32 / f.width)
        .unwrap();
    assert!(
        top < f.height / 2,
        "the logo is in the upper half (row {top})"
    );

    // A bad PNG leaves the logo out rather than failing the lock.
    desk.set_school_logo(Some(b"not a png"));
    wait_until("a bad logo is left out", || {
        red_pixels(&desk.capture(640).unwrap()) == 0
    });
    desk.unlock().unwrap();

    // A later lock keeps the logo set before it.
    desk.set_school_logo(Some(&red_png()));
    desk.lock(None).unwrap();
    wait_until("a new lock shows the logo", || {
        red_pixels(&desk.capture(640).unwrap()) > 100
    });
    desk.unlock().unwrap();
}
