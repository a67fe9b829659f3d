//! Screen capture: a [`Capturer`] grabs the screen as BGRA pixels; DXGI
//! Desktop Duplication is tried first and GDI is the fallback
//! ([`FallbackCapturer`]). Scaling to the requested width is shared.

use std::time::{Duration, Instant};

use lectern_desktop::{DesktopError, Frame};
use windows_sys::Win32::Graphics::Gdi::{
    BitBlt, CreateCompatibleDC, CreateDIBSection, DeleteDC, DeleteObject, GetDC, ReleaseDC,
    SelectObject, BITMAPINFO, BITMAPINFOHEADER, BI_RGB, CAPTUREBLT, DIB_RGB_COLORS, SRCCOPY,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    GetSystemMetrics, SM_CXVIRTUALSCREEN, SM_CYVIRTUALSCREEN, SM_XVIRTUALSCREEN, SM_YVIRTUALSCREEN,
};

use crate::wide::last_error;

/// A screen image: BGRA (alpha undefined), rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgra {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

/// One way of reading the screen.
pub trait Capturer: Send {
    /// Short name for logs and tests: `"dxgi"` or `"gdi"`.
    fn name(&self) -> &'static str;
    /// The whole screen now.
    fn grab(&mut self) -> Result<Bgra, DesktopError>;
}

/// Captures the virtual screen (every monitor) with GDI `BitBlt` from the
/// screen DC into a DIB section. Works everywhere, including under Wine and
/// over RDP; slower than DXGI on large screens.
#[derive(Debug, Default)]
pub struct GdiCapturer;

impl Capturer for GdiCapturer {
    fn name(&self) -> &'static str {
        "gdi"
    }

    fn grab(&mut self) -> Result<Bgra, DesktopError> {
        // SAFETY: plain GDI calls; every object made here is released below.
        unsafe {
            let x = GetSystemMetrics(SM_XVIRTUALSCREEN);
            let y = GetSystemMetrics(SM_YVIRTUALSCREEN);
            let w = GetSystemMetrics(SM_CXVIRTUALSCREEN);
            let h = GetSystemMetrics(SM_CYVIRTUALSCREEN);
            if w <= 0 || h <= 0 {
                return Err(DesktopError::Failed("the screen has no size".into()));
            }
            let screen = GetDC(std::ptr::null_mut());
            if screen.is_null() {
                return Err(last_error("GetDC"));
            }
            let r = blit(screen, x, y, w, h);
            ReleaseDC(std::ptr::null_mut(), screen);
            r
        }
    }
}

/// Copies the `w`×`h` area at (`x`, `y`) of `screen` into a new top-down DIB.
unsafe fn blit(
    screen: windows_sys::Win32::Graphics::Gdi::HDC,
    x: i32,
    y: i32,
    w: i32,
    h: i32,
) -> Result<Bgra, DesktopError> {
    let mem = CreateCompatibleDC(screen);
    if mem.is_null() {
        return Err(last_error("CreateCompatibleDC"));
    }
    let info = bitmap_info(w, h);
    let mut bits: *mut core::ffi::c_void = std::ptr::null_mut();
    let dib = CreateDIBSection(
        mem,
        &info,
        DIB_RGB_COLORS,
        &mut bits,
        std::ptr::null_mut(),
        0,
    );
    if dib.is_null() || bits.is_null() {
        DeleteDC(mem);
        return Err(last_error("CreateDIBSection"));
    }
    let old = SelectObject(mem, dib);
    let ok = BitBlt(mem, 0, 0, w, h, screen, x, y, SRCCOPY | CAPTUREBLT) != 0;
    let r = if ok {
        let len = (w as usize) * (h as usize) * 4;
        Ok(Bgra {
            width: w as u32,
            height: h as u32,
            pixels: std::slice::from_raw_parts(bits as *const u8, len).to_vec(),
        })
    } else {
        Err(last_error("BitBlt"))
    };
    SelectObject(mem, old);
    DeleteObject(dib);
    DeleteDC(mem);
    r
}

/// A 32-bit top-down DIB header for `w`×`h` pixels.
pub(crate) fn bitmap_info(w: i32, h: i32) -> BITMAPINFO {
    // SAFETY: BITMAPINFO is plain data; all-zero is a valid value.
    let mut info: BITMAPINFO = unsafe { std::mem::zeroed() };
    info.bmiHeader = BITMAPINFOHEADER {
        biSize: std::mem::size_of::<BITMAPINFOHEADER>() as u32,
        biWidth: w,
        biHeight: -h, // negative: rows top to bottom
        biPlanes: 1,
        biBitCount: 32,
        biCompression: BI_RGB,
        ..info.bmiHeader
    };
    info
}

/// How long after a DXGI failure the duplication is tried again (it is lost
/// on every desktop switch: UAC prompt, Ctrl+Alt+Del screen, mode change).
const DXGI_RETRY: Duration = Duration::from_secs(30);

/// Opens the best capturer: `first` (normally DXGI) while it works, GDI
/// otherwise. A failing `first` is dropped, and re-opened after a while.
pub struct FallbackCapturer {
    open_first: Box<dyn FnMut() -> Result<Box<dyn Capturer>, DesktopError> + Send>,
    first: Option<Box<dyn Capturer>>,
    retry_at: Option<Instant>,
    gdi: GdiCapturer,
    last_error: Option<DesktopError>,
}

impl FallbackCapturer {
    /// DXGI Desktop Duplication first, GDI as the fallback.
    pub fn new() -> Self {
        Self::with_first(|| crate::dxgi::DxgiCapturer::open().map(|c| Box::new(c) as _))
    }

    /// `open_first` tried first, GDI as the fallback (for tests).
    pub fn with_first(
        open_first: impl FnMut() -> Result<Box<dyn Capturer>, DesktopError> + Send + 'static,
    ) -> Self {
        let mut c = FallbackCapturer {
            open_first: Box::new(open_first),
            first: None,
            retry_at: None,
            gdi: GdiCapturer,
            last_error: None,
        };
        c.try_open_first();
        c
    }

    fn try_open_first(&mut self) {
        match (self.open_first)() {
            Ok(c) => {
                self.first = Some(c);
                self.retry_at = None;
            }
            Err(e) => self.first_failed(e),
        }
    }

    fn first_failed(&mut self, e: DesktopError) {
        tracing::debug!("screen capture falls back to GDI: {e}");
        self.first = None;
        self.retry_at = Some(Instant::now() + DXGI_RETRY);
        self.last_error = Some(e);
    }

    /// The capturer the next grab will use first: `"dxgi"` or `"gdi"`.
    pub fn active(&self) -> &'static str {
        self.first.as_ref().map_or(self.gdi.name(), |c| c.name())
    }

    /// Why the preferred capturer last failed, if it did.
    pub fn fallback_reason(&self) -> Option<&DesktopError> {
        self.last_error.as_ref()
    }
}

impl Default for FallbackCapturer {
    fn default() -> Self {
        Self::new()
    }
}

impl Capturer for FallbackCapturer {
    fn name(&self) -> &'static str {
        self.active()
    }

    fn grab(&mut self) -> Result<Bgra, DesktopError> {
        if self.first.is_none() && self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.try_open_first();
        }
        if let Some(first) = &mut self.first {
            match first.grab() {
                Ok(img) => return Ok(img),
                Err(e) => self.first_failed(e),
            }
        }
        self.gdi.grab()
    }
}

/// The height of `w` pixels wide at the aspect of `src_w`×`src_h`.
pub(crate) fn scaled_height(src_w: u32, src_h: u32, w: u32) -> u32 {
    ((u64::from(src_h) * u64::from(w) + u64::from(src_w) / 2) / u64::from(src_w.max(1))).max(1)
        as u32
}

/// `img` scaled to `w` pixels wide (aspect kept) by averaging each box of
/// source pixels, as RGB.
pub fn to_frame(img: &Bgra, w: u32) -> Frame {
    let w = w.clamp(16, 3840);
    let h = scaled_height(img.width, img.height, w);
    let (sw, sh) = (img.width as usize, img.height as usize);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h as usize {
        let y0 = y * sh / h as usize;
        let y1 = ((y + 1) * sh / h as usize).max(y0 + 1).min(sh);
        for x in 0..w as usize {
            let x0 = x * sw / w as usize;
            let x1 = ((x + 1) * sw / w as usize).max(x0 + 1).min(sw);
            let mut sum = [0u32; 3];
            for sy in y0..y1 {
                let row = &img.pixels[(sy * sw + x0) * 4..(sy * sw + x1) * 4];
                for p in row.chunks_exact(4) {
                    sum[0] += u32::from(p[2]);
                    sum[1] += u32::from(p[1]);
                    sum[2] += u32::from(p[0]);
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            rgb.extend(sum.map(|s| ((s + n / 2) / n) as u8));
        }
    }
    Frame {
        width: w,
        height: h,
        rgb,
    }
}
