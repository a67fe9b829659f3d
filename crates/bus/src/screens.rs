//! Screens across nodes (issue 16 point 5): a console on one node sees the
//! thumbnails and the live view of devices held by others, and pictures
//! flow only while someone watches.
//!
//! A console's node keeps a [`Watch`] for the devices on its screen: every
//! third of its lease it tells each node holding some of them (looked up
//! afresh in presence, as devices move between gateways when they
//! reconnect) which ones, in one message per node ([`Subject::node_watch`]).
//! The holding node's [`Screens`] keeps who watches what until the lease
//! runs out, says when a device's first watcher comes and its last one goes
//! ([`WatchChange`]), so that the node asks the device for pictures only in
//! between, and publishes the pictures it gets, only while watched, on the
//! device's own subject ([`Subject::device_frames`]), which the watching
//! nodes hear by school ([`Filter::school_frames`]). A watch stopped on
//! purpose ([`Watch::stop`]) ends at once; one dropped, or on a node that
//! died, at its lease.
//!
//! Which devices a console may watch is the console's node's to check, as
//! on a single server; pictures of one school travel under that school's
//! subjects only.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Bytes of an interest besides its devices, and per device.
const INTEREST_ROOM: usize = 256;
const DEVICE_ROOM: usize = 21;

/// Pictures a watching console may fall behind by before the oldest are
/// dropped (a slow console loses pictures, not memory).
const FRAME_BACKLOG: usize = 64;

/// "`from` watches these devices of `school` until `lease_ms` from now"
/// (0: no longer).
#[derive(Serialize, Deserialize)]
struct Interest {
    from: String,
    school: i64,
    view: View,
    lease_ms: u64,
    devices: Vec<i64>,
}

struct Shared {
    me: NodeId,
    bus: Bus,
    /// For each device and view watched here: each watching node, until when.
    table: Mutex<HashMap<(DeviceKey, View), HashMap<NodeId, Instant>>>,
    changes: mpsc::UnboundedSender<WatchChange>,
}

/// The holding node's side: who watches which of its devices.
pub struct Screens {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Screens {
    /// Starts hearing watches for `me`'s devices. Returns once this node
    /// hears its own (a probe sent to itself comes back). Changes come on
    /// the receiver.
    pub async fn start(
        bus: Bus,
        me: NodeId,
    ) -> Result<(Screens, mpsc::UnboundedReceiver<WatchChange>), BusError> {
        let sub = bus
            .subscribe(&Filter::exactly(&Subject::node_watch(&me)))
            .await?;
        let (changes, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            me,
            bus,
            table: Mutex::new(HashMap::new()),
            changes,
        });
        let (ready_tx, mut ready_rx) = oneshot::channel();
        let task = tokio::spawn(run(shared.clone(), sub, ready_tx));
        let screens = Screens { shared, task };
        let probe = Interest {
            from: screens.shared.me.to_string(),
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

/// A node's watch: each device's lease renewed, or ended (lease 0).
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
            if let Some(w) = table.get_mut(&key) {
                w.remove(&from);
                if w.is_empty() {
                    table.remove(&key);
                    let _ = shared.changes.send(WatchChange::Stop(key.0, key.1));
                }
            }
            continue;
        }
        let w = table.entry(key).or_default();
        if w.is_empty() {
            let _ = shared.changes.send(WatchChange::Start(key.0, key.1));
        }
        w.insert(from.clone(), until);
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
    frames: mpsc::Receiver<Frame>,
    task: tokio::task::JoinHandle<()>,
    end: Arc<Ended>,
}

/// What [`Watch::stop`] needs to say goodbye.
struct Ended {
    bus: Bus,
    me: NodeId,
    school: i64,
    view: View,
    locator: Locator,
    devices: Vec<i64>,
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
        let sub = bus.subscribe(&Filter::school_frames(school)).await?;
        let (tx, frames) = mpsc::channel(FRAME_BACKLOG);
        let end = Arc::new(Ended {
            bus,
            me,
            school,
            view,
            locator,
            devices,
        });
        let task = tokio::spawn(watching(end.clone(), lease, sub, tx));
        Ok(Watch { frames, task, end })
    }

    /// The next picture of a watched device; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }

    /// Stops at once: the holding nodes stop asking for pictures now
    /// rather than at the lease.
    pub async fn stop(self) -> Result<(), BusError> {
        self.task.abort();
        tell(&self.end, 0).await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Tells each node holding some of the devices which ones, with `lease_ms`.
async fn tell(end: &Ended, lease_ms: u64) -> Result<(), BusError> {
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
    let per_message = (end.bus.max_payload().saturating_sub(INTEREST_ROOM) / DEVICE_ROOM).max(1);
    for (node, devices) in by_node {
        for chunk in devices.chunks(per_message) {
            let i = Interest {
                from: end.me.to_string(),
                school: end.school,
                view: end.view,
                lease_ms,
                devices: chunk.to_vec(),
            };
            end.bus
                .publish(&Subject::node_watch(&node), encode(&i))
                .await?;
        }
    }
    Ok(())
}

async fn watching(
    end: Arc<Ended>,
    lease: Duration,
    mut sub: crate::Subscription,
    frames: mpsc::Sender<Frame>,
) {
    let wanted: HashSet<i64> = end.devices.iter().copied().collect();
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lease_ms = lease.as_millis().try_into().unwrap_or(u64::MAX);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = tell(&end, lease_ms).await {
                    // The next renewal tries again; the lease covers a miss.
                    tracing::warn!("cannot renew a watch: {e}");
                }
            }
            m = sub.next() => match m {
                Some(m) => heard_frame(&end, &wanted, &m, &frames),
                None => return,
            },
        }
    }
}

/// A picture of one of the school's devices: passed on if it is one
/// watched, for this view; dropped if the console is behind.
fn heard_frame(end: &Ended, wanted: &HashSet<i64>, m: &Message, frames: &mpsc::Sender<Frame>) {
    // `lectern.school.<school>.device.<device>.frames`
    let Some(device) = m
        .subject
        .split('.')
        .nth(4)
        .and_then(|d| d.parse::<i64>().ok())
    else {
        return;
    };
    if !wanted.contains(&device) {
        return;
    }
    let Some((&first, jpeg)) = m.payload.split_first() else {
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
        jpeg: m.payload.slice(1..1 + jpeg.len()),
    };
    if frames.try_send(frame).is_err() {
        tracing::trace!(device, "a watching console is behind: picture dropped");
    }
}
