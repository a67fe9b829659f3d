//! The live picture: which agents are connected, their state, which consoles
//! watch which devices. Sessions talk to each other only through the hub.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use lectern_proto::{
    Capability, DeviceInfo, DeviceState, MediaFrame, MediaKind, Policy, ServerMsg,
};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

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
}

/// What a console stream receives besides broadcast events: thumbnails.
pub type ConsoleTx = mpsc::Sender<Bytes>;

struct Agent {
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
}

impl Agent {
    fn thumbnails_allowed(&self) -> bool {
        self.policy.as_ref().is_none_or(|p| p.thumbnails_allowed)
    }
}

#[derive(Default)]
struct Inner {
    agents: HashMap<i64, Agent>,
    consoles: HashMap<u64, (ConsoleTx, HashSet<i64>)>,
    watchers: HashMap<i64, HashSet<u64>>,
    broadcasts: HashMap<u64, Broadcast>,
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
}

/// Size and rate asked of a device whose screen is broadcast.
const BROADCAST_STREAM: (u32, u32) = (1280, 250);

/// Shared registry of live sessions.
pub struct Hub {
    inner: Mutex<Inner>,
    events: broadcast::Sender<ConsoleEvent>,
    thumb: (u32, u32),
}

impl Hub {
    /// A hub asking agents for thumbnails `width` px wide every `interval_ms`.
    pub fn new(width: u32, interval_ms: u32) -> Self {
        Hub {
            inner: Mutex::default(),
            events: broadcast::channel(4096).0,
            thumb: (width, interval_ms),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_msg(&self) -> ServerMsg {
        ServerMsg::StartThumbnails {
            width: self.thumb.0,
            interval_ms: self.thumb.1,
        }
    }

    /// Subscribes to console events.
    pub fn subscribe(&self) -> broadcast::Receiver<ConsoleEvent> {
        self.events.subscribe()
    }

    /// Publishes a console event (dropped when no console listens).
    pub fn publish(&self, e: ConsoleEvent) {
        let _ = self.events.send(e);
    }

    /// Registers a connected agent and returns its connection id. A second
    /// session for the same device replaces the first, whose channel closes.
    pub fn register_agent(
        &self,
        device_id: i64,
        tx: mpsc::Sender<ServerMsg>,
        info: DeviceInfo,
        capabilities: Vec<Capability>,
        state: DeviceState,
    ) -> (u64, Vec<i64>) {
        let mut inner = self.lock();
        inner.next_id += 1;
        let conn = inner.next_id;
        if inner
            .watchers
            .get(&device_id)
            .is_some_and(|w| !w.is_empty())
        {
            let _ = tx.try_send(self.start_msg());
        }
        let old = inner.agents.insert(
            device_id,
            Agent {
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
            },
        );
        // A device that reconnects mid-broadcast picks it up again.
        for b in inner.broadcasts.values() {
            if let Some(a) = inner.agents.get(&device_id) {
                if b.targets.contains(&device_id) {
                    let _ = a.tx.try_send(ServerMsg::BroadcastStart {
                        title: b.title.clone(),
                    });
                }
                if b.source == BroadcastSource::Device(device_id) {
                    let _ = a.tx.try_send(ServerMsg::StartThumbnails {
                        width: BROADCAST_STREAM.0,
                        interval_ms: BROADCAST_STREAM.1,
                    });
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
    pub fn kick(&self, device_id: i64, msg: ServerMsg) {
        if let Some(a) = self.lock().agents.remove(&device_id) {
            let _ = a.tx.try_send(msg);
        }
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
        a.state = state;
        Some((was_pending, view_of(device_id, a)))
    }

    /// Records a state change and returns the device's view.
    pub fn set_state(&self, device_id: i64, state: DeviceState) -> Option<DeviceView> {
        let mut inner = self.lock();
        let a = inner.agents.get_mut(&device_id)?;
        a.state = state;
        Some(view_of(device_id, a))
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

    /// Registers a console stream; returns its id.
    pub fn register_console(&self, tx: ConsoleTx) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.consoles.insert(id, (tx, HashSet::new()));
        id
    }

    /// Sets the devices a console watches; agents start streaming on their first
    /// watcher and stop on their last, so no frames flow when nobody watches.
    pub fn set_watch(&self, console: u64, devices: HashSet<i64>) {
        let mut inner = self.lock();
        let Some((_, old)) = inner.consoles.get_mut(&console) else {
            return;
        };
        let old = std::mem::replace(old, devices.clone());
        for d in old.difference(&devices) {
            self.unwatch(&mut inner, console, *d);
        }
        for d in devices.difference(&old) {
            let w = inner.watchers.entry(*d).or_default();
            w.insert(console);
            if w.len() == 1 {
                let source = is_broadcast_source(&inner, *d);
                if let Some(a) = inner
                    .agents
                    .get(d)
                    .filter(|a| a.thumbnails_allowed() && !source)
                {
                    let _ = a.tx.try_send(self.start_msg());
                }
            }
        }
    }

    fn unwatch(&self, inner: &mut Inner, console: u64, device: i64) {
        let Some(w) = inner.watchers.get_mut(&device) else {
            return;
        };
        w.remove(&console);
        if w.is_empty() {
            inner.watchers.remove(&device);
            if let Some(a) = inner
                .agents
                .get(&device)
                .filter(|_| !is_broadcast_source(inner, device))
            {
                let _ = a.tx.try_send(ServerMsg::StopThumbnails);
            }
        }
    }

    /// Removes a console stream and its watches.
    pub fn unregister_console(&self, console: u64) {
        let mut inner = self.lock();
        if let Some((_, watched)) = inner.consoles.remove(&console) {
            for d in watched {
                self.unwatch(&mut inner, console, d);
            }
        }
    }

    /// Passes a thumbnail to every console watching `device_id`; a console that
    /// is behind skips frames rather than slowing the agent. Returns how many got it.
    pub fn thumbnail(&self, device_id: i64, jpeg: &[u8]) -> usize {
        let inner = self.lock();
        let Some(w) = inner.watchers.get(&device_id) else {
            return 0;
        };
        let mut frame = Vec::with_capacity(9 + jpeg.len());
        frame.push(1u8);
        frame.extend_from_slice(&device_id.to_be_bytes());
        frame.extend_from_slice(jpeg);
        let frame = Bytes::from(frame);
        w.iter()
            .filter_map(|c| inner.consoles.get(c))
            .filter(|(tx, _)| tx.try_send(frame.clone()).is_ok())
            .count()
    }
}

impl Hub {
    /// (device id, hostname, user) of connected devices, all or just `only`.
    pub fn subjects(&self, only: Option<i64>) -> Vec<(i64, String, Option<String>)> {
        let inner = self.lock();
        let row = |(id, a): (&i64, &Agent)| (*id, a.info.hostname.clone(), a.state.user.clone());
        match only {
            // A direct lookup: this runs on every state report.
            Some(id) => inner
                .agents
                .get_key_value(&id)
                .map(row)
                .into_iter()
                .collect(),
            None => inner.agents.iter().map(row).collect(),
        }
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
    /// (unchanged). Starts or stops thumbnails when the policy changes whether
    /// they are allowed.
    pub fn set_policy(&self, device_id: i64, policy: Option<Policy>, groups: Vec<i64>) {
        let mut inner = self.lock();
        let watched = inner
            .watchers
            .get(&device_id)
            .is_some_and(|w| !w.is_empty());
        let Some(a) = inner.agents.get_mut(&device_id) else {
            return;
        };
        a.groups = groups;
        let Some(policy) = policy else { return };
        let was_allowed = a.thumbnails_allowed();
        let _ = a.tx.try_send(ServerMsg::Policy {
            policy: policy.clone(),
        });
        a.policy = Some(policy);
        match (watched, was_allowed, a.thumbnails_allowed()) {
            (true, true, false) => {
                let _ = a.tx.try_send(ServerMsg::StopThumbnails);
            }
            (true, false, true) => {
                let _ = a.tx.try_send(self.start_msg());
            }
            _ => {}
        }
    }

    /// Asks a connected device's student for a live view; the receiver yields
    /// the answer (`None`: no answer in time). `None` if the device is offline.
    pub fn request_view(
        &self,
        device_id: i64,
        teacher: &str,
        timeout_secs: u32,
    ) -> Option<oneshot::Receiver<Option<bool>>> {
        let mut inner = self.lock();
        inner.next_id += 1;
        let request_id = inner.next_id;
        let a = inner.agents.get_mut(&device_id)?;
        let (tx, rx) = oneshot::channel();
        a.tx.try_send(ServerMsg::ViewRequest {
            request_id,
            teacher: teacher.to_string(),
            timeout_secs,
        })
        .ok()?;
        a.views.insert(request_id, tx);
        Some(rx)
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
    /// its screen large and fast until the broadcast ends.
    pub fn start_broadcast(
        &self,
        title: String,
        source: BroadcastSource,
        targets: HashSet<i64>,
        started_by: &str,
    ) -> Broadcast {
        let mut inner = self.lock();
        inner.next_id += 1;
        let b = Broadcast {
            id: inner.next_id,
            title,
            source,
            targets,
            started_by: started_by.to_string(),
        };
        for t in &b.targets {
            if let Some(a) = inner.agents.get(t) {
                let _ = a.tx.try_send(ServerMsg::BroadcastStart {
                    title: b.title.clone(),
                });
            }
        }
        if let BroadcastSource::Device(d) = &b.source {
            if let Some(a) = inner.agents.get(d) {
                let _ = a.tx.try_send(ServerMsg::StartThumbnails {
                    width: BROADCAST_STREAM.0,
                    interval_ms: BROADCAST_STREAM.1,
                });
            }
        }
        inner.broadcasts.insert(b.id, b.clone());
        b
    }

    /// Ends a broadcast; `None` if there is no such broadcast.
    pub fn stop_broadcast(&self, id: u64) -> Option<Broadcast> {
        let mut inner = self.lock();
        let b = inner.broadcasts.remove(&id)?;
        for t in &b.targets {
            if let Some(a) = inner.agents.get(t) {
                let _ = a.tx.try_send(ServerMsg::BroadcastStop);
            }
        }
        if let BroadcastSource::Device(d) = &b.source {
            let still_source = inner.broadcasts.values().any(|o| o.source == b.source);
            let watched = inner.watchers.get(d).is_some_and(|w| !w.is_empty());
            if let (false, Some(a)) = (still_source, inner.agents.get(d)) {
                let back = if watched && a.thumbnails_allowed() {
                    self.start_msg()
                } else {
                    ServerMsg::StopThumbnails
                };
                let _ = a.tx.try_send(back);
            }
        }
        Some(b)
    }

    /// Running broadcasts.
    pub fn broadcasts(&self) -> Vec<Broadcast> {
        self.lock().broadcasts.values().cloned().collect()
    }

    /// Passes a frame from `source` to the targets of its broadcasts. A target
    /// whose queue is filling skips frames. Returns how many targets got it.
    pub fn broadcast_frame(
        &self,
        source: &BroadcastSource,
        only: Option<u64>,
        frame: &MediaFrame<'_>,
    ) -> usize {
        let inner = self.lock();
        let bytes = Bytes::from(
            MediaFrame {
                kind: MediaKind::Broadcast,
                ..frame.clone()
            }
            .encode(),
        );
        let mut sent = 0;
        for b in inner
            .broadcasts
            .values()
            .filter(|b| &b.source == source && only.is_none_or(|o| o == b.id))
        {
            for t in &b.targets {
                let Some(media) = inner.agents.get(t).and_then(|a| a.media.as_ref()) else {
                    continue;
                };
                if media.capacity() > 1 && media.try_send(bytes.clone()).is_ok() {
                    sent += 1;
                }
            }
        }
        sent
    }
}

/// A device streaming for a broadcast keeps streaming whatever consoles do.
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

fn is_broadcast_source(inner: &Inner, device: i64) -> bool {
    inner
        .broadcasts
        .values()
        .any(|b| b.source == BroadcastSource::Device(device))
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(hub: &Hub, id: i64) -> (u64, mpsc::Receiver<ServerMsg>) {
        let (tx, rx) = mpsc::channel(8);
        let (conn, _) = hub.register_agent(
            id,
            tx,
            DeviceInfo::default(),
            vec![],
            DeviceState::default(),
        );
        (conn, rx)
    }

    #[test]
    fn streams_start_on_first_watcher_and_stop_on_last() {
        let hub = Hub::new(320, 1000);
        let (_c, mut rx) = agent(&hub, 1);
        let (ctx1, mut crx1) = mpsc::channel(8);
        let (ctx2, _crx2) = mpsc::channel(8);
        let c1 = hub.register_console(ctx1);
        let c2 = hub.register_console(ctx2);
        assert_eq!(hub.thumbnail(1, b"x"), 0, "nobody watches");
        hub.set_watch(c1, HashSet::from([1]));
        assert!(matches!(
            rx.try_recv(),
            Ok(ServerMsg::StartThumbnails {
                width: 320,
                interval_ms: 1000
            })
        ));
        hub.set_watch(c2, HashSet::from([1]));
        assert!(
            rx.try_recv().is_err(),
            "second watcher sends no second start"
        );
        assert_eq!(hub.thumbnail(1, b"jpg"), 2);
        let f = crx1.try_recv().unwrap();
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
    fn reconnecting_agent_resumes_streaming_for_watchers() {
        let hub = Hub::new(200, 500);
        let (ctx, _crx) = mpsc::channel(8);
        let c = hub.register_console(ctx);
        hub.set_watch(c, HashSet::from([3]));
        let (_conn, mut rx) = agent(&hub, 3);
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
}
