//! Evidence screenshots at a readable size: the screen at its own width up
//! to [`EVIDENCE_MAX_WIDTH`] for the frame of the moment (the trigger), 1280
//! px for the rolling buffer, each encoded at the best JPEG quality that
//! fits the server's per-frame limit (smaller only when no quality fits).
//! Platform-free: the X11 and Windows agents capture through `Desktop`.

use lectern_desktop::{encode_jpeg, Desktop, Frame};
use lectern_proto::{
    Evidence, EvidenceAllowance, EVIDENCE_FRAME_BYTES, EVIDENCE_MAX_WIDTH, MAX_BINARY_FRAME,
    MEDIA_HEADER_LEN,
};

use crate::safety::EvidenceFrame;

/// Which evidence frame is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shot {
    /// The screen at a match, or when the server asks: full resolution up to
    /// [`EVIDENCE_MAX_WIDTH`].
    Trigger,
    /// One frame of the rolling buffer: [`BUFFER_WIDTH`], so the buffer's
    /// frames (30 by default) stay a few MiB of memory yet readable.
    Buffer,
}

/// Width of the rolling buffer's frames (a narrower screen is kept whole).
pub const BUFFER_WIDTH: u32 = 1280;

/// JPEG qualities tried, best first, until a frame fits.
const QUALITIES: [u8; 4] = [80, 65, 50, 35];

/// Widths tried when no quality fits at the shot's own width (a screen of
/// fine noise): still readable first, the old 640 px last.
const FALLBACK_WIDTHS: [u32; 3] = [1280, 960, 640];

/// Largest JPEG that fits one media frame with its headers.
const FRAME_ROOM: usize = MAX_BINARY_FRAME - MEDIA_HEADER_LEN - Evidence::LEN;

/// The largest JPEG the server takes per frame: its allowance, or the
/// default before the agent has heard one (offline), never beyond what one
/// media frame carries.
pub fn frame_limit(allowance: Option<EvidenceAllowance>) -> usize {
    let allowed = allowance.map_or(EVIDENCE_FRAME_BYTES, |a| a.max_frame_bytes);
    (allowed as usize).min(FRAME_ROOM)
}

/// The widths to capture at, widest first: the shot's own, then the
/// fallbacks narrower than it.
fn widths(shot: Shot) -> Vec<u32> {
    let first = match shot {
        Shot::Trigger => EVIDENCE_MAX_WIDTH,
        Shot::Buffer => BUFFER_WIDTH,
    };
    std::iter::once(first)
        .chain(FALLBACK_WIDTHS.into_iter().filter(|w| *w < first))
        .collect()
}

/// `frame` as a JPEG of at most `max_bytes`, at the best quality that fits.
pub fn fit_jpeg(frame: &Frame, max_bytes: usize) -> Option<Vec<u8>> {
    QUALITIES
        .into_iter()
        .filter_map(|q| encode_jpeg(frame, q).ok())
        .find(|jpeg| jpeg.len() <= max_bytes)
}

/// Takes one evidence frame of `max_bytes` at most (blocking: call it off
/// the async threads). `None` when the screen cannot be captured or fits at
/// no width.
pub fn take(desktop: &mut dyn Desktop, shot: Shot, max_bytes: usize) -> Option<EvidenceFrame> {
    let mut last_width = u32::MAX;
    for width in widths(shot) {
        let frame = desktop.capture(width).ok()?;
        // A screen narrower than the width asked comes back at its own size:
        // asking again for a width it already exceeds changes nothing.
        if frame.width >= last_width {
            continue;
        }
        last_width = frame.width;
        if let Some(jpeg) = fit_jpeg(&frame, max_bytes) {
            let (w, h) = (u16::try_from(frame.width), u16::try_from(frame.height));
            return Some((w.ok()?, h.ok()?, jpeg));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of pseudo-random noise: the worst case for JPEG.
    fn noise(width: u32, height: u32) -> Frame {
        let mut x: u32 = 0x9e37_79b9;
        let rgb = (0..width * height * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        Frame { width, height, rgb }
    }

    #[test]
    fn the_limit_is_the_allowance_within_one_media_frame() {
        assert_eq!(frame_limit(None), EVIDENCE_FRAME_BYTES as usize);
        let a = |b| {
            Some(EvidenceAllowance {
                max_frames: 4,
                max_frame_bytes: b,
            })
        };
        assert_eq!(frame_limit(a(1000)), 1000);
        assert_eq!(frame_limit(a(u32::MAX)), FRAME_ROOM);
    }

    #[test]
    fn the_trigger_is_full_size_and_the_buffer_1280() {
        assert_eq!(widths(Shot::Trigger), vec![1920, 1280, 960, 640]);
        assert_eq!(widths(Shot::Buffer), vec![1280, 960, 640]);
    }

    #[test]
    fn a_screen_is_taken_at_its_size_and_narrower_only_when_nothing_fits() {
        let mut d = crate::HeadlessDesktop::new("PC", Some("amy".into()));
        assert_eq!(take(&mut d, Shot::Trigger, usize::MAX).unwrap().0, 1920);
        assert_eq!(take(&mut d, Shot::Buffer, usize::MAX).unwrap().0, 1280);
        // Room for about the old 640-px frame only: a narrower one that fits.
        // (The headless screen has a bar that moves each second: sizes vary.)
        let small = encode_jpeg(&d.capture(640).unwrap(), 35).unwrap().len() * 3 / 2;
        let (w, _, jpeg) = take(&mut d, Shot::Trigger, small).unwrap();
        assert!(
            w < 1280 && jpeg.len() <= small,
            "{w} px, {} bytes",
            jpeg.len()
        );
        assert_eq!(take(&mut d, Shot::Trigger, 10), None, "nothing fits");
    }

    #[test]
    fn a_frame_gets_the_best_quality_that_fits() {
        let f = noise(320, 200);
        let best = fit_jpeg(&f, usize::MAX).unwrap();
        let lowest = encode_jpeg(&f, 35).unwrap();
        assert_eq!(best, encode_jpeg(&f, 80).unwrap());
        let fitted = fit_jpeg(&f, best.len() - 1).unwrap();
        assert!(fitted.len() < best.len() && fitted.len() >= lowest.len());
        assert_eq!(fit_jpeg(&f, lowest.len() - 1), None);
    }
}
