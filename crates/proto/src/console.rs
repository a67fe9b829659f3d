//! What a console sends on its live stream (`GET /api/v1/stream`): JSON
//! [`Watch`] messages saying which devices it shows, and binary broadcast
//! uploads `[2][broadcast id u64 BE][JPEG]` carrying the teacher's screen.
//! And what the server sends it that is not JSON: thumbnails
//! `[1][device id i64 BE][JPEG]` and live-view video ([`video_frame`]).
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
    /// Video codecs the console can decode for its live view, e.g.
    /// `["h264"]` ([`CODEC_H264`]); unknown names are ignored. Without one it
    /// knows, the live view comes as JPEG frames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<String>,
}

/// The codec name a console gives for H.264 (Constrained Baseline, Annex B).
pub const CODEC_H264: &str = "h264";

/// Most codec names in one [`Watch`] message, and their longest length.
pub const MAX_CODECS: (usize, usize) = (8, 32);

/// Kind byte in front of a live-view video frame sent to a console.
pub const VIDEO_KIND: u8 = 4;

/// The bytes a console receives for one live-view video picture of
/// `device_id`: `[4][device id i64 BE]` followed by the agent's media frame
/// after its kind byte (`[width u16][height u16]`, the
/// [`crate::VideoHeader`], the H.264).
pub fn video_frame(device_id: i64, agent_frame: &[u8]) -> Vec<u8> {
    let body = agent_frame.get(1..).unwrap_or_default();
    let mut out = Vec::with_capacity(9 + body.len());
    out.push(VIDEO_KIND);
    out.extend_from_slice(&device_id.to_be_bytes());
    out.extend_from_slice(body);
    out
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
    /// More codec names than [`MAX_CODECS`] allows, or one too long.
    #[error("at most 8 codec names of 32 characters")]
    Codecs,
}

impl Watch {
    /// Refuses a message the server must not act on: too many devices, or a
    /// live device that is not watched.
    pub fn check(&self) -> Result<(), WatchError> {
        if self.watch.len() > MAX_WATCH {
            return Err(WatchError::TooMany);
        }
        if self.codecs.len() > MAX_CODECS.0 || self.codecs.iter().any(|c| c.len() > MAX_CODECS.1) {
            return Err(WatchError::Codecs);
        }
        match self.live {
            Some(d) if !self.watch.contains(&d) => Err(WatchError::LiveNotWatched(d)),
            _ => Ok(()),
        }
    }

    /// Whether the console decodes H.264 for its live view.
    pub fn h264(&self) -> bool {
        self.codecs.iter().any(|c| c == CODEC_H264)
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
            codecs: Vec::new(),
        };
        assert_eq!(many.check(), Err(WatchError::TooMany));
    }

    #[test]
    fn codecs_are_optional_and_bounded() {
        let w: Watch = serde_json::from_str(r#"{"watch":[1],"live":1}"#).unwrap();
        assert!(!w.h264(), "an older console gets JPEG");
        let w: Watch =
            serde_json::from_str(r#"{"watch":[1],"live":1,"codecs":["vp9","h264"]}"#).unwrap();
        assert!(w.h264() && w.check().is_ok());
        let w: Watch =
            serde_json::from_str(r#"{"watch":[],"codecs":["x","x","x","x","x","x","x","x","x"]}"#)
                .unwrap();
        assert_eq!(w.check(), Err(WatchError::Codecs));
        let long = format!(r#"{{"watch":[],"codecs":["{}"]}}"#, "a".repeat(33));
        assert_eq!(
            serde_json::from_str::<Watch>(&long).unwrap().check(),
            Err(WatchError::Codecs)
        );
        assert!(serde_json::from_str::<Watch>(r#"{"watch":[],"codecs":"h264"}"#).is_err());
    }

    #[test]
    fn video_frames_for_consoles_carry_the_device() {
        let agent = [4u8, 0, 2, 0, 2, 1, 0, 0, 0, 1];
        let f = video_frame(-1, &agent);
        assert_eq!(f[0], VIDEO_KIND);
        assert_eq!(i64::from_be_bytes(f[1..9].try_into().unwrap()), -1);
        assert_eq!(&f[9..], &agent[1..]);
        assert_eq!(video_frame(3, &[]).len(), 9);
    }
}
