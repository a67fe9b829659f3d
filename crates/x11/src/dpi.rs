//! The screen's scale (physical pixels per logical pixel) for the student
//! surfaces: the desktop's own choice when it made one (`Xft.dpi` in the
//! root window's RESOURCE_MANAGER, what GNOME, KDE and Xfce set, and
//! `xrdb` can), else the physical size of the primary monitor as RandR
//! reports it (a 4K panel of 60 cm is HiDPI; a projector reporting 0 mm is
//! not), else 1.

use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, Window};

/// The DPI that is scale 1 on X11.
const BASE_DPI: f32 = 96.0;
/// Monitors denser than this (and at least [`HIDPI_MIN_ROWS`] tall) are
/// drawn at scale 2 when the desktop says nothing (GNOME's rule).
const HIDPI_DPI: f32 = 192.0;
const HIDPI_MIN_ROWS: u32 = 1200;

/// The value of `Xft.dpi` in a RESOURCE_MANAGER string, if set and sane.
pub fn xft_dpi(resources: &str) -> Option<f32> {
    resources.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key.trim() != "Xft.dpi" {
            return None;
        }
        let dpi: f32 = value.trim().parse().ok()?;
        (dpi.is_finite() && (24.0..=960.0).contains(&dpi)).then_some(dpi)
    })
}

/// A monitor's size in pixels and millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Physical {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Width in millimetres (0 when the monitor does not say).
    pub mm_width: u32,
    /// Height in millimetres.
    pub mm_height: u32,
}

/// The scale from what the display says: `Xft.dpi` wins (rounded to a
/// quarter, at least 1), then a dense monitor is 2, else 1.
pub fn scale_from(xft: Option<f32>, monitor: Option<Physical>) -> f32 {
    if let Some(dpi) = xft {
        return ((dpi / BASE_DPI) * 4.0).round().max(4.0) / 4.0;
    }
    let Some(m) = monitor else { return 1.0 };
    // Under 5 cm a side is no real monitor (EDIDs of projectors and KVMs
    // say 0, 1 or a few mm): ignore it.
    if m.mm_width < 50 || m.mm_height < 50 {
        return 1.0;
    }
    let dpi_x = m.width as f32 * 25.4 / m.mm_width as f32;
    let dpi_y = m.height as f32 * 25.4 / m.mm_height as f32;
    if dpi_x.min(dpi_y) >= HIDPI_DPI && m.height >= HIDPI_MIN_ROWS {
        2.0
    } else {
        1.0
    }
}

/// Asks the display for its scale (see the module's doc). Any error reads
/// as "nothing said": scale 1 is always a working answer.
pub fn query<C: Connection>(conn: &C, root: Window) -> f32 {
    scale_from(resource_dpi(conn, root), primary_monitor(conn, root))
}

fn resource_dpi<C: Connection>(conn: &C, root: Window) -> Option<f32> {
    let reply = conn
        .get_property(
            false,
            root,
            AtomEnum::RESOURCE_MANAGER,
            AtomEnum::STRING,
            0,
            1 << 20,
        )
        .ok()?
        .reply()
        .ok()?;
    xft_dpi(&String::from_utf8_lossy(&reply.value))
}

/// The primary output's size (or the first connected one's) from RandR.
fn primary_monitor<C: Connection>(conn: &C, root: Window) -> Option<Physical> {
    let monitors = conn.randr_get_monitors(root, true).ok()?.reply().ok()?;
    let m = monitors
        .monitors
        .iter()
        .find(|m| m.primary)
        .or_else(|| monitors.monitors.first())?;
    Some(Physical {
        width: m.width.into(),
        height: m.height.into(),
        mm_width: m.width_in_millimeters,
        mm_height: m.height_in_millimeters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xft_dpi_is_read_from_the_resource_string() {
        let r = "Xcursor.size:\t24\nXft.dpi:\t192\nXft.antialias:\t1\n";
        assert_eq!(xft_dpi(r), Some(192.0));
        assert_eq!(xft_dpi("Xft.dpi: 144"), Some(144.0));
        assert_eq!(xft_dpi("Xft.dpi:\tlots"), None);
        assert_eq!(xft_dpi("Xft.dpi:\t100000"), None);
        assert_eq!(xft_dpi("Xft.dpix:\t192"), None);
        assert_eq!(xft_dpi(""), None);
    }

    #[test]
    fn scale_prefers_xft_then_a_dense_monitor() {
        let k4 = Physical {
            width: 3840,
            height: 2160,
            mm_width: 344,
            mm_height: 194,
        };
        assert_eq!(scale_from(Some(192.0), None), 2.0);
        assert_eq!(scale_from(Some(144.0), Some(k4)), 1.5);
        assert_eq!(scale_from(Some(96.0), Some(k4)), 1.0);
        assert_eq!(scale_from(Some(72.0), None), 1.0);
        assert_eq!(scale_from(None, Some(k4)), 2.0);
        // A 4K television across the room is not HiDPI.
        let tv = Physical {
            mm_width: 1210,
            mm_height: 680,
            ..k4
        };
        assert_eq!(scale_from(None, Some(tv)), 1.0);
        // A projector that reports no size.
        let none = Physical {
            mm_width: 0,
            mm_height: 0,
            ..k4
        };
        assert_eq!(scale_from(None, Some(none)), 1.0);
        assert_eq!(scale_from(None, None), 1.0);
    }
}
