//! Which node holds which device, under a lease.
//!
//! Every node beats on [`Subject::presence`] every third of its lease: its
//! name, its incarnation (when this run of the process started, and a
//! random number), a sequence number and
//! the devices it holds (in parts when they would not fit one message). A
//! device it takes or lets go is told at once, in an extra beat. Every node
//! follows every other's beats, so any of them can say where a device is
//! ([`Presence::holder`]) and send one message per node rather than one per
//! device.
//!
//! A node whose beats stop for longer than its lease (killed, or cut off
//! from the bus) is taken as lost, with the devices it last said it held
//! ([`PresenceEvent::Lost`]): the commands in flight to them can then be
//! given an outcome instead of staying pending. A node that comes back under
//! the same name with a later incarnation (restarted) loses its old devices the
//! same way, as its new process holds none of the old connections. A node
//! stopped on purpose says so ([`Presence::leave`], [`PresenceEvent::Left`]).
//!
//! Beats are from the cluster's own nodes (the bus is theirs alone), but are
//! still checked: the name must be the one in the subject, the parts few,
//! and a beat that does not parse is dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::{Bus, BusError, Filter, NodeId, Subject};

/// One device: its school and its id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceKey {
    /// The school.
    pub school: i64,
    /// The device.
    pub device: i64,
}

/// What changed among the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceEvent {
    /// A node was heard for the first time, or again after it was lost.
    Joined(NodeId),
    /// A node's beats stopped for longer than its lease, or it came back
    /// as a new process: the devices it held.
    Lost {
        /// The node.
        node: NodeId,
        /// The devices it last said it held.
        devices: Vec<DeviceKey>,
    },
    /// A node said it is stopping: the devices it held.
    Left {
        /// The node.
        node: NodeId,
        /// The devices it held.
        devices: Vec<DeviceKey>,
    },
}

/// The most parts one beat may come in (a million devices and more at the
/// default payload size).
const MAX_PARTS: u32 = 64;

/// Bytes of a beat besides its devices, with room to spare.
const BEAT_OVERHEAD: usize = 512;

/// The most bytes one device takes in a beat (two 20-digit numbers).
const DEVICE_BYTES: usize = 64;

/// One run of a node's process: when it started (ms since the epoch), then
/// a random number. Ordered, so that a late beat of a process that has
/// since restarted is told from its successor's.
type Incarnation = (u64, u64);

#[derive(Serialize, Deserialize)]
struct Beat {
    node: String,
    started: u64,
    epoch: u64,
    seq: u64,
    part: u32,
    parts: u32,
    lease_ms: u64,
    leaving: bool,
    devices: Vec<DeviceKey>,
}

/// What is known of another node.
struct Seen {
    incarnation: Incarnation,
    seq: u64,
    expires: Instant,
    devices: BTreeSet<DeviceKey>,
    pending: Option<Pending>,
}

/// A beat in parts, being put together.
struct Pending {
    seq: u64,
    parts: u32,
    /// Bit `k`: part `k` heard.
    heard: u64,
    devices: BTreeSet<DeviceKey>,
}

#[derive(Default)]
struct Table {
    nodes: HashMap<NodeId, Seen>,
    /// The last incarnation of each node taken as lost or gone: its late
    /// beats (and older ones') are not a node coming back.
    gone: HashMap<NodeId, Incarnation>,
    /// Where each device is, as last said (by any node).
    holder: HashMap<DeviceKey, NodeId>,
}

struct Shared {
    me: NodeId,
    incarnation: Incarnation,
    lease: Duration,
    bus: Bus,
    held: Mutex<BTreeSet<DeviceKey>>,
    table: Mutex<Table>,
    changed: Notify,
}

/// This node's part in presence: what it holds, and what it knows of the
/// others. Dropping it stops the beats without a word (as a killed process
/// would); [`Presence::leave`] says goodbye.
pub struct Presence {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Presence {
    /// Starts beating as `me`, with `lease` (beats every third of it), and
    /// following the other nodes. The events come on the receiver.
    pub async fn start(
        bus: Bus,
        me: NodeId,
        lease: Duration,
    ) -> Result<(Presence, mpsc::UnboundedReceiver<PresenceEvent>), BusError> {
        let sub = bus.subscribe(&Filter::all_presence()).await?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, millis);
        let shared = Arc::new(Shared {
            me,
            incarnation: (started, rand::random()),
            lease,
            bus,
            held: Mutex::new(BTreeSet::new()),
            table: Mutex::new(Table::default()),
            changed: Notify::new(),
        });
        let (events, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(shared.clone(), sub, events));
        Ok((Presence { shared, task }, rx))
    }

    /// This node now holds `device` (its connection came here): told at once.
    pub fn hold(&self, device: DeviceKey) {
        if lock(&self.shared.held).insert(device) {
            self.shared.changed.notify_one();
        }
    }

    /// This node no longer holds `device`: told at once.
    pub fn release(&self, device: DeviceKey) {
        if lock(&self.shared.held).remove(&device) {
            self.shared.changed.notify_one();
        }
    }

    /// The node holding `device`, as last heard; this node for its own.
    pub fn holder(&self, device: DeviceKey) -> Option<NodeId> {
        self.locator().holder(device)
    }

    /// A handle that looks devices up for as long as it is kept (a task
    /// that renews something per holder needs one of its own).
    pub fn locator(&self) -> Locator {
        Locator(self.shared.clone())
    }

    /// The nodes alive, this one among them, by name.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = lock(&self.shared.table).nodes.keys().cloned().collect();
        nodes.push(self.shared.me.clone());
        nodes.sort();
        nodes
    }

    /// The devices `node` holds, as last heard.
    pub fn held_by(&self, node: &NodeId) -> Vec<DeviceKey> {
        if *node == self.shared.me {
            return lock(&self.shared.held).iter().copied().collect();
        }
        lock(&self.shared.table)
            .nodes
            .get(node)
            .map(|s| s.devices.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Stops beating and tells the others this node is leaving, so they
    /// need not wait for its lease. By reference, so that a node stopping
    /// can say it while others still share its presence; nothing is said
    /// of it after.
    pub async fn leave(&self) -> Result<(), BusError> {
        self.task.abort();
        let beat = Beat {
            node: self.shared.me.to_string(),
            started: self.shared.incarnation.0,
            epoch: self.shared.incarnation.1,
            seq: u64::MAX,
            part: 0,
            parts: 1,
            lease_ms: millis(self.shared.lease),
            leaving: true,
            devices: Vec::new(),
        };
        let subject = Subject::presence(&self.shared.me);
        self.shared.bus.publish(&subject, encode(&beat)).await?;
        self.shared.bus.flush().await
    }
}

/// Looks up which node holds a device ([`Presence::locator`]); cheap to
/// clone. It says what the presence it came from last heard, and nothing
/// new once that presence is dropped.
#[derive(Clone)]
pub struct Locator(Arc<Shared>);

impl Locator {
    /// The node holding `device`, as last heard; this node for its own.
    pub fn holder(&self, device: DeviceKey) -> Option<NodeId> {
        if lock(&self.0.held).contains(&device) {
            return Some(self.0.me.clone());
        }
        lock(&self.0.table).holder.get(&device).cloned()
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn encode(beat: &Beat) -> Vec<u8> {
    serde_json::to_vec(beat).expect("a beat always serializes")
}

/// The beating and listening task: one small function per event.
async fn run(
    shared: Arc<Shared>,
    mut sub: crate::Subscription,
    events: mpsc::UnboundedSender<PresenceEvent>,
) {
    let mut tick = tokio::time::interval(shared.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                beat(&shared, seq).await;
                expire(&shared, &events);
            }
            _ = shared.changed.notified() => {
                seq += 1;
                beat(&shared, seq).await;
            }
            heard = sub.next() => match heard {
                Some(m) => heard_beat(&shared, &m, &events),
                None => return,
            },
        }
    }
}

/// Publishes what this node holds, in as many parts as it takes.
async fn beat(shared: &Shared, seq: u64) {
    let held: Vec<DeviceKey> = lock(&shared.held).iter().copied().collect();
    let per_part = (shared.bus.max_payload().saturating_sub(BEAT_OVERHEAD) / DEVICE_BYTES).max(1);
    let parts = held.len().div_ceil(per_part).max(1);
    if parts > MAX_PARTS as usize {
        tracing::error!(devices = held.len(), "too many devices to say in one beat");
        return;
    }
    let subject = Subject::presence(&shared.me);
    for part in 0..parts {
        let devices = held
            .iter()
            .skip(part * per_part)
            .take(per_part)
            .copied()
            .collect();
        let b = Beat {
            node: shared.me.to_string(),
            started: shared.incarnation.0,
            epoch: shared.incarnation.1,
            seq,
            part: part as u32,
            parts: parts as u32,
            lease_ms: millis(shared.lease),
            leaving: false,
            devices,
        };
        if let Err(e) = shared.bus.publish(&subject, encode(&b)).await {
            // The next beat tries again; the others wait out the lease.
            tracing::warn!("cannot send a presence beat: {e}");
            return;
        }
    }
}

/// A beat from the bus: checked, then put in the table.
fn heard_beat(shared: &Shared, m: &crate::Message, events: &mpsc::UnboundedSender<PresenceEvent>) {
    let Ok(b) = serde_json::from_slice::<Beat>(&m.payload) else {
        tracing::warn!(subject = %m.subject, "a presence beat that does not parse");
        return;
    };
    let Ok(node) = NodeId::new(&b.node) else {
        return;
    };
    if m.subject != Subject::presence(&node).as_str()
        || b.parts == 0
        || b.parts > MAX_PARTS
        || b.part >= b.parts
    {
        tracing::warn!(subject = %m.subject, node = %node, "a presence beat out of place");
        return;
    }
    let incarnation = (b.started, b.epoch);
    if node == shared.me {
        if incarnation != shared.incarnation {
            tracing::error!(node = %node, "another process beats under this node's name");
        }
        return;
    }
    let mut table = lock(&shared.table);
    if table.gone.get(&node).is_some_and(|g| incarnation <= *g) {
        // A late beat of a process already taken as gone.
        return;
    }
    let lease = Duration::from_millis(b.lease_ms.clamp(100, 600_000));
    match table.nodes.get(&node).map(|s| s.incarnation) {
        Some(known) if incarnation < known => return,
        Some(known) if incarnation > known => {
            // Restarted: the old process's devices went with it.
            drop_node(&mut table, &node, events, |node, devices| {
                PresenceEvent::Lost { node, devices }
            });
        }
        _ => {}
    }
    if b.leaving {
        drop_node(&mut table, &node, events, |node, devices| {
            PresenceEvent::Left { node, devices }
        });
        return;
    }
    let seen = table.nodes.entry(node.clone()).or_insert_with(|| {
        let _ = events.send(PresenceEvent::Joined(node.clone()));
        Seen {
            incarnation,
            seq: 0,
            expires: Instant::now(),
            devices: BTreeSet::new(),
            pending: None,
        }
    });
    if b.seq <= seen.seq {
        // Old news: it neither changes the devices nor renews the lease.
        return;
    }
    let whole = if b.parts == 1 {
        Some(b.devices.into_iter().collect())
    } else {
        let mut p = match seen.pending.take() {
            Some(p) if p.seq == b.seq && p.parts == b.parts => p,
            Some(p) if p.seq > b.seq => {
                // A part of a beat older than the one being put together.
                seen.pending = Some(p);
                return;
            }
            // A newer beat replaces one not yet whole.
            _ => Pending {
                seq: b.seq,
                parts: b.parts,
                heard: 0,
                devices: BTreeSet::new(),
            },
        };
        p.heard |= 1 << b.part;
        p.devices.extend(b.devices);
        // (Not `(1 << parts) - 1`: 64 parts would overflow it.)
        if p.heard == u64::MAX >> (64 - p.parts) {
            Some(p.devices)
        } else {
            seen.pending = Some(p);
            None
        }
    };
    seen.expires = Instant::now() + lease;
    let Some(devices) = whole else {
        return;
    };
    seen.seq = b.seq;
    let old = std::mem::replace(&mut seen.devices, devices);
    let now: Vec<DeviceKey> = seen.devices.iter().copied().collect();
    let gone: Vec<DeviceKey> = old.difference(&seen.devices).copied().collect();
    forget(&mut table, &node, &gone);
    for d in now {
        table.holder.insert(d, node.clone());
    }
}

/// Takes `node` out of the table, remembering its incarnation as gone, and
/// tells what it held with `event`.
fn drop_node(
    table: &mut Table,
    node: &NodeId,
    events: &mpsc::UnboundedSender<PresenceEvent>,
    event: impl FnOnce(NodeId, Vec<DeviceKey>) -> PresenceEvent,
) {
    if let Some(old) = table.nodes.remove(node) {
        forget(table, node, &old.devices);
        table.gone.insert(node.clone(), old.incarnation);
        let _ = events.send(event(node.clone(), old.devices.into_iter().collect()));
    }
}

/// Drops `node`'s claim to `devices` (another node's later claim stays).
fn forget<'a>(table: &mut Table, node: &NodeId, devices: impl IntoIterator<Item = &'a DeviceKey>) {
    for d in devices {
        if table.holder.get(d) == Some(node) {
            table.holder.remove(d);
        }
    }
}

/// Nodes whose lease ran out are lost, with their devices.
fn expire(shared: &Shared, events: &mpsc::UnboundedSender<PresenceEvent>) {
    let now = Instant::now();
    let mut table = lock(&shared.table);
    let lapsed: Vec<NodeId> = table
        .nodes
        .iter()
        .filter(|(_, s)| s.expires <= now)
        .map(|(n, _)| n.clone())
        .collect();
    for node in lapsed {
        tracing::warn!(node = %node, "node lost: its lease ran out");
        drop_node(&mut table, &node, events, |node, devices| {
            PresenceEvent::Lost { node, devices }
        });
    }
}
