//! The live view's video stream and full-size screenshots.
//!
//! While the server asks for video ([`lectern_proto::ServerMsg::StartVideo`]),
//! a thread of its own captures the screen at full size (up to
//! [`VIDEO_WIDTH`]), encodes it with [`lectern_video`] and hands each picture
//! to the session as a ready [`MediaKind::Video`] frame. The hand-over holds
//! one picture: the thread captures the next only once the session took the
//! last, so a slow connection lowers the frame rate instead of building a
//! queue (the picture shown stays recent).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lectern_proto::{MediaFrame, MediaKind, Screenshot, VideoHeader, MAX_BINARY_FRAME};
use lectern_video::{Encoder, Settings};
use tokio::sync::mpsc;

use crate::session::SharedDesktop;
use crate::{encode_jpeg, DesktopError, Frame};

/// Widest picture streamed: a larger screen is scaled down to this (a 1080p
/// screen streams at its own size).
pub const VIDEO_WIDTH: u32 = 1920;
/// Widest screenshot: a larger screen is scaled down to this, so that its
/// pixels fit the session helper's IPC payload (16 MiB) and its JPEG one
/// media frame.
pub const SCREENSHOT_WIDTH: u32 = 2560;
/// Frames per second the server may ask for, at most.
pub const MAX_FPS: u32 = 30;

/// What the server asked of the stream; `keyframe` counts requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    bitrate: u32,
    fps: u32,
    keyframe: u64,
}

/// A running video stream; dropping it stops the thread (at its next picture).
pub struct VideoStream {
    wanted: Arc<Mutex<Wanted>>,
    frames: mpsc::Receiver<Vec<u8>>,
}

impl VideoStream {
    /// Starts capturing and encoding at `bitrate` bits per second and at most
    /// `fps` pictures a second.
    pub fn start(desktop: SharedDesktop, bitrate: u32, fps: u32) -> Self {
        let wanted = Arc::new(Mutex::new(Wanted {
            bitrate,
            fps: fps.clamp(1, MAX_FPS),
            keyframe: 0,
        }));
        let (tx, frames) = mpsc::channel(1);
        let w = wanted.clone();
        let spawned = std::thread::Builder::new()
            .name("live-video".into())
            .spawn(move || produce(desktop, w, tx));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the live video: {e}");
        }
        VideoStream { wanted, frames }
    }

    /// A new bitrate or rate; the next picture is a keyframe either way (the
    /// server asks again when a viewer joins or lost pictures).
    pub fn adjust(&self, bitrate: u32, fps: u32) {
        let mut w = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        w.bitrate = bitrate;
        w.fps = fps.clamp(1, MAX_FPS);
        w.keyframe += 1;
    }

    /// The next encoded frame (pending forever once the thread ended).
    pub async fn next(&mut self) -> Vec<u8> {
        match self.frames.recv().await {
            Some(f) => f,
            None => std::future::pending().await,
        }
    }
}

/// The capture thread: one picture per period, each passed on before the
/// next is taken. Ends when the session dropped its [`VideoStream`].
fn produce(desktop: SharedDesktop, wanted: Arc<Mutex<Wanted>>, tx: mpsc::Sender<Vec<u8>>) {
    let start = Instant::now();
    let mut encoder: Option<Encoder> = None;
    let mut keyframe_seen = 0;
    let mut seq = 0u32;
    while !tx.is_closed() {
        let began = Instant::now();
        let w = *wanted.lock().unwrap_or_else(|p| p.into_inner());
        let frame = match capture(&desktop, VIDEO_WIDTH) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("live video capture failed: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let ms = start.elapsed().as_millis() as u64;
        match encode(&mut encoder, &w, &mut keyframe_seen, &frame, ms) {
            Ok(Some(picture)) => {
                let bytes = video_frame(&picture, seq, ms as u32);
                seq = seq.wrapping_add(1);
                if tx.blocking_send(bytes).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("live video encoding failed: {e}");
                encoder = None;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let period = Duration::from_millis(1000 / u64::from(w.fps.max(1)));
        if let Some(rest) = period.checked_sub(began.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

fn capture(desktop: &SharedDesktop, width: u32) -> Result<Frame, DesktopError> {
    desktop
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .capture(width)
}

/// Encodes one picture, making or adjusting the encoder to what is wanted.
fn encode(
    encoder: &mut Option<Encoder>,
    w: &Wanted,
    keyframe_seen: &mut u64,
    f: &Frame,
    ms: u64,
) -> Result<Option<lectern_video::EncodedFrame>, lectern_video::VideoError> {
    let enc = match encoder {
        Some(e) => {
            e.set_bitrate(w.bitrate)?;
            e
        }
        None => encoder.insert(Encoder::new(Settings {
            bitrate: w.bitrate,
            fps: w.fps as f32,
            ..Settings::default()
        })?),
    };
    if w.keyframe != *keyframe_seen {
        *keyframe_seen = w.keyframe;
        enc.request_keyframe();
    }
    enc.encode(f.width, f.height, &f.rgb, ms)
}

/// The media frame for one encoded picture.
fn video_frame(p: &lectern_video::EncodedFrame, seq: u32, ms: u32) -> Vec<u8> {
    let header = VideoHeader {
        keyframe: p.keyframe,
        seq,
        ms,
    };
    let payload = header.payload(&p.data);
    MediaFrame {
        kind: MediaKind::Video,
        width: p.width as u16,
        height: p.height as u16,
        payload: &payload,
    }
    .encode()
}

/// A full-size JPEG screenshot answering `request_id`, as a media frame that
/// fits [`MAX_BINARY_FRAME`] (lower quality until it does).
pub fn screenshot(desktop: &SharedDesktop, request_id: u64) -> Result<Vec<u8>, DesktopError> {
    let f = capture(desktop, SCREENSHOT_WIDTH)?;
    let header = Screenshot { request_id };
    for quality in [90, 75, 55, 35] {
        let jpeg = encode_jpeg(&f, quality)?;
        let payload = header.payload(&jpeg);
        let frame = MediaFrame {
            kind: MediaKind::Screenshot,
            width: f.width as u16,
            height: f.height as u16,
            payload: &payload,
        }
        .encode();
        if frame.len() <= MAX_BINARY_FRAME {
            return Ok(frame);
        }
    }
    Err(DesktopError::Failed(
        "the screenshot does not fit in one frame".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HeadlessDesktop;

    fn desktop() -> SharedDesktop {
        Arc::new(Mutex::new(HeadlessDesktop::new("PC", Some("amy".into()))))
    }

    #[tokio::test]
    async fn streams_pictures_with_a_keyframe_first_and_on_request() {
        let mut v = VideoStream::start(desktop(), 1_000_000, 30);
        let parse = |b: &[u8]| {
            let f = MediaFrame::decode(b).unwrap();
            assert_eq!(f.kind, MediaKind::Video);
            VideoHeader::parse(f.payload).unwrap().0
        };
        let first = parse(&v.next().await);
        assert!(first.keyframe);
        let second = parse(&v.next().await);
        assert_eq!(second.seq, first.seq + 1);
        v.adjust(500_000, 30);
        // One picture may have been taken before the request.
        let mut saw = false;
        for _ in 0..3 {
            saw |= parse(&v.next().await).keyframe;
        }
        assert!(saw, "a keyframe after the request");
    }

    #[test]
    fn screenshots_are_jpeg_frames_that_fit() {
        let f = screenshot(&desktop(), 9).unwrap();
        let m = MediaFrame::decode(&f).unwrap();
        assert_eq!(m.kind, MediaKind::Screenshot);
        let (s, jpeg) = Screenshot::parse(m.payload).unwrap();
        assert_eq!(s.request_id, 9);
        assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    }
}
