//! What a console sends on its live stream (`GET /api/v1/stream`): JSON
//! [`Watch`] messages saying which devices it shows, and binary broadcast
//! uploads `[2][broadcast id u64 BE][JPEG]` carrying the teacher's screen.
//!
//! Parsing is kept here, apart from the server's socket loop, so it is a pure
//! function of the received bytes that the fuzz targets (`crates/fuzz`) can
//! drive directly.

use serde::{Deserialize, Serialize};

/// Most devices one console may watch at once.
pub const MAX_WATCH: usize = 5000;

/// Kind byte in front of a broadcast upload (the same value as
/// [`crate::MediaKind::Broadcast`]).
pub const UPLOAD_KIND: u8 = 2;

/// Length of an upload's header: kind byte and broadcast id.
pub const UPLOAD_HEADER_LEN: usize = 9;

/// A console's "show me these devices" message. Callers act on it only once
/// [`Watch::check`] passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// Device ids whose thumbnails the console wants.
    pub watch: Vec<i64>,
    /// Accepted for forward compatibility; the server sets the size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// The one device the console shows in its live view (larger frames at a
    /// higher rate); it must also be in `watch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<i64>,
}

/// Why a [`Watch`] message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// More than [`MAX_WATCH`] devices.
    #[error("watch at most {MAX_WATCH} devices")]
    TooMany,
    /// `live` names a device that is not in `watch`.
    #[error("the live device {0} must also be in watch")]
    LiveNotWatched(i64),
}

impl Watch {
    /// Refuses a message the server must not act on: too many devices, or a
    /// live device that is not watched.
    pub fn check(&self) -> Result<(), WatchError> {
        if self.watch.len() > MAX_WATCH {
            return Err(WatchError::TooMany);
        }
        match self.live {
            Some(d) if !self.watch.contains(&d) => Err(WatchError::LiveNotWatched(d)),
            _ => Ok(()),
        }
    }
}

/// Splits an uploaded broadcast frame into its broadcast id and JPEG; `None`
/// unless it is `[2][id u64 BE]` followed by something that starts like a JPEG
/// (SOI marker `FF D8`) and has at least one more byte.
pub fn upload(b: &[u8]) -> Option<(u64, &[u8])> {
    let (head, jpeg) = b.split_at_checked(UPLOAD_HEADER_LEN)?;
    if head[0] != UPLOAD_KIND || jpeg.len() < 3 || jpeg[..2] != [0xFF, 0xD8] {
        return None;
    }
    Some((u64::from_be_bytes(head[1..].try_into().ok()?), jpeg))
}

/// The bytes of a broadcast upload for `id` carrying `jpeg` (what the
/// console's JavaScript sends); [`upload`] reverses it.
pub fn upload_frame(id: u64, jpeg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(UPLOAD_HEADER_LEN + jpeg.len());
    out.push(UPLOAD_KIND);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(jpeg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_round_trip_and_bad_ones_are_refused() {
        let f = upload_frame(7, &[0xFF, 0xD8, 0xFF]);
        assert_eq!(upload(&f), Some((7, &[0xFF, 0xD8, 0xFF][..])));
        assert_eq!(upload(&[]), None);
        assert_eq!(upload(&upload_frame(7, &[0xFF, 0xD8])), None, "no image");
        assert_eq!(upload(&upload_frame(7, &[0x00, 0xD8, 0xFF])), None);
        let mut wrong_kind = f.clone();
        wrong_kind[0] = 1;
        assert_eq!(upload(&wrong_kind), None);
    }

    #[test]
    fn watch_refuses_unknown_fields() {
        let w: Watch = serde_json::from_str(r#"{"watch":[1,2],"width":320}"#).unwrap();
        assert_eq!(w.watch, vec![1, 2]);
        assert!(serde_json::from_str::<Watch>(r#"{"watch":[],"x":1}"#).is_err());
        assert_eq!(w.live, None);
    }

    #[test]
    fn the_live_device_must_be_watched() {
        let w: Watch = serde_json::from_str(r#"{"watch":[1,2],"live":2}"#).unwrap();
        assert_eq!((w.live, w.check()), (Some(2), Ok(())));
        let w: Watch = serde_json::from_str(r#"{"watch":[1],"live":3}"#).unwrap();
        assert_eq!(w.check(), Err(WatchError::LiveNotWatched(3)));
        assert!(serde_json::from_str::<Watch>(r#"{"watch":[1],"live":"1"}"#).is_err());
        let many = Watch {
            watch: vec![0; MAX_WATCH + 1],
            width: None,
            live: None,
        };
        assert_eq!(many.check(), Err(WatchError::TooMany));
    }
}
