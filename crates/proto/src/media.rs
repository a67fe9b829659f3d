//! Binary media frames: `[kind u8][width u16 BE][height u16 BE][payload]`.
//!
//! A live-view video frame ([`MediaKind::Video`]) carries a [`VideoHeader`]
//! in front of its H.264; a screenshot ([`MediaKind::Screenshot`]) carries the
//! request id it answers in front of its JPEG.

use crate::{ProtoError, MAX_BINARY_FRAME};

/// Length of the header in front of every media payload.
pub const MEDIA_HEADER_LEN: usize = 5;

/// What a media frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MediaKind {
    /// A JPEG thumbnail of the device's screen (agent to server).
    Thumbnail = 1,
    /// A JPEG frame of a broadcast to show full screen (server to agent).
    Broadcast = 2,
    /// A screenshot for a violation (agent to server); the payload starts with
    /// an [`Evidence`] header.
    Evidence = 3,
    /// One H.264 picture of the live view (agent to server); the payload
    /// starts with a [`VideoHeader`].
    Video = 4,
    /// A full-resolution JPEG screenshot the server asked for (agent to
    /// server); the payload starts with a [`Screenshot`] header.
    Screenshot = 5,
}

/// The header of a video payload: `[flags u8][sequence u32 BE][ms u32 BE]`
/// followed by H.264 in Annex B form (starting with a start code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    /// An IDR picture (with its SPS and PPS): a decoder may start here.
    pub keyframe: bool,
    /// Counts the stream's pictures (wraps), so a gap shows a loss.
    pub seq: u32,
    /// Capture time in ms since the stream started (wraps), for the decoder.
    pub ms: u32,
}

impl VideoHeader {
    /// Header length.
    pub const LEN: usize = 9;
    /// The flag bit for [`VideoHeader::keyframe`]; the other bits must be 0.
    pub const KEYFRAME: u8 = 1;

    /// The payload for `h264`.
    pub fn payload(&self, h264: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN + h264.len());
        out.push(if self.keyframe { Self::KEYFRAME } else { 0 });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ms.to_be_bytes());
        out.extend_from_slice(h264);
        out
    }

    /// Splits a payload into its header and H.264, refusing unknown flags and
    /// a body that does not start with an Annex B start code.
    pub fn parse(payload: &[u8]) -> Result<(VideoHeader, &[u8]), ProtoError> {
        let Some((head, h264)) = payload.split_at_checked(Self::LEN) else {
            return Err(ProtoError::Malformed(
                "video frame shorter than its header".into(),
            ));
        };
        if head[0] & !Self::KEYFRAME != 0 {
            return Err(ProtoError::Malformed(format!(
                "unknown video flags {:#x}",
                head[0]
            )));
        }
        if !(h264.starts_with(&[0, 0, 1]) || h264.starts_with(&[0, 0, 0, 1])) || h264.len() < 5 {
            return Err(ProtoError::Malformed(
                "video frame without H.264 (Annex B)".into(),
            ));
        }
        let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let h = VideoHeader {
            keyframe: head[0] & Self::KEYFRAME != 0,
            seq: word(1),
            ms: word(5),
        };
        Ok((h, h264))
    }
}

/// The header of a screenshot payload: `[request id u64 BE]` followed by the JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screenshot {
    /// The id of the server's request it answers.
    pub request_id: u64,
}

impl Screenshot {
    /// Header length.
    pub const LEN: usize = 8;

    /// The payload for `jpeg`.
    pub fn payload(&self, jpeg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN + jpeg.len());
        out.extend_from_slice(&self.request_id.to_be_bytes());
        out.extend_from_slice(jpeg);
        out
    }

    /// Splits a payload into its header and JPEG (which must start with the
    /// JPEG SOI marker).
    pub fn parse(payload: &[u8]) -> Result<(Screenshot, &[u8]), ProtoError> {
        let Some((head, jpeg)) = payload.split_at_checked(Self::LEN) else {
            return Err(ProtoError::Malformed(
                "screenshot shorter than its header".into(),
            ));
        };
        if jpeg.len() < 3 || jpeg[..2] != [0xFF, 0xD8] {
            return Err(ProtoError::Malformed("screenshot without a JPEG".into()));
        }
        let request_id = u64::from_be_bytes(head.try_into().unwrap_or_default());
        Ok((Screenshot { request_id }, jpeg))
    }
}

/// The header of an evidence payload: `[violation id u64 BE][index u8][total u8]`
/// followed by the JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// The server's violation id.
    pub violation_id: u64,
    /// Frame number, oldest first.
    pub index: u8,
    /// Frames in this answer.
    pub total: u8,
}

impl Evidence {
    /// Header length.
    pub const LEN: usize = 10;

    /// The payload for `jpeg`.
    pub fn payload(&self, jpeg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN + jpeg.len());
        out.extend_from_slice(&self.violation_id.to_be_bytes());
        out.push(self.index);
        out.push(self.total);
        out.extend_from_slice(jpeg);
        out
    }

    /// Splits a payload into its header and JPEG.
    pub fn parse(payload: &[u8]) -> Result<(Evidence, &[u8]), ProtoError> {
        if payload.len() <= Self::LEN {
            return Err(ProtoError::Malformed(
                "evidence frame without an image".into(),
            ));
        }
        let e = Evidence {
            violation_id: u64::from_be_bytes(payload[..8].try_into().unwrap_or_default()),
            index: payload[8],
            total: payload[9],
        };
        if e.index >= e.total {
            return Err(ProtoError::Malformed(
                "evidence index beyond its total".into(),
            ));
        }
        Ok((e, &payload[Self::LEN..]))
    }
}

/// A decoded media frame; `payload` borrows from the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame<'a> {
    /// What the payload is.
    pub kind: MediaKind,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Encoded image (JPEG).
    pub payload: &'a [u8],
}

impl<'a> MediaFrame<'a> {
    /// Serializes the frame into a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MEDIA_HEADER_LEN + self.payload.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(self.payload);
        out
    }

    /// Parses a frame, refusing unknown kinds, short headers, empty payloads and
    /// frames over [`MAX_BINARY_FRAME`].
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ProtoError> {
        if bytes.len() > MAX_BINARY_FRAME {
            return Err(ProtoError::TooLarge {
                len: bytes.len(),
                max: MAX_BINARY_FRAME,
            });
        }
        if bytes.len() <= MEDIA_HEADER_LEN {
            return Err(ProtoError::Malformed(
                "media frame shorter than its header".into(),
            ));
        }
        let kind = match bytes[0] {
            1 => MediaKind::Thumbnail,
            2 => MediaKind::Broadcast,
            3 => MediaKind::Evidence,
            4 => MediaKind::Video,
            5 => MediaKind::Screenshot,
            k => return Err(ProtoError::Malformed(format!("unknown media kind {k}"))),
        };
        Ok(MediaFrame {
            kind,
            width: u16::from_be_bytes([bytes[1], bytes[2]]),
            height: u16::from_be_bytes([bytes[3], bytes[4]]),
            payload: &bytes[MEDIA_HEADER_LEN..],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = MediaFrame {
            kind: MediaKind::Thumbnail,
            width: 320,
            height: 180,
            payload: b"jpeg",
        };
        let bytes = f.encode();
        assert_eq!(MediaFrame::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn video_headers_round_trip_and_bad_ones_are_refused() {
        let h = VideoHeader {
            keyframe: true,
            seq: 7,
            ms: 1234,
        };
        let nal = [0, 0, 0, 1, 0x67, 0x42];
        let p = h.payload(&nal);
        assert_eq!(p.len(), VideoHeader::LEN + nal.len());
        assert_eq!(VideoHeader::parse(&p).unwrap(), (h, &nal[..]));
        let delta = VideoHeader {
            keyframe: false,
            ..h
        };
        assert!(!VideoHeader::parse(&delta.payload(&nal)).unwrap().0.keyframe);
        assert!(
            VideoHeader::parse(&p[..VideoHeader::LEN]).is_err(),
            "no body"
        );
        assert!(
            VideoHeader::parse(&h.payload(&[1, 2, 3, 4, 5, 6])).is_err(),
            "not Annex B"
        );
        let mut flags = p.clone();
        flags[0] = 0x81;
        assert!(VideoHeader::parse(&flags).is_err(), "unknown flags");
        assert!(VideoHeader::parse(&[]).is_err());
        let f = MediaFrame {
            kind: MediaKind::Video,
            width: 1920,
            height: 1080,
            payload: &p,
        };
        assert_eq!(MediaFrame::decode(&f.encode()).unwrap(), f);
    }

    #[test]
    fn screenshots_round_trip_and_bad_ones_are_refused() {
        let s = Screenshot { request_id: 42 };
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0];
        assert_eq!(
            Screenshot::parse(&s.payload(&jpeg)).unwrap(),
            (s, &jpeg[..])
        );
        assert!(Screenshot::parse(&s.payload(&[0xFF, 0xD8])).is_err());
        assert!(Screenshot::parse(&s.payload(&[0, 1, 2, 3])).is_err());
        assert!(Screenshot::parse(&[1, 2, 3]).is_err());
    }

    #[test]
    fn bad_frames_are_refused() {
        assert!(MediaFrame::decode(&[]).is_err());
        assert!(MediaFrame::decode(&[1, 0, 1, 0, 1]).is_err());
        assert!(MediaFrame::decode(&[9, 0, 1, 0, 1, 0xff]).is_err());
        assert!(MediaFrame::decode(&[6, 0, 1, 0, 1, 0xff]).is_err());
        let big = vec![1u8; MAX_BINARY_FRAME + 1];
        assert!(matches!(
            MediaFrame::decode(&big),
            Err(ProtoError::TooLarge { .. })
        ));
    }
}
