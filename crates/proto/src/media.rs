//! Binary media frames: `[kind u8][width u16 BE][height u16 BE][payload]`.

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
    fn bad_frames_are_refused() {
        assert!(MediaFrame::decode(&[]).is_err());
        assert!(MediaFrame::decode(&[1, 0, 1, 0, 1]).is_err());
        assert!(MediaFrame::decode(&[9, 0, 1, 0, 1, 0xff]).is_err());
        let big = vec![1u8; MAX_BINARY_FRAME + 1];
        assert!(matches!(
            MediaFrame::decode(&big),
            Err(ProtoError::TooLarge { .. })
        ));
    }
}
