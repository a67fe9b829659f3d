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
        (false, Some(_)) if a.tx.try_send(ServerMsg::StopVideo).is_ok() => a.video.asked = None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_policy::access::{Access, Rights};

    /// A connected device with live video, in group 1, under `remote_view`.
    fn agent(hub: &Hub, id: i64, remote_view: RemoteView) -> mpsc::Receiver<ServerMsg> {
        let (tx, mut rx) = mpsc::channel(64);
        let caps = vec![Capability::Thumbnails, Capability::LiveVideo];
        hub.register_agent(
            1,
            id,
            tx,
            DeviceInfo::default(),
            caps,
            DeviceState::default(),
        );
        let p = Policy {
            remote_view,
            ..Policy::default()
        };
        hub.set_policy(id, Some(p), vec![1]);
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::Policy { .. })));
        rx
    }

    /// A console of `session` seeing group 1 (devices 1 and 2), with a video
    /// channel `depth` pictures deep.
    fn console(hub: &Hub, session: u64, depth: usize) -> (u64, mpsc::Receiver<Bytes>) {
        let (tx, _rx) = mpsc::channel(64);
        std::mem::forget(_rx); // thumbnails and questions are not looked at here
        let rights = Rights {
            group_access: [(1, Access::View)].into(),
            ..Rights::default()
        };
        let s = crate::scope::test_scope(session, rights);
        s.device_groups(1, &[1]);
        s.device_groups(2, &[1]);
        let id = hub.register_console(tx, s);
        let (vtx, vrx) = mpsc::channel(depth);
        hub.attach_console_video(id, vtx);
        (id, vrx)
    }

    /// The video messages (start/stop) the device got, in order.
    fn video_msgs(rx: &mut mpsc::Receiver<ServerMsg>) -> Vec<Option<u32>> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            match m {
                ServerMsg::StartVideo { bitrate, .. } => out.push(Some(bitrate)),
                ServerMsg::StopVideo => out.push(None),
                _ => {}
            }
        }
        out
    }

    fn picture(key: bool, len: usize) -> Vec<u8> {
        let h = lectern_proto::VideoHeader {
            keyframe: key,
            seq: 0,
            ms: 0,
        };
        let mut body = vec![0, 0, 0, 1, 0x65];
        body.resize(len, 7);
        MediaFrame {
            kind: MediaKind::Video,
            width: 1920,
            height: 1080,
            payload: &h.payload(&body),
        }
        .encode()
    }

    #[test]
    fn video_flows_only_to_live_h264_viewers_and_stops_when_they_go() {
        let hub = Hub::new(320, 1000);
        let mut rx = agent(&hub, 1, RemoteView::Allow);
        let (c, mut v) = console(&hub, 1, 2);
        // Watching as a thumbnail, or live without H.264: no video.
        hub.watch_codecs(c, HashSet::from([1]), None, true);
        hub.watch_codecs(c, HashSet::from([1]), Some(1), false);
        assert!(video_msgs(&mut rx).is_empty());
        assert_eq!(
            hub.video_frame(1, &picture(true, 100), true),
            VideoVerdict::NotAsked
        );
        // Live with H.264: the device is asked for video at the start rate.
        hub.watch_codecs(c, HashSet::from([1]), Some(1), true);
        assert_eq!(video_msgs(&mut rx), vec![Some(LIVE_VIDEO.0)]);
        // Deltas before the first keyframe are useless to it.
        assert_eq!(
            hub.video_frame(1, &picture(false, 100), false),
            VideoVerdict::Relayed(0)
        );
        assert_eq!(
            hub.video_frame(1, &picture(true, 100), true),
            VideoVerdict::Relayed(1)
        );
        let got = v.try_recv().unwrap();
        assert_eq!(got[0], lectern_proto::console::VIDEO_KIND);
        assert_eq!(i64::from_be_bytes(got[1..9].try_into().unwrap()), 1);
        assert_eq!(&got[9..], &picture(true, 100)[1..]);
        // The view closes: video stops, thumbnails go on.
        hub.watch_codecs(c, HashSet::from([1]), None, true);
        assert_eq!(video_msgs(&mut rx), vec![None]);
        assert_eq!(
            hub.video_frame(1, &picture(true, 100), true),
            VideoVerdict::NotAsked
        );
    }

    #[test]
    fn a_slow_console_loses_pictures_instead_of_queueing_them() {
        let hub = Hub::new(320, 1000);
        let mut rx = agent(&hub, 1, RemoteView::Allow);
        let (slow, mut sv) = console(&hub, 1, 2);
        let (fast, mut fv) = console(&hub, 2, 64);
        hub.watch_codecs(slow, HashSet::from([1]), Some(1), true);
        hub.watch_codecs(fast, HashSet::from([1]), Some(1), true);
        video_msgs(&mut rx);
        let mut t = now_ms() + 10_000;
        let send = |key: bool, t: &mut i64| {
            *t += 50;
            hub.video_frame_at(1, &picture(key, 100), key, *t)
        };
        assert_eq!(send(true, &mut t), VideoVerdict::Relayed(2));
        assert_eq!(send(false, &mut t), VideoVerdict::Relayed(2));
        // The slow console's channel is full (2): the next is dropped for it only.
        assert_eq!(send(false, &mut t), VideoVerdict::Relayed(1));
        assert_eq!(sv.len(), 2, "nothing queued beyond its channel");
        // The drop asked the device for a keyframe at a lower bitrate.
        let asked = video_msgs(&mut rx);
        assert_eq!(asked, vec![Some(LIVE_VIDEO.0 / 3 * 2)]);
        // The slow console catches up; deltas still skip it until a keyframe.
        sv.try_recv().unwrap();
        sv.try_recv().unwrap();
        assert_eq!(send(false, &mut t), VideoVerdict::Relayed(1));
        assert!(sv.try_recv().is_err());
        assert_eq!(send(true, &mut t), VideoVerdict::Relayed(2));
        assert!(sv.try_recv().is_ok());
        assert_eq!(fv.len(), 5, "the fast console got every picture");
        // Ten seconds without drops raise the bitrate again.
        for _ in 0..LIVE_VIDEO.1 * 10 {
            sv.try_recv().ok();
            fv.try_recv().ok();
            send(false, &mut t);
        }
        let raised = video_msgs(&mut rx);
        assert_eq!(raised.last(), Some(&Some(LIVE_VIDEO.0 / 3 * 2 / 4 * 5)));
    }

    #[test]
    fn pictures_beyond_the_device_rate_are_dropped() {
        let hub = Hub::new(320, 1000);
        let _rx = agent(&hub, 1, RemoteView::Allow);
        let (c, mut v) = console(&hub, 1, 1000);
        hub.watch_codecs(c, HashSet::from([1]), Some(1), true);
        let t = 50_000;
        let max = LIVE_VIDEO.1 * 2 + 2;
        for i in 0..max {
            let verdict = hub.video_frame_at(1, &picture(i == 0, 100), i == 0, t);
            assert_eq!(verdict, VideoVerdict::Relayed(1));
        }
        assert_eq!(
            hub.video_frame_at(1, &picture(false, 100), false, t),
            VideoVerdict::RateLimited
        );
        // Bytes too: a burst far above the bitrate is dropped.
        let big = picture(true, 900 * 1024);
        let t = t + 1000;
        assert_eq!(
            hub.video_frame_at(1, &big, true, t),
            VideoVerdict::Relayed(1)
        );
        assert_eq!(
            hub.video_frame_at(1, &big, true, t),
            VideoVerdict::RateLimited
        );
        assert_eq!(v.len() as u32, max + 1);
        v.close();
    }

    #[test]
    fn video_follows_scope_and_privacy() {
        let hub = Hub::new(320, 1000);
        // Device 3 is not in the teacher's groups.
        let mut rx3 = agent(&hub, 3, RemoteView::Allow);
        let (c, mut v) = console(&hub, 1, 8);
        hub.watch_codecs(c, HashSet::from([3]), Some(3), true);
        assert!(video_msgs(&mut rx3).is_empty());
        assert_eq!(
            hub.video_frame(3, &picture(true, 10), true),
            VideoVerdict::NotAsked
        );
        // Under deny, a teacher without the bypass right gets no video.
        let mut rx1 = agent(&hub, 1, RemoteView::Deny);
        hub.watch_codecs(c, HashSet::from([1]), Some(1), true);
        assert!(video_msgs(&mut rx1).is_empty());
        assert_eq!(
            hub.video_frame(1, &picture(true, 10), true),
            VideoVerdict::NotAsked
        );
        assert!(v.try_recv().is_err());
        // A device without the capability streams JPEG live frames instead.
        let (tx, mut rx2) = mpsc::channel(16);
        hub.register_agent(
            1,
            2,
            tx,
            DeviceInfo::default(),
            vec![Capability::Thumbnails],
            DeviceState::default(),
        );
        hub.set_policy(2, Some(Policy::default()), vec![1]);
        hub.watch_codecs(c, HashSet::from([2]), Some(2), true);
        let msgs: Vec<ServerMsg> = std::iter::from_fn(|| rx2.try_recv().ok()).collect();
        assert!(msgs.iter().any(
            |m| matches!(m, ServerMsg::StartThumbnails { width, .. } if *width == LIVE_STREAM.0)
        ));
        assert!(!msgs
            .iter()
            .any(|m| matches!(m, ServerMsg::StartVideo { .. })));
    }

    #[test]
    fn screenshots_answer_only_their_request_one_at_a_time() {
        let hub = Hub::new(320, 1000);
        let mut rx = agent(&hub, 1, RemoteView::Allow);
        let (id, mut answer) = hub.request_screenshot(1).unwrap();
        assert!(
            matches!(rx.try_recv(), Ok(ServerMsg::Screenshot { request_id, .. }) if request_id == id)
        );
        assert!(
            hub.request_screenshot(1).is_none(),
            "one pending per device"
        );
        assert!(
            !hub.screenshot_arrived(1, id + 1, (1, 1, vec![1])),
            "not asked"
        );
        assert!(
            !hub.screenshot_arrived(2, id, (1, 1, vec![1])),
            "another device"
        );
        assert!(answer.try_recv().is_err());
        assert!(hub.screenshot_arrived(1, id, (2, 2, vec![0xFF])));
        assert_eq!(answer.try_recv().unwrap(), (2, 2, vec![0xFF]));
        assert!(
            !hub.screenshot_arrived(1, id, (2, 2, vec![0xFF])),
            "only once"
        );
        assert!(hub.request_screenshot(1).is_some(), "the next may go");
        assert!(hub.request_screenshot(9).is_none(), "offline");
    }
}
