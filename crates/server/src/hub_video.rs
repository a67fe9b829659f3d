//! The live view's H.264 relay and full-size screenshots (part of the hub).
//!
//! A device streams video while at least one console that may see its
//! pictures shows it in its live view and decodes H.264 (its watch message's
//! `codecs`), and the agent announced [`Capability::LiveVideo`]; other
//! consoles keep getting it as JPEG. Each console has its own channel for
//! video, two pictures deep: when it is full the picture is dropped for that
//! console, never queued, and the console then skips pictures until the next
//! keyframe. A drop also asks the device for a keyframe at two thirds of the
//! bitrate (at most once a second); ten seconds without a drop raise it by a
//! quarter again, up to [`LIVE_VIDEO`]'s. A device's video is passed on only
//! while it was asked for, within twice the asked rate and bytes a second
//! (plus room for a keyframe): beyond that, pictures are dropped.

use super::*;

/// Bitrate (bits/s) and pictures per second a live view starts at.
pub const LIVE_VIDEO: (u32, u32) = (4_000_000, 20);
/// The lowest bitrate a slow console pushes a device down to.
const MIN_BITRATE: u32 = 300_000;
/// Room above the bitrate for a keyframe burst in one second (bytes).
const KEYFRAME_ROOM: usize = 768 * 1024;
/// Keyframe requests and bitrate cuts are at least this far apart (ms).
const ASK_GAP_MS: i64 = 1000;
/// Most screenshots asked of one device and not yet answered.
const MAX_PENDING_SCREENSHOTS: usize = 1;

/// A screenshot as it arrived: width, height, JPEG.
pub type ScreenshotJpeg = (u16, u16, Vec<u8>);

/// A device's video stream as the hub keeps it.
#[derive(Debug, Default)]
pub(super) struct VideoState {
    /// The bitrate last asked of the device, while it streams video.
    asked: Option<u32>,
    /// Current target bitrate (0: not set yet, [`LIVE_VIDEO`]'s).
    bitrate: u32,
    /// A console started showing it: ask for a keyframe now.
    pub(super) key_wanted: bool,
    /// When a keyframe or bitrate was last asked for (ms).
    last_ask: i64,
    /// Pictures delivered everywhere since the last drop.
    clean: u32,
    /// Start of the metering window (ms), pictures and bytes in it.
    window: (i64, u32, usize),
}

impl VideoState {
    fn bitrate(&self) -> u32 {
        if self.bitrate == 0 {
            LIVE_VIDEO.0
        } else {
            self.bitrate
        }
    }

    /// Counts a picture against the device's rate; false when over it.
    fn meter(&mut self, now: i64, len: usize) -> bool {
        if now - self.window.0 >= 1000 || now < self.window.0 {
            self.window = (now, 0, 0);
        }
        self.window.1 += 1;
        self.window.2 += len;
        let max_frames = LIVE_VIDEO.1 * 2 + 2;
        let max_bytes = self.bitrate() as usize / 8 * 2 + KEYFRAME_ROOM;
        self.window.1 <= max_frames && self.window.2 <= max_bytes
    }
}

/// What became of one video picture from a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoVerdict {
    /// Passed on to this many consoles.
    Relayed(usize),
    /// Nobody asked this device for video: dropped.
    NotAsked,
    /// Over the device's rate or bytes a second: dropped.
    RateLimited,
}

impl Console {
    /// Whether this console gets `device`'s live view as video.
    pub(super) fn uses_video(&self, device: i64, a: &Agent) -> bool {
        self.is_live(device)
            && self.h264
            && self.video_tx.is_some()
            && a.capabilities.contains(&Capability::LiveVideo)
    }
}

/// Whether some console that may see `device` shows it live as video.
fn wanted(inner: &Inner, device: i64, a: &Agent) -> bool {
    inner
        .watchers
        .get(&device)
        .into_iter()
        .flatten()
        .filter_map(|c| inner.consoles.get(c))
        .any(|c| c.uses_video(device, a) && gets_pictures(inner, c, device, a))
}

/// Starts, keeps or stops a device's video to match who views it, asking
/// for a keyframe when a console just started showing it.
pub(super) fn refresh(inner: &mut Inner, device: i64) {
    let Some(a) = inner.agents.get(&device) else {
        return;
    };
    let want = wanted(inner, device, a);
    let Some(a) = inner.agents.get_mut(&device) else {
        return;
    };
    match (want, a.video.asked) {
        (true, None) => ask(a, now_ms()),
        (true, Some(_)) if a.video.key_wanted => ask(a, now_ms()),
        (false, Some(_)) => {
            if a.tx.try_send(ServerMsg::StopVideo).is_ok() {
                a.video.asked = None;
            }
        }
        _ => {}
    }
}

/// Asks the device to stream (or to send a keyframe) at its current bitrate.
fn ask(a: &mut Agent, now: i64) {
    let privacy_bypass = a.privacy().is_some_and(|(_, m)| m == RemoteView::Deny);
    let bitrate = a.video.bitrate();
    let msg = ServerMsg::StartVideo {
        bitrate,
        fps: LIVE_VIDEO.1,
        privacy_bypass,
    };
    // A full queue: the next picture or change asks again.
    if a.tx.try_send(msg).is_ok() {
        a.video.asked = Some(bitrate);
        a.video.key_wanted = false;
        a.video.last_ask = now;
    }
}

impl Hub {
    /// Gives a console stream its video channel (see [`Console::video_tx`]).
    pub fn attach_console_video(&self, console: u64, tx: mpsc::Sender<Bytes>) {
        if let Some(c) = self.lock().consoles.get_mut(&console) {
            c.video_tx = Some(tx);
        }
    }

    /// Passes one video picture from `device_id` (`frame`: the agent's media
    /// frame, already parsed as [`MediaKind::Video`]) to each console that
    /// shows it live as video and may see it, dropping it for those whose
    /// channel is full (see the module's notes).
    pub fn video_frame(&self, device_id: i64, frame: &[u8], keyframe: bool) -> VideoVerdict {
        self.video_frame_at(device_id, frame, keyframe, now_ms())
    }

    pub(super) fn video_frame_at(
        &self,
        device_id: i64,
        frame: &[u8],
        keyframe: bool,
        now: i64,
    ) -> VideoVerdict {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(a) = inner.agents.get_mut(&device_id) else {
            return VideoVerdict::NotAsked;
        };
        if a.video.asked.is_none() {
            return VideoVerdict::NotAsked;
        }
        let within = a.video.meter(now, frame.len());
        let bytes = Bytes::from(lectern_proto::console::video_frame(device_id, frame));
        let Some(a) = inner.agents.get(&device_id) else {
            return VideoVerdict::NotAsked;
        };
        let targets: Vec<u64> = inner
            .watchers
            .get(&device_id)
            .into_iter()
            .flatten()
            .filter(|id| {
                inner.consoles.get(id).is_some_and(|c| {
                    c.uses_video(device_id, a) && gets_pictures(inner, c, device_id, a)
                })
            })
            .copied()
            .collect();
        let (mut sent, mut behind, mut waiting) = (0, false, false);
        for id in targets {
            let Some(c) = inner.consoles.get_mut(&id) else {
                continue;
            };
            if !within {
                // The stream has a gap now: this console needs a keyframe.
                c.wait_key = true;
                continue;
            }
            if c.wait_key && !keyframe {
                waiting = true;
                continue;
            }
            match c.video_tx.as_ref().map(|tx| tx.try_send(bytes.clone())) {
                Some(Ok(())) => {
                    c.wait_key = false;
                    sent += 1;
                }
                Some(Err(mpsc::error::TrySendError::Full(_))) => {
                    c.wait_key = true;
                    behind = true;
                }
                _ => {}
            }
        }
        let Some(a) = inner.agents.get_mut(&device_id) else {
            return VideoVerdict::NotAsked;
        };
        adapt(a, now, behind, waiting);
        if within {
            VideoVerdict::Relayed(sent)
        } else {
            VideoVerdict::RateLimited
        }
    }

    /// Asks a device for one full-size screenshot (the caller checked the
    /// viewer's rights and the privacy rule); `None` when it is offline,
    /// cannot take one, already has one pending, or its queue is full.
    pub fn request_screenshot(
        &self,
        device_id: i64,
    ) -> Option<(u64, oneshot::Receiver<ScreenshotJpeg>)> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.next_id += 1;
        let request_id = inner.next_id;
        let a = inner.agents.get_mut(&device_id)?;
        a.screenshots.retain(|_, tx| !tx.is_closed());
        if !a.capabilities.contains(&Capability::LiveVideo)
            || a.screenshots.len() >= MAX_PENDING_SCREENSHOTS
        {
            return None;
        }
        // Under deny, whoever may see it does so through the bypass right.
        let privacy_bypass = a.privacy().is_some_and(|(_, m)| m == RemoteView::Deny);
        let msg = ServerMsg::Screenshot {
            request_id,
            privacy_bypass,
        };
        a.tx.try_send(msg).ok()?;
        let (tx, rx) = oneshot::channel();
        a.screenshots.insert(request_id, tx);
        Some((request_id, rx))
    }

    /// A screenshot arrived; false when nobody asked this device for it
    /// (it is then dropped).
    pub fn screenshot_arrived(
        &self,
        device_id: i64,
        request_id: u64,
        shot: ScreenshotJpeg,
    ) -> bool {
        let tx = self
            .lock()
            .agents
            .get_mut(&device_id)
            .and_then(|a| a.screenshots.remove(&request_id));
        tx.is_some_and(|tx| tx.send(shot).is_ok())
    }
}

/// After a picture: a console fell behind lowers the bitrate and asks for a
/// keyframe; one waiting for a keyframe asks for it; a long run without
/// drops raises the bitrate again. Each at most once per [`ASK_GAP_MS`].
fn adapt(a: &mut Agent, now: i64, behind: bool, waiting: bool) {
    let v = &mut a.video;
    let may_ask = now - v.last_ask >= ASK_GAP_MS;
    if behind {
        v.clean = 0;
        if may_ask {
            v.bitrate = (v.bitrate() / 3 * 2).max(MIN_BITRATE);
            ask(a, now);
        }
        return;
    }
    if waiting {
        if may_ask {
            ask(a, now);
        }
        return;
    }
    v.clean += 1;
    if v.clean >= LIVE_VIDEO.1 * 10 && v.bitrate() < LIVE_VIDEO.0 {
        v.clean = 0;
        v.bitrate = (v.bitrate() / 4 * 5).min(LIVE_VIDEO.0);
        ask(a, now);
    }
}
