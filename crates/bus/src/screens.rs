//! Screens across nodes (issue 16 point 5): a console on one node sees the
//! thumbnails and the live view of devices held by others, and pictures
//! flow only while someone watches.
//!
//! A console's node keeps a [`Watch`] for the devices on its screen: every
//! third of its lease it tells each node holding some of them which ones,
//! in one message per node ([`Subject::node_watch`]). It looks the holders
//! up in presence every second, and when a device has moved to another
//! gateway (it reconnected there) tells the new one at once and the old one
//! that the watch there is over. The holding node's [`Screens`] keeps who
//! watches what (each watch apart, several may be on one node) until its
//! lease runs out, says when a device's first watcher comes and its last
//! one goes ([`WatchChange`]), so that the node asks the device for
//! pictures only in between, and publishes the pictures it gets, only while
//! watched, on the device's own subject ([`Subject::device_frames`]), which
//! the watch hears device by device, keeping only the newest picture of
//! each while its console is behind. A watch stopped on purpose
//! ([`Watch::stop`]) ends at once; one dropped, or on a node that died, at
//! its lease. A node that gains a device's connection asks [`Screens::watched`]
//! whether to ask it for pictures at once.
//!
//! Which devices a console may watch is the console's node's to check, as
//! on a single server; pictures of one school travel under that school's
//! subjects only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::presence::Locator;
use crate::{Bus, BusError, DeviceKey, Filter, Message, NodeId, Subject};

/// Which pictures: small ones every few seconds, or the live view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum View {
    /// Thumbnails for the classroom grid.
    Thumbnails,
    /// One device's screen, full size, as often as it comes.
    Live,
}

impl View {
    fn byte(self) -> u8 {
        match self {
            View::Thumbnails => 0,
            View::Live => 1,
        }
    }

    fn from_byte(b: u8) -> Option<View> {
        match b {
            0 => Some(View::Thumbnails),
            1 => Some(View::Live),
            _ => None,
        }
    }
}

/// A device's first watcher came, or its last one went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchChange {
    /// Ask the device for pictures of this view.
    Start(DeviceKey, View),
    /// Nobody watches it any more: stop asking.
    Stop(DeviceKey, View),
}

/// A picture heard by a [`Watch`].
#[derive(Clone, Debug)]
pub struct Frame {
    /// The device.
    pub device: DeviceKey,
    /// Which view it is for.
    pub view: View,
    /// The picture (JPEG).
    pub jpeg: Bytes,
}

/// The longest lease a watch may ask for.
const MAX_LEASE: Duration = Duration::from_secs(600);

/// The school number of the probe a node sends itself.
const PROBE: i64 = i64::MIN;

/// The most watches of one device's view a holding node keeps, and the
/// most devices' views it keeps watches of: a peer that asks for more is
/// not listened to beyond them.
const MAX_WATCHES: usize = 64;
const MAX_WATCHED: usize = 200_000;

/// How often a watch looks its devices' holders up.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Bytes of an interest besides its devices, and per device.
const INTEREST_ROOM: usize = 256;
const DEVICE_ROOM: usize = 21;

/// "`from` watches these devices of `school` until `lease_ms` from now"
/// (0: no longer).
#[derive(Serialize, Deserialize)]
struct Interest {
    from: String,
    /// Which of `from`'s watches.
    watch: u64,
    school: i64,
    view: View,
    lease_ms: u64,
    devices: Vec<i64>,
}

/// A watch: its node, and its number there.
type WatchId = (NodeId, u64);

struct Shared {
    me: NodeId,
    bus: Bus,
    /// Which devices this node holds.
    locator: Locator,
    /// For each device and view watched here: each watch, until when.
    table: Mutex<HashMap<(DeviceKey, View), HashMap<WatchId, Instant>>>,
    changes: mpsc::UnboundedSender<WatchChange>,
}

/// The holding node's side: who watches which of its devices.
pub struct Screens {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Screens {
    /// Starts hearing watches for `me`'s devices (those `locator`, this
    /// node's presence, says it holds). Returns once this node hears its own
    /// (a probe sent to itself comes back). Changes come on the receiver.
    pub async fn start(
        bus: Bus,
        me: NodeId,
        locator: Locator,
    ) -> Result<(Screens, mpsc::UnboundedReceiver<WatchChange>), BusError> {
        let sub = bus
            .subscribe(&Filter::exactly(&Subject::node_watch(&me)))
            .await?;
        let (changes, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            me,
            bus,
            locator,
            table: Mutex::new(HashMap::new()),
            changes,
        });
        let (ready_tx, mut ready_rx) = oneshot::channel();
        let task = tokio::spawn(run(shared.clone(), sub, ready_tx));
        let screens = Screens { shared, task };
        let probe = Interest {
            from: screens.shared.me.to_string(),
            watch: 0,
            school: PROBE,
            view: View::Thumbnails,
            lease_ms: 0,
            devices: Vec::new(),
        };
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let subject = Subject::node_watch(&screens.shared.me);
            screens.shared.bus.publish(&subject, encode(&probe)).await?;
            match tokio::time::timeout(Duration::from_millis(250), &mut ready_rx).await {
                Ok(Ok(())) => return Ok((screens, rx)),
                Ok(Err(_)) => return Err(BusError::Nats("the bus closed".into())),
                Err(_) if Instant::now() >= give_up => {
                    return Err(BusError::Nats(
                        "this node's own watches are not heard back".into(),
                    ))
                }
                Err(_) => {}
            }
        }
    }

    /// Whether anyone watches `device`'s `view`.
    pub fn watched(&self, device: DeviceKey, view: View) -> bool {
        let now = Instant::now();
        lock(&self.shared.table)
            .get(&(device, view))
            .is_some_and(|w| w.values().any(|&until| until > now))
    }

    /// Publishes a picture of `device` while someone watches its `view`;
    /// `false` (nothing sent) when nobody does. Refused when larger than the
    /// bus carries.
    pub async fn frame(
        &self,
        device: DeviceKey,
        view: View,
        jpeg: &[u8],
    ) -> Result<bool, BusError> {
        if !self.watched(device, view) {
            return Ok(false);
        }
        let mut payload = Vec::with_capacity(1 + jpeg.len());
        payload.push(view.byte());
        payload.extend_from_slice(jpeg);
        let subject = Subject::device_frames(device.school, device.device);
        self.shared.bus.publish(&subject, payload).await?;
        Ok(true)
    }
}

impl Drop for Screens {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn encode(i: &Interest) -> Vec<u8> {
    serde_json::to_vec(i).expect("an interest always serializes")
}

async fn run(shared: Arc<Shared>, mut sub: crate::Subscription, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            m = sub.next() => match m {
                Some(m) => on_interest(&shared, &m, &mut ready),
                None => return,
            },
            _ = tick.tick() => expire(&shared),
        }
    }
}

/// A watch's devices: each one's lease renewed, or ended (lease 0). Only
/// devices this node holds, and within the limits.
fn on_interest(shared: &Shared, m: &Message, ready: &mut Option<oneshot::Sender<()>>) {
    let Ok(i) = serde_json::from_slice::<Interest>(&m.payload) else {
        tracing::warn!(subject = %m.subject, "a watch that does not parse");
        return;
    };
    let Ok(from) = NodeId::new(&i.from) else {
        tracing::warn!(subject = %m.subject, "a watch from no node");
        return;
    };
    if i.school == PROBE {
        if from == shared.me {
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
        }
        return;
    }
    let lease = Duration::from_millis(i.lease_ms).min(MAX_LEASE);
    let until = Instant::now() + lease;
    let watch: WatchId = (from, i.watch);
    let mut table = lock(&shared.table);
    for device in i.devices {
        let key = (
            DeviceKey {
                school: i.school,
                device,
            },
            i.view,
        );
        if lease.is_zero() {
            end_watch(shared, &mut table, key, &watch);
            continue;
        }
        if shared.locator.holder(key.0).as_ref() != Some(&shared.me) {
            continue;
        }
        if !table.contains_key(&key) && table.len() >= MAX_WATCHED {
            tracing::warn!("too many devices watched: a watch is not taken");
            continue;
        }
        let w = table.entry(key).or_default();
        if w.is_empty() {
            let _ = shared.changes.send(WatchChange::Start(key.0, key.1));
        }
        if w.len() < MAX_WATCHES || w.contains_key(&watch) {
            w.insert(watch.clone(), until);
        }
    }
}

/// One watch of `key` ends; the last one says stop.
fn end_watch(
    shared: &Shared,
    table: &mut HashMap<(DeviceKey, View), HashMap<WatchId, Instant>>,
    key: (DeviceKey, View),
    watch: &WatchId,
) {
    if let Some(w) = table.get_mut(&key) {
        w.remove(watch);
        if w.is_empty() {
            table.remove(&key);
            let _ = shared.changes.send(WatchChange::Stop(key.0, key.1));
        }
    }
}

/// Watches whose lease ran out end; a device's last one says stop.
fn expire(shared: &Shared) {
    let now = Instant::now();
    lock(&shared.table).retain(|key, w| {
        w.retain(|_, until| *until > now);
        if w.is_empty() {
            let _ = shared.changes.send(WatchChange::Stop(key.0, key.1));
        }
        !w.is_empty()
    });
}

/// A console's node's side: watching some of a school's devices, wherever
/// they are held, for as long as it is kept.
pub struct Watch {
    frames: Arc<Latest>,
    task: tokio::task::JoinHandle<()>,
    end: Arc<Ended>,
}

/// The newest picture of each device not yet taken, and a wake-up for
/// [`Watch::next`].
#[derive(Default)]
struct Latest {
    frames: Mutex<BTreeMap<i64, Frame>>,
    came: tokio::sync::Notify,
    /// The subscriptions ended (the bus is gone).
    closed: std::sync::atomic::AtomicBool,
}

/// What the watch's task and [`Watch::stop`] share.
struct Ended {
    bus: Bus,
    me: NodeId,
    /// This watch's number on its node.
    watch: u64,
    school: i64,
    view: View,
    locator: Locator,
    devices: Vec<i64>,
    /// The nodes last told of each device, and which.
    told: Mutex<BTreeMap<NodeId, Vec<i64>>>,
}

impl Watch {
    /// Starts watching `devices` of `school` (`view`) as node `me`, renewing
    /// every third of `lease`, looking holders up with `locator`.
    pub async fn start(
        bus: Bus,
        me: NodeId,
        locator: Locator,
        school: i64,
        view: View,
        devices: Vec<i64>,
        lease: Duration,
    ) -> Result<Watch, BusError> {
        let lease = lease.clamp(Duration::from_millis(300), MAX_LEASE);
        let mut devices = devices;
        devices.sort_unstable();
        devices.dedup();
        let mut subs = Vec::with_capacity(devices.len());
        for &device in &devices {
            let filter = Filter::exactly(&Subject::device_frames(school, device));
            subs.push((device, bus.subscribe(&filter).await?));
        }
        let end = Arc::new(Ended {
            bus,
            me,
            watch: rand::random(),
            school,
            view,
            locator,
            devices,
            told: Mutex::new(BTreeMap::new()),
        });
        let frames = Arc::new(Latest::default());
        let task = tokio::spawn(watching(end.clone(), lease, subs, frames.clone()));
        Ok(Watch { frames, task, end })
    }

    /// The next picture of a watched device (the newest of each, when the
    /// console has fallen behind); `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            let came = self.frames.came.notified();
            if let Some((_, frame)) = lock(&self.frames.frames).pop_first() {
                return Some(frame);
            }
            if self
                .frames
                .closed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return None;
            }
            came.await;
        }
    }

    /// Stops at once: the nodes told of the watch, and those holding its
    /// devices now, stop asking for pictures now rather than at the lease.
    pub async fn stop(mut self) -> Result<(), BusError> {
        self.task.abort();
        // Past any renewal under way, so that none lands after the end.
        let _ = (&mut self.task).await;
        let mut nodes = std::mem::take(&mut *lock(&self.end.told));
        for (node, devices) in holders(&self.end) {
            let list = nodes.entry(node).or_default();
            list.extend(devices);
            list.sort_unstable();
            list.dedup();
        }
        tell(&self.end, &nodes, 0).await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which node holds which of the watch's devices now.
fn holders(end: &Ended) -> BTreeMap<NodeId, Vec<i64>> {
    let mut by_node: BTreeMap<NodeId, Vec<i64>> = BTreeMap::new();
    for &device in &end.devices {
        let key = DeviceKey {
            school: end.school,
            device,
        };
        if let Some(node) = end.locator.holder(key) {
            by_node.entry(node).or_default().push(device);
        }
    }
    by_node
}

/// Tells each node of `nodes` that the watch holds its devices for
/// `lease_ms` (0: no longer). A node that cannot be told does not keep the
/// others from being told; the first failure is returned.
async fn tell(
    end: &Ended,
    nodes: &BTreeMap<NodeId, Vec<i64>>,
    lease_ms: u64,
) -> Result<(), BusError> {
    let per_message = (end.bus.max_payload().saturating_sub(INTEREST_ROOM) / DEVICE_ROOM).max(1);
    let mut first = Ok(());
    for (node, devices) in nodes {
        for chunk in devices.chunks(per_message) {
            let i = Interest {
                from: end.me.to_string(),
                watch: end.watch,
                school: end.school,
                view: end.view,
                lease_ms,
                devices: chunk.to_vec(),
            };
            if let Err(e) = end
                .bus
                .publish(&Subject::node_watch(node), encode(&i))
                .await
            {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
    }
    first
}

/// The devices of `old` that `new` does not have under the same node.
fn moved_away(
    old: &BTreeMap<NodeId, Vec<i64>>,
    new: &BTreeMap<NodeId, Vec<i64>>,
) -> BTreeMap<NodeId, Vec<i64>> {
    let mut gone = BTreeMap::new();
    for (node, devices) in old {
        let still = new.get(node);
        let left: Vec<i64> = devices
            .iter()
            .copied()
            .filter(|d| still.is_none_or(|s| s.binary_search(d).is_err()))
            .collect();
        if !left.is_empty() {
            gone.insert(node.clone(), left);
        }
    }
    gone
}

/// The watch's task: looks holders up every second, renews every third of
/// the lease or at once when a device moved, and passes pictures on.
async fn watching(
    end: Arc<Ended>,
    lease: Duration,
    subs: Vec<(i64, crate::Subscription)>,
    frames: Arc<Latest>,
) {
    let heard = futures_util::stream::select_all(subs.into_iter().map(|(device, sub)| {
        Box::pin(futures_util::stream::unfold(
            sub,
            move |mut sub| async move { sub.next().await.map(|m| ((device, m), sub)) },
        ))
    }));
    let mut heard = heard;
    let renew_every = lease / 3;
    let mut look = tokio::time::interval(LOOK_EVERY.min(renew_every));
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lease_ms = lease.as_millis().try_into().unwrap_or(u64::MAX);
    let mut renewed: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = look.tick() => {
                renewed = look_and_renew(&end, lease_ms, renew_every, renewed).await;
            }
            m = futures_util::StreamExt::next(&mut heard) => match m {
                Some((device, m)) => heard_frame(&end, device, &m, &frames),
                None => {
                    frames.closed.store(true, std::sync::atomic::Ordering::Release);
                    frames.came.notify_one();
                    return;
                }
            },
        }
    }
}

/// Renews the watch with the nodes holding its devices when a third of the
/// lease has gone by or a device moved, and ends it where devices left.
/// Returns when it last renewed.
async fn look_and_renew(
    end: &Ended,
    lease_ms: u64,
    renew_every: Duration,
    renewed: Option<Instant>,
) -> Option<Instant> {
    let now_held = holders(end);
    let old = lock(&end.told).clone();
    let due = renewed.is_none_or(|at| at.elapsed() >= renew_every);
    if !due && now_held == old {
        return renewed;
    }
    let gone = moved_away(&old, &now_held);
    if let Err(e) = tell(end, &gone, 0).await {
        tracing::warn!("cannot end a watch where a device left: {e}");
    }
    if let Err(e) = tell(end, &now_held, lease_ms).await {
        // The next look tries again; the lease covers a miss.
        tracing::warn!("cannot renew a watch: {e}");
    }
    *lock(&end.told) = now_held;
    Some(Instant::now())
}

/// A picture of one of the watched devices: kept as that device's newest,
/// if it is for this view.
fn heard_frame(end: &Ended, device: i64, m: &Message, frames: &Latest) {
    let Some((&first, _)) = m.payload.split_first() else {
        return;
    };
    if View::from_byte(first) != Some(end.view) {
        return;
    }
    let frame = Frame {
        device: DeviceKey {
            school: end.school,
            device,
        },
        view: end.view,
        jpeg: m.payload.slice(1..),
    };
    lock(&frames.frames).insert(device, frame);
    frames.came.notify_one();
}
