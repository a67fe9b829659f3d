//! The live picture: which agents are connected, their state, which consoles
//! watch which devices. Sessions talk to each other only through the hub.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lectern_proto::{
    Capability, DeviceInfo, DeviceState, MediaFrame, MediaKind, Policy, RemoteView, ServerMsg,
};
use lectern_store::{now_ms, SchoolId};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::broadcast::{FrameBudget, Receiving, TargetFacts};
use crate::privacy::{self, AskStart, Verdict, ViewDecision};

#[path = "hub_video.rs"]
mod video;
use crate::scope::{Change, ConsoleScope, ScopedEvents, Viewer};
pub use video::{ScreenshotJpeg, VideoVerdict, LIVE_VIDEO};

/// A device as the console and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// Device id.
    pub id: i64,
    /// Host name.
    pub hostname: String,
    /// In a session now.
    pub online: bool,
    /// Operating system.
    pub os: String,
    /// Agent version.
    pub agent_version: String,
    /// Revoked by an admin.
    pub revoked: bool,
    /// Last connection, ms since epoch.
    pub last_seen: Option<i64>,
    /// What the agent can do.
    pub capabilities: Vec<Capability>,
    /// Current (or last known) state.
    pub state: DeviceState,
    /// The device's user changed and its groups are not resolved yet: only
    /// administrators may see this view (the hub republishes it once they are).
    #[serde(skip)]
    pub groups_pending: bool,
}

/// Something consoles should hear about.
#[derive(Debug, Clone)]
pub enum ConsoleEvent {
    /// A device connected, disconnected or changed state.
    Device(Box<DeviceView>),
    /// A device reported a command's outcome.
    Result {
        /// Command.
        command_id: i64,
        /// Device.
        device_id: i64,
        /// `done`, `failed`, …
        status: &'static str,
        /// Why it failed.
        reason: Option<String>,
    },
    /// A keyword violation (shown to consoles allowed to read activity).
    Violation(Box<lectern_store::Violation>),
    /// A raised hand was raised, answered, dismissed or withdrawn.
    Hand(Box<crate::requests::HandEvent>),
    /// A chat message to or from a device.
    Chat(Box<crate::requests::ChatEvent>),
    /// A violation's case changed (status, assignee, a note).
    Case(Box<crate::review::CaseUpdate>),
}

/// What the hub tells one console stream, besides the events all consoles
/// may get.
#[derive(Debug)]
pub enum ToConsole {
    /// A thumbnail frame: `[1][device id i64 BE][JPEG]`.
    Frame(Bytes),
    /// This watched device's student must be asked before its pictures flow
    /// (the console's user has no answer for this session yet).
    Ask(i64),
    /// This watched device's pictures reach the console only through its
    /// user's bypass right, for the first time this session (to audit).
    Bypassed(i64),
}

/// The hub's channel to a console stream.
pub type ConsoleTx = mpsc::Sender<ToConsole>;

struct Agent {
    /// The device's school: what it is served by.
    school: SchoolId,
    conn: u64,
    tx: mpsc::Sender<ServerMsg>,
    media: Option<mpsc::Sender<Bytes>>,
    info: DeviceInfo,
    capabilities: Vec<Capability>,
    state: DeviceState,
    pending: HashSet<i64>,
    policy: Option<Policy>,
    groups: Vec<i64>,
    views: HashMap<u64, oneshot::Sender<Option<bool>>>,
    /// Whether `groups` are resolved for the current user (false from
    /// connection, and again whenever the user changes, until `set_policy`).
    scoped: bool,
    /// The size and interval the device was last asked to stream at.
    streaming: Option<(u32, u32)>,
    /// When its last thumbnail was passed on (ms).
    last_frame: Option<i64>,
    /// Its live-view video stream ([`video`]).
    video: video::VideoState,
    /// Screenshots asked of it and not yet answered, by request id.
    screenshots: HashMap<u64, oneshot::Sender<ScreenshotJpeg>>,
}

impl Agent {
    fn privacy(&self) -> Option<(bool, RemoteView)> {
        self.policy
            .as_ref()
            .map(|p| (p.thumbnails_allowed, p.remote_view))
    }
}

struct Console {
    tx: ConsoleTx,
    watched: HashSet<i64>,
    scope: Arc<ConsoleScope>,
    /// The watched device shown in this console's live view.
    live: Option<i64>,
    /// When a frame of each watched device last went to this console (ms),
    /// so that a device streaming large for another console's live view
    /// reaches this one no faster than thumbnails.
    sent_at: HashMap<i64, i64>,
    /// Where its live-view video goes: a channel of its own, two pictures
    /// deep, so a slow console loses pictures instead of queueing them.
    video_tx: Option<mpsc::Sender<Bytes>>,
    /// It decodes H.264 (said in its watch message).
    h264: bool,
    /// It lost a picture (or just started): deltas are useless to it until
    /// the next keyframe.
    wait_key: bool,
}

impl Console {
    fn is_live(&self, device: i64) -> bool {
        self.live == Some(device)
    }

    /// Forgets the live device once it is no longer watched.
    fn drop_unwatched_live(&mut self) {
        if self.live.is_some_and(|d| !self.watched.contains(&d)) {
            self.live = None;
        }
        let watched = &self.watched;
        self.sent_at.retain(|d, _| watched.contains(d));
    }
}

/// A student's answer for one console session (see [`crate::privacy`]).
struct Grant {
    /// The student who answered (another login voids it).
    student: Option<String>,
    /// The `remote_view` it was asked under (a change voids it).
    mode: RemoteView,
    /// End of the console session or lesson, ms since epoch.
    until: i64,
    state: GrantState,
}

enum GrantState {
    /// Asked at this time; these wait for the answer.
    Asking(i64, Vec<oneshot::Sender<ViewDecision>>),
    Decided(ViewDecision),
}

/// An ask unanswered this long (ms) past the student's time was abandoned; ask again.
const ASK_GRACE_MS: i64 = 5000;
/// Remembered answers and bypass notes above this are pruned of stale ones.
const MAX_GRANTS: usize = 100_000;

impl Grant {
    fn valid(&self, a: &Agent, now: i64) -> bool {
        self.student == a.state.user
            && a.policy
                .as_ref()
                .is_some_and(|p| p.remote_view == self.mode)
            && self.until > now
    }
}

#[derive(Default)]
struct Inner {
    /// Thumbnail width and interval asked of devices: the server's
    /// configuration, unless their school's settings say otherwise
    /// ([`Hub::set_thumbnails`]).
    thumb: (u32, u32),
    /// Each school's thumbnail width and interval, where set.
    school_thumb: HashMap<SchoolId, (u32, u32)>,
    /// An ask unanswered this long (ms) was abandoned (see [`Hub::with_ask_secs`]).
    ask_abandoned_ms: i64,
    agents: HashMap<i64, Agent>,
    consoles: HashMap<u64, Console>,
    watchers: HashMap<i64, HashSet<u64>>,
    broadcasts: HashMap<u64, Broadcast>,
    /// Answers to live-view questions by (device, console session).
    grants: HashMap<(i64, u64), Grant>,
    /// (device, console session) whose bypass of privacy was audited.
    bypass_noted: HashSet<(i64, u64)>,
    next_id: u64,
}

/// Where a broadcast's frames come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum BroadcastSource {
    /// A student's screen.
    Device(i64),
    /// Frames a console uploads (the teacher's screen), by its owner.
    Console(String),
}

/// A running broadcast.
#[derive(Debug, Clone, Serialize)]
pub struct Broadcast {
    /// Id.
    pub id: u64,
    /// Title shown on the targets.
    pub title: String,
    /// Frame source.
    pub source: BroadcastSource,
    /// Devices showing it.
    pub targets: HashSet<i64>,
    /// Who started it.
    pub started_by: String,
    /// The starter's console session and bypass right: a device source streams
    /// only while its privacy setting lets the starter see it.
    #[serde(skip)]
    pub starter: Starter,
    /// When each target was last asked to show it (ms), for its receiving state.
    #[serde(skip)]
    pub asked: HashMap<i64, i64>,
    /// Frames it may still pass on ([`crate::broadcast::MAX_FPS`]).
    #[serde(skip)]
    budget: FrameBudget,
}

/// Who started a broadcast, as its source's privacy rule needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Starter {
    /// Console session key ([`Hub::session_key`]).
    pub session: u64,
    /// May bypass client privacy.
    pub bypass: bool,
}

/// Size and rate asked of a device whose screen is broadcast.
const BROADCAST_STREAM: (u32, u32) = (1280, 250);

/// Size and rate asked of a device shown in a live view, unless configured
/// ([`Hub::with_live`]).
pub const LIVE_STREAM: (u32, u32) = (1280, 100);

/// Shared registry of live sessions.
pub struct Hub {
    inner: Mutex<Inner>,
    events: broadcast::Sender<ConsoleEvent>,
    live: (u32, u32),
    sessions: RandomState,
    /// Seconds a student has to answer a live-view question.
    ask_secs: u32,
}

impl Inner {
    fn thumb_of(&self, school: SchoolId) -> (u32, u32) {
        self.school_thumb
            .get(&school)
            .copied()
            .unwrap_or(self.thumb)
    }
}

impl Hub {
    /// A hub asking agents for thumbnails `width` px wide every `interval_ms`
    /// (and for [`LIVE_STREAM`] in a live view).
    pub fn new(width: u32, interval_ms: u32) -> Self {
        Hub {
            inner: Mutex::new(Inner {
                thumb: (width, interval_ms),
                ..Inner::default()
            }),
            events: broadcast::channel(4096).0,
            live: LIVE_STREAM,
            sessions: RandomState::new(),
            ask_secs: 0,
        }
        .with_ask_secs(privacy::ASK_SECS)
    }

    /// Gives students `secs` to answer a live-view question (server.toml's
    /// `remote_view_ask_secs`); the device is told with each question.
    pub fn with_ask_secs(mut self, secs: u32) -> Self {
        self.ask_secs = secs;
        self.lock().ask_abandoned_ms = i64::from(secs) * 1000 + ASK_GRACE_MS;
        self
    }

    /// Seconds a student has to answer a live-view question.
    pub fn ask_secs(&self) -> u32 {
        self.ask_secs
    }

    /// The size and rate asked of a device while a console shows it in its
    /// live view.
    pub fn with_live(mut self, width: u32, interval_ms: u32) -> Self {
        self.live = (width, interval_ms);
        self
    }

    /// Thumbnail width and interval asked of `school`'s devices now.
    pub fn thumbnails(&self, school: SchoolId) -> (u32, u32) {
        self.lock().thumb_of(school)
    }

    /// Asks `school`'s devices for thumbnails `width` px wide every
    /// `interval_ms` from now on: each of them sending thumbnails is told at
    /// once. Other schools' devices keep their own.
    pub fn set_thumbnails(&self, school: SchoolId, width: u32, interval_ms: u32) {
        let mut inner = self.lock();
        if inner.school_thumb.get(&school) == Some(&(width, interval_ms)) {
            return;
        }
        inner.school_thumb.insert(school, (width, interval_ms));
        let devices: Vec<i64> = inner
            .agents
            .iter()
            .filter(|(_, a)| a.school == school)
            .map(|(d, _)| *d)
            .collect();
        for d in devices {
            self.refresh_stream(&mut inner, d);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A console session's key: a hash of its token under this hub's random
    /// key, so remembered answers never hold the token itself.
    pub fn session_key(&self, token: &str) -> u64 {
        self.sessions.hash_one(token)
    }

    /// Subscribes a console to the events its scope allows.
    pub fn subscribe(&self, scope: Arc<ConsoleScope>) -> ScopedEvents {
        ScopedEvents::new(self.events.subscribe(), scope)
    }

    /// Publishes a console event (dropped when no console listens).
    pub fn publish(&self, e: ConsoleEvent) {
        let _ = self.events.send(e);
    }

    /// Registers a connected agent and returns its connection id. A second
    /// session for the same device replaces the first, whose channel closes.
    pub fn register_agent(
        &self,
        school: SchoolId,
        device_id: i64,
        tx: mpsc::Sender<ServerMsg>,
        info: DeviceInfo,
        capabilities: Vec<Capability>,
        state: DeviceState,
    ) -> (u64, Vec<i64>) {
        let mut inner = self.lock();
        inner.next_id += 1;
        let conn = inner.next_id;
        // Watchers' thumbnails start once its policy is known (`set_policy`).
        let old = inner.agents.insert(
            device_id,
            Agent {
                school,
                conn,
                tx,
                info,
                capabilities,
                state,
                pending: HashSet::new(),
                media: None,
                policy: None,
                groups: Vec::new(),
                views: HashMap::new(),
                scoped: false,
                streaming: None,
                last_frame: None,
                video: video::VideoState::default(),
                screenshots: HashMap::new(),
            },
        );
        // A device that reconnects mid-broadcast picks it up again (as a
        // source, once its policy is known).
        let now = now_ms();
        let Inner {
            agents, broadcasts, ..
        } = &mut *inner;
        for b in broadcasts.values_mut() {
            if let Some(a) = agents.get(&device_id) {
                if b.targets.contains(&device_id) {
                    let _ = a.tx.try_send(ServerMsg::BroadcastStart {
                        title: b.title.clone(),
                    });
                    b.asked.insert(device_id, now);
                }
            }
        }
        (
            conn,
            old.map(|a| a.pending.into_iter().collect())
                .unwrap_or_default(),
        )
    }

    /// Removes an agent's session if `conn` is still the current one; returns
    /// the commands it never acknowledged, and its view for an offline event.
    pub fn unregister_agent(&self, device_id: i64, conn: u64) -> Option<(Vec<i64>, DeviceView)> {
        let mut inner = self.lock();
        if inner.agents.get(&device_id).is_none_or(|a| a.conn != conn) {
            return None;
        }
        let a = inner.agents.remove(&device_id)?;
        let mut view = view_of(device_id, &a);
        view.online = false;
        if view.groups_pending {
            // Who sees it is not known for its new user: say only that it left.
            view.state = DeviceState::default();
            view.groups_pending = false;
        }
        Some((a.pending.into_iter().collect(), view))
    }

    /// Queues a command for a device; false if it is offline or its queue is full.
    pub fn send_command(&self, device_id: i64, command_id: i64, msg: ServerMsg) -> bool {
        let mut inner = self.lock();
        let Some(a) = inner.agents.get_mut(&device_id) else {
            return false;
        };
        if a.tx.try_send(msg).is_ok() {
            a.pending.insert(command_id);
            true
        } else {
            false
        }
    }

    /// Ids of connected devices (cheaper than [`Hub::online`]'s full views).
    pub fn online_ids(&self) -> HashSet<i64> {
        self.lock().agents.keys().copied().collect()
    }

    /// Connected devices that announced `cap`.
    pub fn with_capability(&self, cap: Capability) -> Vec<i64> {
        self.lock()
            .agents
            .iter()
            .filter(|(_, a)| a.capabilities.contains(&cap))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether a connected device announced `cap`.
    pub fn has_capability(&self, device_id: i64, cap: Capability) -> bool {
        self.lock()
            .agents
            .get(&device_id)
            .is_some_and(|a| a.capabilities.contains(&cap))
    }

    /// Queues a message for a connected device; false when it is offline or behind.
    pub fn send(&self, device_id: i64, msg: ServerMsg) -> bool {
        self.lock()
            .agents
            .get(&device_id)
            .is_some_and(|a| a.tx.try_send(msg).is_ok())
    }

    /// Sends a message to a device and ends its session (used on revocation).
    /// Returns the commands it never acknowledged: its session's own end finds
    /// it gone, so the caller fails them.
    pub fn kick(&self, device_id: i64, msg: ServerMsg) -> Vec<i64> {
        let Some(a) = self.lock().agents.remove(&device_id) else {
            return Vec::new();
        };
        let _ = a.tx.try_send(msg);
        a.pending.into_iter().collect()
    }

    /// Records an acknowledgement; true if the command was pending for this device.
    pub fn ack(
        &self,
        device_id: i64,
        command_id: i64,
        state: DeviceState,
    ) -> Option<(bool, DeviceView)> {
        let mut inner = self.lock();
        let a = inner.agents.get_mut(&device_id)?;
        let was_pending = a.pending.remove(&command_id);
        let view = record_state(a, device_id, state);
        self.refresh_stream(&mut inner, device_id);
        Some((was_pending, view))
    }

    /// Records a state change and returns the device's view.
    pub fn set_state(&self, device_id: i64, state: DeviceState) -> Option<DeviceView> {
        let mut inner = self.lock();
        let a = inner.agents.get_mut(&device_id)?;
        let view = record_state(a, device_id, state);
        self.refresh_stream(&mut inner, device_id);
        Some(view)
    }

    /// Sets the user in a device's state (a student signed in on it, or
    /// out) and returns the device's view.
    /// A connected device's state as last reported (and attributed).
    pub fn state_of(&self, device_id: i64) -> Option<DeviceState> {
        self.lock().agents.get(&device_id).map(|a| a.state.clone())
    }

    pub fn set_user(&self, device_id: i64, user: Option<String>) -> Option<DeviceView> {
        let mut inner = self.lock();
        let a = inner.agents.get_mut(&device_id)?;
        let state = DeviceState {
            user,
            ..a.state.clone()
        };
        let view = record_state(a, device_id, state);
        self.refresh_stream(&mut inner, device_id);
        Some(view)
    }

    /// Live views of every connected device.
    pub fn online(&self) -> HashMap<i64, DeviceView> {
        self.lock()
            .agents
            .iter()
            .map(|(id, a)| (*id, view_of(*id, a)))
            .collect()
    }

    /// Whether a device is connected.
    pub fn is_online(&self, device_id: i64) -> bool {
        self.lock().agents.contains_key(&device_id)
    }

    /// Number of connected agents.
    pub fn agent_count(&self) -> usize {
        self.lock().agents.len()
    }

    /// Number of console streams.
    pub fn console_count(&self) -> usize {
        self.lock().consoles.len()
    }

    /// Registers a console stream with what its user may see; returns its id.
    pub fn register_console(&self, tx: ConsoleTx, scope: Arc<ConsoleScope>) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.consoles.insert(
            id,
            Console {
                tx,
                watched: HashSet::new(),
                scope,
                live: None,
                sent_at: HashMap::new(),
                video_tx: None,
                h264: false,
                wait_key: true,
            },
        );
        id
    }

    /// Every console's scope (to refresh after policies change).
    pub fn scopes(&self) -> Vec<Arc<ConsoleScope>> {
        self.lock()
            .consoles
            .values()
            .map(|c| c.scope.clone())
            .collect()
    }

    /// Sets the devices a console watches, with no live view.
    pub fn set_watch(&self, console: u64, devices: HashSet<i64>) {
        self.watch(console, devices, None);
    }

    /// Sets the devices a console watches (those its scope does not see are
    /// dropped) and the one it shows in its live view (`live`, kept only if
    /// it is among the watched ones that remain). A device streams while
    /// some watcher may see its pictures, so no frames flow when nobody may
    /// watch, and at live size while one of them shows it live; questions to
    /// students and bypasses to audit go to the console as [`ToConsole`]
    /// messages.
    pub fn watch(&self, console: u64, devices: HashSet<i64>, live: Option<i64>) {
        self.watch_codecs(console, devices, live, false);
    }

    /// [`Hub::watch`] from a console that says whether it decodes H.264: its
    /// live view then comes as video from agents that can send it (see
    /// [`Hub::video_frame`]), else as JPEG frames.
    pub fn watch_codecs(&self, console: u64, devices: HashSet<i64>, live: Option<i64>, h264: bool) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(c) = inner.consoles.get_mut(&console) else {
            return;
        };
        let devices: HashSet<i64> = devices.into_iter().filter(|d| c.scope.sees(*d)).collect();
        let old = std::mem::replace(&mut c.watched, devices.clone());
        let old_live = std::mem::replace(&mut c.live, live);
        let old_h264 = std::mem::replace(&mut c.h264, h264);
        c.drop_unwatched_live();
        let new_live = c.live;
        if new_live != old_live || h264 != old_h264 {
            // A new live view starts at a keyframe.
            c.wait_key = true;
            if let Some(a) = new_live.and_then(|d| inner.agents.get_mut(&d)) {
                a.video.key_wanted = true;
            }
        }
        for d in old.difference(&devices) {
            remove_watcher(inner, *d, console);
        }
        for d in devices.difference(&old) {
            inner.watchers.entry(*d).or_default().insert(console);
        }
        let live_changed = (old_live != new_live || h264 != old_h264)
            .then_some([old_live, new_live])
            .into_iter()
            .flatten()
            .flatten();
        let changed: HashSet<i64> = old
            .symmetric_difference(&devices)
            .copied()
            .chain(live_changed)
            .collect();
        for d in changed {
            self.refresh_stream(inner, d);
        }
    }

    /// (live views open on a device some console may see live, devices asked
    /// to stream at live size) for the metrics.
    pub fn live_counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let views = inner
            .consoles
            .values()
            .filter(|c| {
                c.live.is_some_and(|d| {
                    inner
                        .agents
                        .get(&d)
                        .is_some_and(|a| gets_pictures(&inner, c, d, a))
                })
            })
            .count();
        let streams = inner
            .agents
            .values()
            .filter(|a| a.streaming == Some(self.live))
            .count();
        (views, streams)
    }

    /// Removes a console stream and its watches.
    pub fn unregister_console(&self, console: u64) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(c) = inner.consoles.remove(&console) {
            for d in c.watched {
                remove_watcher(inner, d, console);
                self.refresh_stream(inner, d);
            }
        }
    }

    /// Drops the watches consoles may no longer have (after their scopes were
    /// refreshed) and re-decides every watched device's stream.
    pub fn rescope(&self) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut lost = Vec::new();
        for (id, c) in inner.consoles.iter_mut() {
            c.watched.retain(|d| {
                let keep = c.scope.sees(*d);
                if !keep {
                    lost.push((*d, *id));
                }
                keep
            });
            c.drop_unwatched_live();
        }
        for (d, c) in lost {
            remove_watcher(inner, d, c);
        }
        let watched: Vec<i64> = inner.watchers.keys().copied().collect();
        for d in watched {
            self.refresh_stream(inner, d);
        }
    }

    /// Passes a thumbnail to every console watching `device_id` that may see
    /// it; a console that is behind skips frames rather than slowing the
    /// agent. A console that does not show the device live gets frames no
    /// faster than the thumbnail interval (the device may be streaming fast
    /// for another console's live view). A device's frames are passed on
    /// only while it was asked to stream, and no faster than twice the rate
    /// it was asked for (a device cannot flood consoles). Returns how many
    /// got it.
    pub fn thumbnail(&self, device_id: i64, jpeg: &[u8]) -> usize {
        self.thumbnail_at(device_id, jpeg, now_ms())
    }

    fn thumbnail_at(&self, device_id: i64, jpeg: &[u8], now: i64) -> usize {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let (Some(w), Some(a)) = (inner.watchers.get(&device_id), inner.agents.get(&device_id))
        else {
            return 0;
        };
        let Some((_, interval)) = a.streaming else {
            return 0;
        };
        if a.last_frame
            .is_some_and(|t| now - t < i64::from(interval) / 2)
        {
            return 0;
        }
        let mut frame = Vec::with_capacity(9 + jpeg.len());
        frame.push(1u8);
        frame.extend_from_slice(&device_id.to_be_bytes());
        frame.extend_from_slice(jpeg);
        let frame = Bytes::from(frame);
        // A little under the interval, so a device's own jitter skips none.
        let spacing = i64::from(inner.thumb_of(a.school).1) * 9 / 10;
        let due: Vec<u64> = w
            .iter()
            .filter(|id| {
                inner.consoles.get(id).is_some_and(|c| {
                    gets_pictures(inner, c, device_id, a)
                        && ((c.is_live(device_id) && !c.uses_video(device_id, a))
                            || c.sent_at.get(&device_id).is_none_or(|t| now - t >= spacing))
                })
            })
            .copied()
            .collect();
        let mut sent = 0;
        for id in due {
            let Some(c) = inner.consoles.get_mut(&id) else {
                continue;
            };
            if c.tx.try_send(ToConsole::Frame(frame.clone())).is_ok() {
                c.sent_at.insert(device_id, now);
                sent += 1;
            }
        }
        if let Some(a) = inner.agents.get_mut(&device_id) {
            a.last_frame = Some(now);
        }
        sent
    }

    /// Re-decides a device's pictures after anything that bears on them
    /// changed: tells watchers what their streams must do, then asks the
    /// device to stream or stop accordingly.
    fn refresh_stream(&self, inner: &mut Inner, device: i64) {
        notify_watchers(inner, device);
        video::refresh(inner, device);
        let want = self.wanted_stream(inner, device);
        let Some(a) = inner
            .agents
            .get_mut(&device)
            .filter(|a| a.streaming != want)
        else {
            return;
        };
        // Under deny, whoever may see it does so through the bypass right.
        let privacy_bypass = a.privacy().is_some_and(|(_, m)| m == RemoteView::Deny);
        let msg = match want {
            Some((width, interval_ms)) => ServerMsg::StartThumbnails {
                width,
                interval_ms,
                privacy_bypass,
            },
            None => ServerMsg::StopThumbnails,
        };
        // A full queue: the next change tries again (frames stay filtered).
        if a.tx.try_send(msg).is_ok() {
            a.streaming = want;
        }
    }

    /// What the device should stream: at live size while a watcher that may
    /// see its pictures shows it in its live view, at broadcast size while it
    /// is the source of a broadcast its starter may see (the larger and
    /// faster of the two when both), at thumbnail size while a watcher may
    /// see its pictures, else nothing.
    fn wanted_stream(&self, inner: &Inner, device: i64) -> Option<(u32, u32)> {
        let a = inner.agents.get(&device)?;
        let viewers: Vec<&Console> = inner
            .watchers
            .get(&device)
            .into_iter()
            .flatten()
            .filter_map(|c| inner.consoles.get(c))
            .filter(|c| gets_pictures(inner, c, device, a))
            .collect();
        let live = viewers
            .iter()
            .any(|c| c.is_live(device) && !c.uses_video(device, a))
            .then_some(self.live);
        let broadcast = source_allowed(inner, device, a).then_some(BROADCAST_STREAM);
        let thumb = (!viewers.is_empty()).then_some(inner.thumb_of(a.school));
        [live, broadcast]
            .into_iter()
            .flatten()
            .reduce(|(w1, i1), (w2, i2)| (w1.max(w2), i1.min(i2)))
            .or(thumb)
    }
}

/// Tells each console watching `device` whose user must first ask the student
/// (newly watched, a new student, a new `remote_view`) or sees it through the
/// bypass right for the first time this session (to audit).
fn notify_watchers(inner: &mut Inner, device: i64) {
    let Some(a) = inner.agents.get(&device) else {
        return;
    };
    let now = now_ms();
    let mut bypassed = Vec::new();
    for c in inner
        .watchers
        .get(&device)
        .into_iter()
        .flatten()
        .filter_map(|c| inner.consoles.get(c))
        .filter(|c| c.scope.sees(device))
    {
        let (session, bypass) = (c.scope.viewer.session, c.scope.bypass());
        let v = verdict_for(inner, device, a, session, bypass);
        let first_bypass = v == Verdict::Decided(ViewDecision::BYPASS)
            && !inner.bypass_noted.contains(&(device, session));
        match v {
            Verdict::Ask if !asking(inner, device, session, now) => {
                let _ = c.tx.try_send(ToConsole::Ask(device));
            }
            _ if first_bypass && c.tx.try_send(ToConsole::Bypassed(device)).is_ok() => {
                bypassed.push((device, session));
            }
            _ => {}
        }
    }
    if inner.bypass_noted.len() + bypassed.len() > MAX_GRANTS {
        inner.bypass_noted.clear();
    }
    inner.bypass_noted.extend(bypassed);
}

impl Hub {
    /// (device id, hostname, user) of the school's connected devices, all
    /// or just `only`.
    pub fn subjects(
        &self,
        school: SchoolId,
        only: Option<i64>,
    ) -> Vec<(i64, String, Option<String>)> {
        let inner = self.lock();
        let row = |(id, a): (&i64, &Agent)| (*id, a.info.hostname.clone(), a.state.user.clone());
        let ours = |(_, a): &(&i64, &Agent)| a.school == school;
        match only {
            // A direct lookup: this runs on every state report.
            Some(id) => inner
                .agents
                .get_key_value(&id)
                .filter(ours)
                .map(row)
                .into_iter()
                .collect(),
            None => inner.agents.iter().filter(ours).map(row).collect(),
        }
    }

    /// (school, hostname, user) of a connected device, whatever its school.
    pub fn subject(&self, device_id: i64) -> Option<(SchoolId, String, Option<String>)> {
        self.lock()
            .agents
            .get(&device_id)
            .map(|a| (a.school, a.info.hostname.clone(), a.state.user.clone()))
    }

    /// The policy last sent to a device.
    pub fn policy_of(&self, device_id: i64) -> Option<Policy> {
        self.lock()
            .agents
            .get(&device_id)
            .and_then(|a| a.policy.clone())
    }

    /// The groups a connected device (with its user) belongs to.
    pub fn groups_of(&self, device_id: i64) -> Option<Vec<i64>> {
        self.lock().agents.get(&device_id).map(|a| a.groups.clone())
    }

    /// Records a device's groups, and sends it `policy` unless `policy` is `None`
    /// (unchanged). When its groups changed (or were pending after a new user),
    /// updates which consoles see it, drops watches of those that no longer
    /// do and republishes its view for those that now do. Then starts or stops
    /// its stream as the new policy allows.
    pub fn set_policy(&self, device_id: i64, policy: Option<Policy>, groups: Vec<i64>) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(a) = inner.agents.get_mut(&device_id) else {
            return;
        };
        let regroup = !a.scoped || a.groups != groups;
        a.groups = groups;
        a.scoped = true;
        if let Some(policy) = policy {
            let _ = a.tx.try_send(ServerMsg::Policy {
                policy: policy.clone(),
            });
            a.policy = Some(policy);
        }
        if regroup {
            let view = view_of(device_id, a);
            let groups = a.groups.clone();
            let mut lost = Vec::new();
            for (id, c) in inner.consoles.iter_mut() {
                if c.scope.device_groups(device_id, &groups) == Change::Lost
                    && c.watched.remove(&device_id)
                {
                    c.drop_unwatched_live();
                    lost.push(*id);
                }
            }
            for c in lost {
                remove_watcher(inner, device_id, c);
            }
            let _ = self.events.send(ConsoleEvent::Device(Box::new(view)));
        }
        self.refresh_stream(inner, device_id);
    }

    /// Starts asking `device`'s student whether `viewer` may see the screen,
    /// unless an answer for this console session is remembered (with `fresh`,
    /// a remembered timeout does not count) or a question is already out.
    /// `until`: when an answer lapses at the latest. `None` when the device is
    /// offline, its policy is not known yet, or its queue is full.
    pub fn begin_ask(
        &self,
        device_id: i64,
        viewer: &Viewer,
        until: i64,
        fresh: bool,
    ) -> Option<AskStart> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.next_id += 1;
        let request_id = inner.next_id;
        let now = now_ms();
        let key = (device_id, viewer.session);
        let a = inner.agents.get_mut(&device_id)?;
        let mode = a.policy.as_ref()?.remote_view;
        if let Some(g) = inner.grants.get_mut(&key).filter(|g| g.valid(a, now)) {
            match &mut g.state {
                GrantState::Decided(d) if !(fresh && d.reason.is_timeout()) => {
                    return Some(AskStart::Known(*d))
                }
                GrantState::Asking(since, waiters) if now - *since < inner.ask_abandoned_ms => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    return Some(AskStart::Wait(rx));
                }
                _ => {}
            }
        }
        let (tx, rx) = oneshot::channel();
        a.tx.try_send(ServerMsg::ViewRequest {
            request_id,
            teacher: viewer.username.clone(),
            timeout_secs: self.ask_secs,
        })
        .ok()?;
        a.views.insert(request_id, tx);
        let grant = Grant {
            student: a.state.user.clone(),
            mode,
            until,
            state: GrantState::Asking(now, Vec::new()),
        };
        if inner.grants.len() >= MAX_GRANTS {
            inner.grants.retain(|_, g| g.until > now);
        }
        inner.grants.insert(key, grant);
        Some(AskStart::Asked { answer: rx, mode })
    }

    /// Records the decision of a question begun by [`Hub::begin_ask`], tells
    /// those waiting for it, and starts the device's stream if it now may.
    pub fn finish_ask(&self, device_id: i64, session: u64, decision: ViewDecision) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(g) = inner.grants.get_mut(&(device_id, session)) {
            let before = std::mem::replace(&mut g.state, GrantState::Decided(decision));
            if let GrantState::Asking(_, waiters) = before {
                for w in waiters {
                    let _ = w.send(decision);
                }
            }
        }
        self.refresh_stream(inner, device_id);
    }

    /// What the privacy rule says for `session` (with the `bypass` right)
    /// about pictures of a connected device, before anyone is asked.
    pub fn view_verdict(&self, device_id: i64, session: u64, bypass: bool) -> Option<Verdict> {
        let inner = self.lock();
        let a = inner.agents.get(&device_id)?;
        Some(verdict_for(&inner, device_id, a, session, bypass))
    }

    /// Delivers a student's answer to a live-view request.
    pub fn answer_view(&self, device_id: i64, request_id: u64, allowed: Option<bool>) {
        if let Some(tx) = self
            .lock()
            .agents
            .get_mut(&device_id)
            .and_then(|a| a.views.remove(&request_id))
        {
            let _ = tx.send(allowed);
        }
    }
}

impl Hub {
    /// Gives a connected agent's session its media channel (broadcast frames).
    pub fn attach_media(&self, device_id: i64, conn: u64, media: mpsc::Sender<Bytes>) {
        if let Some(a) = self
            .lock()
            .agents
            .get_mut(&device_id)
            .filter(|a| a.conn == conn)
        {
            a.media = Some(media);
        }
    }

    /// Starts a broadcast: targets show it full screen; a device source streams
    /// its screen large and fast until the broadcast ends (while its privacy
    /// setting lets `starter` see it).
    pub fn start_broadcast(
        &self,
        title: String,
        source: BroadcastSource,
        targets: HashSet<i64>,
        started_by: &str,
        starter: Starter,
    ) -> Broadcast {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.next_id += 1;
        let now = now_ms();
        let mut b = Broadcast {
            id: inner.next_id,
            title,
            source,
            targets,
            started_by: started_by.to_string(),
            starter,
            asked: HashMap::new(),
            budget: FrameBudget::new(now),
        };
        for t in &b.targets {
            if let Some(a) = inner.agents.get(t) {
                let _ = a.tx.try_send(ServerMsg::BroadcastStart {
                    title: b.title.clone(),
                });
                b.asked.insert(*t, now);
            }
        }
        inner.broadcasts.insert(b.id, b.clone());
        if let BroadcastSource::Device(d) = &b.source {
            self.refresh_stream(inner, *d);
        }
        b
    }

    /// Ends a broadcast; `None` if there is no such broadcast.
    pub fn stop_broadcast(&self, id: u64) -> Option<Broadcast> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let b = inner.broadcasts.remove(&id)?;
        for t in &b.targets {
            if let Some(a) = inner.agents.get(t) {
                let _ = a.tx.try_send(ServerMsg::BroadcastStop);
            }
        }
        if let BroadcastSource::Device(d) = &b.source {
            // Back to thumbnails for its watchers, or quiet.
            self.refresh_stream(inner, *d);
        }
        Some(b)
    }

    /// Running broadcasts.
    pub fn broadcasts(&self) -> Vec<Broadcast> {
        self.lock().broadcasts.values().cloned().collect()
    }

    /// What each target of broadcast `id` is doing (`None`: no such broadcast).
    pub fn receivers(&self, id: u64) -> Option<Vec<(i64, Receiving)>> {
        let inner = self.lock();
        let b = inner.broadcasts.get(&id)?;
        let now = now_ms();
        let facts = |t: i64| {
            let a = inner.agents.get(&t);
            TargetFacts {
                online: a.is_some(),
                supported: a.is_some_and(|a| a.capabilities.contains(&Capability::Broadcast)),
                shown: a.is_some_and(|a| a.state.broadcast_shown),
                asked_ms: b.asked.get(&t).copied(),
            }
        };
        Some(
            b.targets
                .iter()
                .map(|t| (*t, facts(*t).receiving(now)))
                .collect(),
        )
    }

    /// Passes a frame from `source` to the targets of its broadcasts, within
    /// each broadcast's frame budget (frames over it are dropped). A target
    /// whose queue is filling skips frames. Returns how many targets got it.
    pub fn broadcast_frame(
        &self,
        source: &BroadcastSource,
        only: Option<u64>,
        frame: &MediaFrame<'_>,
    ) -> usize {
        if frame.payload.len() > crate::broadcast::MAX_FRAME_BYTES {
            return 0;
        }
        let queues = self.broadcast_queues(source, only);
        if queues.is_empty() {
            return 0;
        }
        // Encoded once, outside the hub's lock, for every target.
        let bytes = Bytes::from(
            MediaFrame {
                kind: MediaKind::Broadcast,
                ..frame.clone()
            }
            .encode(),
        );
        queues
            .iter()
            .filter(|q| q.capacity() > 1 && q.try_send(bytes.clone()).is_ok())
            .count()
    }

    /// The media queues of the targets a frame from `source` goes to now:
    /// broadcasts whose source it is (`only` that one, if given), whose
    /// starter may see a device source, and whose frame budget has room
    /// (taken here).
    fn broadcast_queues(
        &self,
        source: &BroadcastSource,
        only: Option<u64>,
    ) -> Vec<mpsc::Sender<Bytes>> {
        let mut guard = self.lock();
        let permitted = |inner: &Inner, b: &Broadcast| match b.source {
            BroadcastSource::Device(d) => inner
                .agents
                .get(&d)
                .is_some_and(|a| starter_sees(inner, d, a, b.starter)),
            BroadcastSource::Console(_) => true,
        };
        let ids: Vec<u64> = guard
            .broadcasts
            .values()
            .filter(|b| &b.source == source && only.is_none_or(|o| o == b.id))
            .filter(|b| permitted(&guard, b))
            .map(|b| b.id)
            .collect();
        let now = now_ms();
        let Inner {
            agents, broadcasts, ..
        } = &mut *guard;
        let mut queues = Vec::new();
        for b in broadcasts.values_mut().filter(|b| ids.contains(&b.id)) {
            if b.budget.take(now) {
                queues.extend(
                    b.targets
                        .iter()
                        .filter_map(|t| agents.get(t).and_then(|a| a.media.clone())),
                );
            }
        }
        queues
    }
}

impl Hub {
    /// Gives a connected device its accepted name (its computer groups follow
    /// at the next policy push); false when it is offline.
    pub fn rename(&self, device_id: i64, hostname: &str) -> bool {
        match self.lock().agents.get_mut(&device_id) {
            Some(a) => {
                a.info.hostname = hostname.to_string();
                true
            }
            None => false,
        }
    }
}

impl Hub {
    /// Whether `console` shows `device` in its live view and may receive its
    /// pictures now (remote control needs both).
    pub fn live_allowed(&self, console: u64, device: i64) -> bool {
        let inner = self.lock();
        match (inner.consoles.get(&console), inner.agents.get(&device)) {
            (Some(c), Some(a)) => c.is_live(device) && gets_pictures(&inner, c, device, a),
            _ => false,
        }
    }
}

/// Whether the device is the source of a broadcast whose starter may see it
/// (then it streams at broadcast size whatever consoles do).
fn source_allowed(inner: &Inner, device: i64, a: &Agent) -> bool {
    inner.broadcasts.values().any(|b| {
        b.source == BroadcastSource::Device(device) && starter_sees(inner, device, a, b.starter)
    })
}

fn starter_sees(inner: &Inner, device: i64, a: &Agent, s: Starter) -> bool {
    allowed(verdict_for(inner, device, a, s.session, s.bypass))
}

fn allowed(v: Verdict) -> bool {
    matches!(v, Verdict::Decided(d) if d.allowed)
}

/// The privacy rule for one console session about one device, with any
/// answer its student gave that session that still holds.
fn verdict_for(inner: &Inner, device: i64, a: &Agent, session: u64, bypass: bool) -> Verdict {
    let now = now_ms();
    let remembered = inner
        .grants
        .get(&(device, session))
        .filter(|g| g.valid(a, now))
        .and_then(|g| match g.state {
            GrantState::Decided(d) => Some(d),
            GrantState::Asking(..) => None,
        });
    privacy::verdict(a.privacy(), bypass, remembered)
}

/// Whether a question for this session is out and not abandoned.
fn asking(inner: &Inner, device: i64, session: u64, now: i64) -> bool {
    inner.grants.get(&(device, session)).is_some_and(
        |g| matches!(g.state, GrantState::Asking(since, _) if now - since < inner.ask_abandoned_ms),
    )
}

/// Whether a console may receive pictures of a device now: it sees the
/// device and the privacy rule allows its user.
fn gets_pictures(inner: &Inner, c: &Console, device: i64, a: &Agent) -> bool {
    c.scope.sees(device)
        && allowed(verdict_for(
            inner,
            device,
            a,
            c.scope.viewer.session,
            c.scope.bypass(),
        ))
}

fn remove_watcher(inner: &mut Inner, device: i64, console: u64) {
    if let Some(w) = inner.watchers.get_mut(&device) {
        w.remove(&console);
        if w.is_empty() {
            inner.watchers.remove(&device);
        }
    }
}

/// Stores a device's new state; a new user makes its groups pending.
fn record_state(a: &mut Agent, id: i64, state: DeviceState) -> DeviceView {
    if a.state.user != state.user {
        a.scoped = false;
    }
    a.state = state;
    view_of(id, a)
}

fn view_of(id: i64, a: &Agent) -> DeviceView {
    DeviceView {
        id,
        hostname: a.info.hostname.clone(),
        online: true,
        os: a.info.os.clone(),
        agent_version: a.info.agent_version.clone(),
        revoked: false,
        last_seen: Some(lectern_store::now_ms()),
        capabilities: a.capabilities.clone(),
        state: a.state.clone(),
        groups_pending: !a.scoped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_policy::access::{Access, Rights};

    fn agent(hub: &Hub, id: i64) -> (u64, mpsc::Receiver<ServerMsg>) {
        let (tx, rx) = mpsc::channel(8);
        let (conn, _) = hub.register_agent(
            1,
            id,
            tx,
            DeviceInfo::default(),
            vec![],
            DeviceState::default(),
        );
        (conn, rx)
    }

    /// Sends `id` a policy with `remote_view` (it is in group 1).
    fn policy(hub: &Hub, id: i64, remote_view: RemoteView, rx: &mut mpsc::Receiver<ServerMsg>) {
        let p = Policy {
            remote_view,
            ..Policy::default()
        };
        hub.set_policy(id, Some(p), vec![1]);
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::Policy { .. })));
    }

    fn scope(session: u64, rights: Rights) -> Arc<ConsoleScope> {
        crate::scope::test_scope(session, rights)
    }

    fn admin(hub: &Hub, session: u64) -> (u64, mpsc::Receiver<ToConsole>) {
        let (tx, rx) = mpsc::channel(8);
        let all = Rights {
            all: true,
            bypass_privacy: true,
            ..Rights::default()
        };
        (hub.register_console(tx, scope(session, all)), rx)
    }

    /// A teacher who sees group 1, without bypass.
    fn teacher(hub: &Hub, session: u64) -> (u64, mpsc::Receiver<ToConsole>) {
        let (tx, rx) = mpsc::channel(8);
        let rights = Rights {
            group_access: [(1, Access::View)].into(),
            ..Rights::default()
        };
        let s = scope(session, rights);
        s.device_groups(1, &[1]);
        s.device_groups(2, &[1]);
        (hub.register_console(tx, s), rx)
    }

    #[test]
    fn streams_start_on_first_watcher_and_stop_on_last() {
        let hub = Hub::new(320, 1000);
        let (_c, mut rx) = agent(&hub, 1);
        policy(&hub, 1, RemoteView::Allow, &mut rx);
        let (c1, mut crx1) = admin(&hub, 1);
        let (c2, _crx2) = admin(&hub, 2);
        assert_eq!(hub.thumbnail(1, b"x"), 0, "nobody watches");
        hub.set_watch(c1, HashSet::from([1]));
        assert!(matches!(
            rx.try_recv(),
            Ok(ServerMsg::StartThumbnails {
                width: 320,
                interval_ms: 1000,
                privacy_bypass: false,
            })
        ));
        hub.set_watch(c2, HashSet::from([1]));
        assert!(
            rx.try_recv().is_err(),
            "second watcher sends no second start"
        );
        assert_eq!(hub.thumbnail(1, b"jpg"), 2);
        let Ok(ToConsole::Frame(f)) = crx1.try_recv() else {
            panic!("expected a frame");
        };
        assert_eq!(f[0], 1);
        assert_eq!(i64::from_be_bytes(f[1..9].try_into().unwrap()), 1);
        assert_eq!(&f[9..], b"jpg");
        hub.set_watch(c1, HashSet::new());
        assert!(rx.try_recv().is_err());
        hub.unregister_console(c2);
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::StopThumbnails)));
    }

    #[test]
    fn replaced_session_does_not_unregister_the_new_one() {
        let hub = Hub::new(320, 1000);
        let (old, _rx1) = agent(&hub, 5);
        let (new, _rx2) = agent(&hub, 5);
        assert!(hub.unregister_agent(5, old).is_none());
        assert!(hub.is_online(5));
        assert!(hub.unregister_agent(5, new).is_some());
        assert!(!hub.is_online(5));
    }

    #[test]
    fn reconnecting_agent_resumes_streaming_for_watchers_once_its_policy_is_known() {
        let hub = Hub::new(200, 500);
        let (c, _crx) = admin(&hub, 1);
        hub.set_watch(c, HashSet::from([3]));
        let (_conn, mut rx) = agent(&hub, 3);
        assert!(rx.try_recv().is_err(), "no pictures before the policy");
        hub.set_policy(3, Some(Policy::default()), vec![]);
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::Policy { .. })));
        assert!(matches!(
            rx.try_recv(),
            Ok(ServerMsg::StartThumbnails { width: 200, .. })
        ));
    }

    #[test]
    fn pending_commands_are_tracked() {
        let hub = Hub::new(320, 1000);
        let (conn, _rx) = agent(&hub, 2);
        assert!(hub.send_command(2, 10, ServerMsg::StopThumbnails));
        assert!(!hub.send_command(99, 10, ServerMsg::StopThumbnails));
        assert!(hub.send_command(2, 11, ServerMsg::StopThumbnails));
        assert!(hub.ack(2, 10, DeviceState::default()).unwrap().0);
        assert!(!hub.ack(2, 10, DeviceState::default()).unwrap().0);
        let (pending, view) = hub.unregister_agent(2, conn).unwrap();
        assert_eq!(pending, vec![11]);
        assert!(!view.online);
    }

    #[test]
    fn a_denied_device_streams_only_for_bypass() {
        let hub = Hub::new(320, 1000);
        let (_c, mut rx) = agent(&hub, 1);
        policy(&hub, 1, RemoteView::Deny, &mut rx);
        let (t, mut trx) = teacher(&hub, 1);
        hub.set_watch(t, HashSet::from([1]));
        assert!(
            rx.try_recv().is_err(),
            "no StartThumbnails for a denied viewer"
        );
        assert_eq!(hub.thumbnail(1, b"jpg"), 0);
        assert!(trx.try_recv().is_err());
        let (a, mut arx) = admin(&hub, 2);
        hub.set_watch(a, HashSet::from([1]));
        assert!(
            matches!(arx.try_recv(), Ok(ToConsole::Bypassed(1))),
            "the bypass is reported for the audit"
        );
        assert!(
            matches!(
                rx.try_recv(),
                Ok(ServerMsg::StartThumbnails {
                    privacy_bypass: true,
                    ..
                })
            ),
            "the agent is told, or it refuses"
        );
        assert_eq!(hub.thumbnail(1, b"jpg"), 1, "only the admin gets it");
        assert!(trx.try_recv().is_err());
        assert!(matches!(arx.try_recv(), Ok(ToConsole::Frame(_))));
        hub.set_watch(a, HashSet::new());
        hub.set_watch(a, HashSet::from([1]));
        assert!(arx.try_recv().is_err(), "audited once per session");
    }

    #[test]
    fn an_answer_holds_for_the_session_until_the_student_changes() {
        let hub = Hub::new(320, 1000);
        let (_c, mut rx) = agent(&hub, 1);
        policy(&hub, 1, RemoteView::AskThenDeny, &mut rx);
        let (t, mut trx) = teacher(&hub, 7);
        hub.set_watch(t, HashSet::from([1]));
        assert!(matches!(trx.try_recv(), Ok(ToConsole::Ask(1))));
        let viewer = hub.scopes()[0].viewer.clone();
        let Some(AskStart::Asked { .. }) = hub.begin_ask(1, &viewer, i64::MAX, false) else {
            panic!("expected a question");
        };
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::ViewRequest { .. })));
        assert!(
            matches!(
                hub.begin_ask(1, &viewer, i64::MAX, false),
                Some(AskStart::Wait(_))
            ),
            "one question at a time"
        );
        hub.set_watch(t, HashSet::new());
        hub.set_watch(t, HashSet::from([1]));
        assert!(trx.try_recv().is_err(), "no question per scroll");
        hub.finish_ask(
            1,
            7,
            privacy::from_answer(Some(true), RemoteView::AskThenDeny),
        );
        assert!(matches!(
            rx.try_recv(),
            Ok(ServerMsg::StartThumbnails { .. })
        ));
        assert_eq!(hub.thumbnail(1, b"jpg"), 1);
        assert!(trx.try_recv().is_ok());
        assert!(matches!(
            hub.begin_ask(1, &viewer, i64::MAX, true),
            Some(AskStart::Known(_))
        ));
        // Another student logs in: the answer lapses, frames stop.
        let amy = DeviceState {
            user: Some("amy".into()),
            ..DeviceState::default()
        };
        hub.set_state(1, amy);
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::StopThumbnails)));
        assert_eq!(hub.thumbnail(1, b"jpg"), 0);
        assert!(
            matches!(trx.try_recv(), Ok(ToConsole::Ask(1))),
            "the new student is asked"
        );
    }

    #[test]
    fn an_answer_lapses_with_the_session_or_lesson() {
        let hub = Hub::new(320, 1000);
        let (_c, mut rx) = agent(&hub, 1);
        policy(&hub, 1, RemoteView::AskThenDeny, &mut rx);
        let (t, _trx) = teacher(&hub, 7);
        hub.set_watch(t, HashSet::from([1]));
        let viewer = hub.scopes()[0].viewer.clone();
        // Answered for a session (or lesson) that has ended since.
        assert!(hub.begin_ask(1, &viewer, 0, false).is_some());
        hub.finish_ask(
            1,
            7,
            privacy::from_answer(Some(true), RemoteView::AskThenDeny),
        );
        assert!(!matches!(
            rx.try_recv(),
            Ok(ServerMsg::StartThumbnails { .. })
        ));
        assert_eq!(hub.view_verdict(1, 7, false), Some(Verdict::Ask));
        assert!(matches!(
            hub.begin_ask(1, &viewer, i64::MAX, false),
            Some(AskStart::Asked { .. })
        ));
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;
    use lectern_policy::access::{Access, Rights};

    fn agent(hub: &Hub, id: i64, remote_view: RemoteView) -> mpsc::Receiver<ServerMsg> {
        let (tx, mut rx) = mpsc::channel(16);
        hub.register_agent(
            1,
            id,
            tx,
            DeviceInfo::default(),
            vec![],
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

    /// A console of `session` seeing group 1 (devices 1 and 2 are in it).
    fn console(hub: &Hub, session: u64, all: bool) -> (u64, mpsc::Receiver<ToConsole>) {
        let (tx, rx) = mpsc::channel(16);
        let rights = Rights {
            all,
            bypass_privacy: all,
            group_access: [(1, Access::View)].into(),
            ..Rights::default()
        };
        let s = crate::scope::test_scope(session, rights);
        s.device_groups(1, &[1]);
        s.device_groups(2, &[1]);
        (hub.register_console(tx, s), rx)
    }

    fn started(rx: &mut mpsc::Receiver<ServerMsg>) -> Option<(u32, u32)> {
        match rx.try_recv() {
            Ok(ServerMsg::StartThumbnails {
                width, interval_ms, ..
            }) => Some((width, interval_ms)),
            _ => None,
        }
    }

    fn hub() -> Hub {
        Hub::new(320, 1000).with_live(1280, 100)
    }

    #[test]
    fn live_view_streams_large_and_fast_then_back_to_thumbnails() {
        let hub = hub();
        let mut rx = agent(&hub, 1, RemoteView::Allow);
        let (c, _crx) = console(&hub, 1, false);
        hub.watch(c, HashSet::from([1, 2]), None);
        assert_eq!(started(&mut rx), Some((320, 1000)));
        hub.watch(c, HashSet::from([1, 2]), Some(1));
        assert_eq!(started(&mut rx), Some((1280, 100)));
        assert_eq!(hub.live_counts(), (1, 1));
        hub.watch(c, HashSet::from([1, 2]), Some(1));
        assert!(rx.try_recv().is_err(), "no second start for the same view");
        // The live view closes: back to thumbnail size.
        hub.watch(c, HashSet::from([1, 2]), None);
        assert_eq!(started(&mut rx), Some((320, 1000)));
        assert_eq!(hub.live_counts(), (0, 0));
        // Live again, then the console goes: nobody watches, nothing streams.
        hub.watch(c, HashSet::from([1]), Some(1));
        assert_eq!(started(&mut rx), Some((1280, 100)));
        hub.unregister_console(c);
        assert!(matches!(rx.try_recv(), Ok(ServerMsg::StopThumbnails)));
        assert_eq!(hub.live_counts(), (0, 0));
    }

    #[test]
    fn a_console_cannot_make_live_a_device_it_does_not_see() {
        let hub = hub();
        let mut rx = agent(&hub, 3, RemoteView::Allow);
        let (c, _crx) = console(&hub, 1, false);
        hub.watch(c, HashSet::from([3]), Some(3));
        assert!(
            rx.try_recv().is_err(),
            "device 3 is not in the teacher's groups"
        );
        assert_eq!(hub.live_counts(), (0, 0));
        // Nor can a live device that is not watched be live.
        let mut rx1 = agent(&hub, 1, RemoteView::Allow);
        hub.watch(c, HashSet::new(), Some(1));
        assert!(rx1.try_recv().is_err());
    }

    #[test]
    fn live_follows_the_privacy_rule_of_the_console_that_asks() {
        let hub = hub();
        let mut rx = agent(&hub, 1, RemoteView::Deny);
        let (t, _trx) = console(&hub, 1, false);
        hub.watch(t, HashSet::from([1]), Some(1));
        assert!(
            rx.try_recv().is_err(),
            "denied: a teacher without bypass gets nothing"
        );
        assert_eq!(hub.live_counts(), (0, 0));
        // An admin (bypass) watching it as a thumbnail: thumbnail size only,
        // the teacher's live view does not enlarge it.
        let (a, _arx) = console(&hub, 2, true);
        hub.watch(a, HashSet::from([1]), None);
        assert_eq!(started(&mut rx), Some((320, 1000)));
        hub.watch(a, HashSet::from([1]), Some(1));
        assert_eq!(started(&mut rx), Some((1280, 100)));
    }

    #[test]
    fn other_watchers_get_a_live_stream_no_faster_than_thumbnails() {
        let hub = hub();
        let _rx = agent(&hub, 1, RemoteView::Allow);
        let (live, mut lrx) = console(&hub, 1, false);
        let (grid, mut grx) = console(&hub, 2, false);
        hub.watch(live, HashSet::from([1]), Some(1));
        hub.watch(grid, HashSet::from([1]), None);
        let t0 = 1_000_000;
        for (i, t) in [t0, t0 + 100, t0 + 200, t0 + 950].into_iter().enumerate() {
            let got = hub.thumbnail_at(1, b"jpg", t);
            assert_eq!(got, if i == 0 || i == 3 { 2 } else { 1 }, "frame {i}");
        }
        let count =
            |rx: &mut mpsc::Receiver<ToConsole>| std::iter::from_fn(|| rx.try_recv().ok()).count();
        assert_eq!(count(&mut lrx), 4, "the live view gets every frame");
        assert_eq!(count(&mut grx), 2, "the grid one a thumbnail interval");
    }

    #[test]
    fn a_device_passes_frames_only_when_asked_and_at_most_twice_as_fast() {
        let hub = hub();
        let _rx = agent(&hub, 1, RemoteView::Deny);
        let (a, mut arx) = console(&hub, 1, true);
        hub.watch(a, HashSet::from([2]), None);
        let _rx2 = agent(&hub, 2, RemoteView::Deny);
        // Device 1 was never asked: its frames go nowhere.
        assert_eq!(hub.thumbnail_at(1, b"jpg", 0), 0);
        let t0 = 1_000_000;
        let got: Vec<usize> = [t0, t0 + 100, t0 + 499, t0 + 500, t0 + 1000]
            .into_iter()
            .map(|t| hub.thumbnail_at(2, b"jpg", t))
            .collect();
        // 100 and 499: over the device's rate; 500: within its rate, but
        // sooner than the console's thumbnail spacing.
        assert_eq!(got, vec![1, 0, 0, 0, 1], "asked every 1000 ms");
        hub.watch(a, HashSet::from([2]), Some(2));
        let got: Vec<usize> = [t0 + 1050, t0 + 1060, t0 + 1100]
            .into_iter()
            .map(|t| hub.thumbnail_at(2, b"jpg", t))
            .collect();
        assert_eq!(got, vec![1, 0, 1], "live: every 100 ms");
        let frames = std::iter::from_fn(|| arx.try_recv().ok())
            .filter(|m| matches!(m, ToConsole::Frame(_)))
            .count();
        assert_eq!(frames, 4);
    }

    #[test]
    fn live_and_broadcast_take_the_larger_and_faster() {
        let hub = hub().with_live(1920, 400);
        let mut rx = agent(&hub, 1, RemoteView::Allow);
        let (c, _crx) = console(&hub, 1, true);
        let starter = Starter {
            session: 1,
            bypass: true,
        };
        let b = hub.start_broadcast(
            "x".into(),
            BroadcastSource::Device(1),
            HashSet::new(),
            "t1",
            starter,
        );
        assert_eq!(started(&mut rx), Some(BROADCAST_STREAM));
        hub.watch(c, HashSet::from([1]), Some(1));
        assert_eq!(started(&mut rx), Some((1920, 250)));
        hub.stop_broadcast(b.id);
        assert_eq!(started(&mut rx), Some((1920, 400)));
    }
}
