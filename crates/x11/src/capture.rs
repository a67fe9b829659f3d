//! Grabbing the root window: MIT-SHM when the server offers it (the image lands
//! in memory shared with the server, no copy through the socket), else the core
//! `GetImage` request.

use std::os::fd::AsRawFd;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Screen, Window};
use x11rb::rust_connection::RustConnection;

use super::scale::{Image, Layout};
use lectern_desktop::DesktopError;

/// The server's pixel layout for the root visual, if it is one we handle: 32 bits
/// per pixel with 8-bit red, green and blue channels (depth 24 or 32 TrueColor,
/// which is every current X server's default).
pub fn screen_layout(conn: &RustConnection, screen: &Screen) -> Result<Layout, DesktopError> {
    let setup = conn.setup();
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == screen.root_depth)
        .map(|f| f.bits_per_pixel);
    if bpp != Some(32) {
        return Err(DesktopError::Unsupported(
            "screen depth other than 24/32 bits",
        ));
    }
    let visual = screen
        .allowed_depths
        .iter()
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == screen.root_visual)
        .ok_or(DesktopError::Unsupported("root visual not described"))?;
    let msb = setup.image_byte_order == ImageOrder::MSB_FIRST;
    let offset = |mask: u32| -> Option<usize> {
        let shift = mask.trailing_zeros();
        (mask >> shift == 0xff && shift.is_multiple_of(8)).then(|| {
            let byte = (shift / 8) as usize;
            if msb {
                3 - byte
            } else {
                byte
            }
        })
    };
    match (
        offset(visual.red_mask),
        offset(visual.green_mask),
        offset(visual.blue_mask),
    ) {
        (Some(r), Some(g), Some(b)) => Ok(Layout {
            bpp: 4,
            offsets: [r, g, b],
        }),
        _ => Err(DesktopError::Unsupported("screen visual without 8-bit RGB")),
    }
}

/// A shared-memory segment created by the server (MIT-SHM 1.2 `CreateSegment`)
/// and mapped read-only here; kept between captures and grown when the screen does.
struct Segment {
    id: shm::Seg,
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; nothing about
// it is tied to the thread that created it.
unsafe impl Send for Segment {}

impl Segment {
    fn create(conn: &RustConnection, len: usize) -> Result<Segment, String> {
        let size = u32::try_from(len).map_err(|_| "screen too large for MIT-SHM".to_string())?;
        let id = conn.generate_id().map_err(|e| e.to_string())?;
        let reply = conn
            .shm_create_segment(id, size, false)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        // SAFETY: mapping a fresh shared, read-only view of a descriptor the
        // server just handed us, of the size we asked for; the pointer is only
        // read through `bytes`, within `len`, until `Drop` unmaps it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                reply.shm_fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let _ = conn.shm_detach(id);
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Segment { id, ptr, len })
    }

    fn bytes(&self, len: usize) -> &[u8] {
        assert!(len <= self.len);
        // SAFETY: `ptr` maps `self.len` readable bytes for as long as `self`
        // lives. The server writes into it only while a GetImage we wait for is
        // being served, never while this borrow is used.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, len) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `create`.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Captures the root window, reusing one shared-memory segment.
pub struct Capturer {
    root: Window,
    layout: Layout,
    /// Whether MIT-SHM 1.2 is usable; turned off after the first failure so a
    /// broken extension costs one warning, not one per frame.
    shm_ok: bool,
    segment: Option<Segment>,
    /// The core path's last image, kept so `grab` can lend it like SHM memory.
    core: Vec<u8>,
}

impl Capturer {
    /// Prepares captures of `screen`'s root window.
    pub fn new(conn: &RustConnection, screen: &Screen) -> Result<Self, DesktopError> {
        let layout = screen_layout(conn, screen)?;
        Ok(Capturer {
            root: screen.root,
            layout,
            shm_ok: shm_version(conn) >= Some((1, 2)),
            segment: None,
            core: Vec::new(),
        })
    }

    /// Whether captures go through shared memory.
    pub fn uses_shm(&self) -> bool {
        self.shm_ok
    }

    /// The whole screen as it is now; the image borrows this capturer's buffer.
    pub fn grab(&mut self, conn: &RustConnection) -> Result<Image<'_>, DesktopError> {
        let geo = conn
            .get_geometry(self.root)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        let (w, h) = (usize::from(geo.width), usize::from(geo.height));
        let len = w * h * 4;
        if self.shm_ok {
            match self.grab_shm(conn, geo.width, geo.height, len) {
                Ok(()) => {
                    return Ok(Image {
                        data: self.segment.as_ref().map_or(&[][..], |s| s.bytes(len)),
                        width: w,
                        height: h,
                        stride: w * 4,
                        layout: self.layout,
                    })
                }
                Err(e) => {
                    tracing::warn!("MIT-SHM capture failed, using core GetImage from now on: {e}");
                    self.shm_ok = false;
                    if let Some(s) = self.segment.take() {
                        let _ = conn.shm_detach(s.id);
                    }
                }
            }
        }
        let reply = conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                0,
                0,
                geo.width,
                geo.height,
                !0,
            )
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        if reply.data.len() < len {
            return Err(DesktopError::Failed("short image from the X server".into()));
        }
        self.core = reply.data;
        Ok(Image {
            data: &self.core[..len],
            width: w,
            height: h,
            stride: w * 4,
            layout: self.layout,
        })
    }

    fn grab_shm(
        &mut self,
        conn: &RustConnection,
        w: u16,
        h: u16,
        len: usize,
    ) -> Result<(), String> {
        if self.segment.as_ref().is_none_or(|s| s.len < len) {
            if let Some(old) = self.segment.take() {
                let _ = conn.shm_detach(old.id);
            }
            self.segment = Some(Segment::create(conn, len)?);
        }
        let seg = self.segment.as_ref().map(|s| s.id).unwrap_or_default();
        conn.shm_get_image(
            self.root,
            0,
            0,
            w,
            h,
            !0,
            ImageFormat::Z_PIXMAP.into(),
            seg,
            0,
        )
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Uses core `GetImage` from now on.
    pub fn disable_shm(&mut self, conn: &RustConnection) {
        self.shm_ok = false;
        self.release(conn);
    }

    /// Detaches the segment from the server (the mapping goes with `self`).
    pub fn release(&mut self, conn: &RustConnection) {
        if let Some(s) = self.segment.take() {
            let _ = conn.shm_detach(s.id);
            let _ = conn.flush();
        }
        self.core = Vec::new();
    }
}

fn shm_version(conn: &RustConnection) -> Option<(u16, u16)> {
    conn.extension_information(shm::X11_EXTENSION_NAME)
        .ok()
        .flatten()?;
    let v = conn.shm_query_version().ok()?.reply().ok()?;
    Some((v.major_version, v.minor_version))
}

pub(crate) fn failed(e: impl std::fmt::Display) -> DesktopError {
    DesktopError::Failed(format!("X11: {e}"))
}
