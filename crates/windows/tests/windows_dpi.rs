//! The Windows surfaces take their monitor's DPI as their scale: the
//! window thread is per-monitor DPI aware and each window's painter is
//! told its window's DPI over 96. Run under Wine with an X display:
//! `cargo test -p lectern-windows --target x86_64-pc-windows-gnu --test
//! windows_dpi`. With `LECTERN_TEST_DPI` set (after `wine reg add
//! "HKCU\Control Panel\Desktop" /v LogPixels /t REG_DWORD /d 144 /f` in a
//! Wine prefix of its own) it also checks that DPI is the one used.
#![cfg(windows)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lectern_desktop::Desktop;
use lectern_windows::*;
use windows_sys::Win32::UI::HiDpi::GetDpiForSystem;

/// Generous: Wine on a busy 2-core machine is slow; no test asserts on time.
const DEADLINE: Duration = Duration::from_secs(30);

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A [`StudentUiPainter`] that notes the scales it is given and the sizes
/// it paints at.
struct Noting {
    scales: Arc<Mutex<Vec<f32>>>,
    inner: StudentUiPainter,
}

impl SurfacePainter for Noting {
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
        self.inner.input(surface, width, height, input)
    }
    fn set_scale(&mut self, scale: f32) {
        self.scales.lock().unwrap().push(scale);
        self.inner.set_scale(scale);
    }
}

#[test]
fn each_window_is_drawn_at_its_monitors_dpi() {
    // SAFETY: reads a system setting.
    let dpi = unsafe { GetDpiForSystem() };
    if let Ok(want) = std::env::var("LECTERN_TEST_DPI") {
        assert_eq!(dpi.to_string(), want, "the prefix's LogPixels");
    }
    let scales = Arc::new(Mutex::new(Vec::new()));
    let noted = scales.clone();
    let mut desk = WindowsDesktop::with_painter(Box::new(move || {
        Box::new(Noting {
            scales: noted.clone(),
            inner: StudentUiPainter::new(),
        })
    }))
    .unwrap();
    desk.lock(Some("Eyes on the board, please")).unwrap();
    desk.show_message("Hello").unwrap();
    wait_until("both windows have their scale", || {
        scales.lock().unwrap().len() >= 2
    });
    let got = scales.lock().unwrap().clone();
    let want = dpi as f32 / 96.0;
    assert!(
        got.iter().all(|&s| s == want),
        "scales {got:?}, system DPI {dpi} (scale {want})"
    );
    desk.clear_message().unwrap();
    desk.unlock().unwrap();
}
