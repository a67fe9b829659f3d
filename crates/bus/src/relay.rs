//! Commands across nodes (issue 16 points 5 and 6): a console's command
//! reaches its devices as one message per gateway, whichever node the
//! console is on, and every device gets an outcome even when a gateway dies
//! with the command.
//!
//! The node that takes the command ([`Relay::send`]) looks up, in
//! [`Presence`], which node holds each device: it delivers to its own
//! devices at once, counts devices no node holds as offline, and sends each
//! other gateway one message ([`Subject::node_commands`]; in parts only when
//! the device list would not fit the bus's largest message) with the
//! command's body and that gateway's devices. The gateway hands the body to
//! each of its connections ([`LocalDevices`]) and answers with a receipt
//! ([`Subject::node_receipts`]) naming the devices it no longer held. The
//! devices' acknowledgements are the gateway's to write, in batches, as on a
//! single server; this module reports only what the sender alone can know,
//! as [`Outcome`]s:
//!
//! - [`Failure::NotConnected`]: the gateway (or this node) no longer held
//!   the device's connection;
//! - [`Failure::NoReceipt`]: no receipt came within
//!   [`RelayConfig::receipt_timeout`] (the message was lost, or the gateway
//!   is stuck);
//! - [`Failure::GatewayLost`]: the gateway's lease ran out, or it left,
//!   while the command was recent ([`RelayConfig::keep`]): for every device
//!   sent there, as an acknowledgement may have died with it.
//!
//! A store applies an outcome only to a target still pending (a device that
//! had answered keeps its answer), so reporting a device twice, or one that
//! answered, changes nothing.
//!
//! Messages are from the cluster's own nodes (the bus is theirs alone), but
//! are still checked: a message that does not parse, a receipt for a
//! command or part this node did not send, or devices a part did not hold,
//! are dropped, and the relay goes on.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::{Bus, BusError, DeviceKey, Filter, Message, NodeId, Presence, PresenceEvent, Subject};

/// Where a gateway's commands go: its own devices' connections.
pub trait LocalDevices: Send + Sync + 'static {
    /// Hands `body` (command `command`) to `device`'s connection if it is on
    /// this node; `false` if it is not (any more).
    fn deliver(&self, device: DeviceKey, command: i64, body: &[u8]) -> bool;
}

/// Why a device's part of a command failed on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The node that presence named no longer held the device's connection.
    NotConnected,
    /// The gateway it was sent to was lost (its lease ran out, or it
    /// restarted) or left while the command was under way.
    GatewayLost,
    /// The gateway it was sent to did not answer in time.
    NoReceipt,
}

impl Failure {
    /// What a console shows as the target's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Failure::NotConnected => "device disconnected before the command could be sent",
            Failure::GatewayLost => "gateway lost",
            Failure::NoReceipt => "gateway did not answer",
        }
    }
}

/// One device's failed part of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The command.
    pub command: i64,
    /// The device.
    pub device: DeviceKey,
    /// Why.
    pub failure: Failure,
}

/// Where [`Relay::send`] sent a command's devices.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Routed {
    /// Held by this node and handed to their connections.
    pub here: Vec<i64>,
    /// Presence said this node held them, but their connections had gone.
    pub not_connected: Vec<i64>,
    /// No node holds them.
    pub offline: Vec<i64>,
    /// Sent on to other gateways: how many devices each.
    pub relayed: Vec<(NodeId, usize)>,
}

/// How long the sender waits and remembers.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How long a gateway has to answer a command's message.
    pub receipt_timeout: Duration,
    /// How long a command's devices are remembered by gateway, to be
    /// failed if that gateway is lost; devices acknowledge within seconds,
    /// and a gateway that closes a connection fails its pending commands
    /// itself.
    pub keep: Duration,
}

impl RelayConfig {
    /// Within reason: a deadline of 10 ms to an hour, kept at least until
    /// the deadline and at most a day (so that `Instant` arithmetic cannot
    /// overflow, and nothing is forgotten before it could fail).
    fn checked(self) -> RelayConfig {
        let receipt_timeout = self
            .receipt_timeout
            .clamp(Duration::from_millis(10), Duration::from_secs(3600));
        RelayConfig {
            receipt_timeout,
            keep: self
                .keep
                .clamp(receipt_timeout, Duration::from_secs(24 * 3600)),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            receipt_timeout: Duration::from_secs(10),
            keep: Duration::from_secs(600),
        }
    }
}

/// The most parts one command's message to one gateway may come in.
const MAX_PARTS: usize = 64;

/// Bytes of a part's header besides its devices and the sender's name,
/// with room to spare.
const HEADER_ROOM: usize = 192;

/// The most bytes one device id takes in a header (`-9223372036854775808,`).
const DEVICE_ROOM: usize = 21;

/// The command number of the probe a node sends itself to know its
/// receipts are heard.
const PROBE: i64 = i64::MIN;

/// A part of a command for one gateway: this header (JSON, after its
/// length as four bytes, little-endian), then the command's body.
#[derive(Serialize, Deserialize)]
struct Header {
    from: String,
    /// Which send of the sender's this part is of (a command may be sent
    /// to one node more than once).
    send: u64,
    school: i64,
    command: i64,
    part: u32,
    /// 0 for the probe a node sends itself.
    parts: u32,
    devices: Vec<i64>,
}

#[derive(Serialize, Deserialize)]
struct Receipt {
    node: String,
    send: u64,
    command: i64,
    part: u32,
    not_here: Vec<i64>,
}

/// A command sent to one gateway, until it is forgotten.
struct Sent {
    command: i64,
    school: i64,
    /// Each part's devices, ascending.
    parts: Vec<Vec<i64>>,
    /// Bit `k`: part `k` answered (or given up on).
    answered: u64,
    deadline: Instant,
    keep_until: Instant,
}

struct Shared {
    me: NodeId,
    bus: Bus,
    local: Arc<dyn LocalDevices>,
    cfg: RelayConfig,
    /// By send number and node.
    sent: Mutex<HashMap<(u64, NodeId), Sent>>,
    /// The last send number given.
    sends: std::sync::atomic::AtomicU64,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// This node's part in relaying commands: it sends commands on to the
/// gateways holding their devices, and hands the commands sent to it to
/// its own devices. Dropping it stops both.
pub struct Relay {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts relaying as `me`, handing commands for this node's devices to
    /// `local`. Returns once this node hears its own commands and receipts
    /// (a probe sent to itself comes back), so a command sent to it from
    /// then on is heard. Failures come on the receiver.
    pub async fn start(
        bus: Bus,
        me: NodeId,
        local: Arc<dyn LocalDevices>,
        cfg: RelayConfig,
    ) -> Result<(Relay, mpsc::UnboundedReceiver<Outcome>), BusError> {
        let commands = bus
            .subscribe(&Filter::exactly(&Subject::node_commands(&me)))
            .await?;
        let receipts = bus
            .subscribe(&Filter::exactly(&Subject::node_receipts(&me)))
            .await?;
        let (outcomes, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            me,
            bus,
            local,
            cfg: cfg.checked(),
            sent: Mutex::new(HashMap::new()),
            sends: std::sync::atomic::AtomicU64::new(0),
            outcomes,
        });
        let (ready_tx, mut ready_rx) = oneshot::channel();
        let task = tokio::spawn(run(shared.clone(), commands, receipts, ready_tx));
        let relay = Relay { shared, task };
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            relay.probe().await?;
            match tokio::time::timeout(Duration::from_millis(250), &mut ready_rx).await {
                Ok(Ok(())) => return Ok((relay, rx)),
                Ok(Err(_)) => return Err(BusError::Nats("the bus closed".into())),
                Err(_) if Instant::now() >= give_up => {
                    return Err(BusError::Nats(
                        "this node's own commands are not heard back".into(),
                    ))
                }
                Err(_) => {}
            }
        }
    }

    /// Sends itself a command part and a receipt that do nothing.
    async fn probe(&self) -> Result<(), BusError> {
        let me = &self.shared.me;
        let header = Header {
            from: me.to_string(),
            send: 0,
            school: 0,
            command: PROBE,
            part: 0,
            parts: 0,
            devices: Vec::new(),
        };
        let bus = &self.shared.bus;
        bus.publish(&Subject::node_commands(me), frame(&header, b""))
            .await?;
        let receipt = Receipt {
            node: me.to_string(),
            send: 0,
            command: PROBE,
            part: 0,
            not_here: Vec::new(),
        };
        bus.publish(&Subject::node_receipts(me), encode(&receipt))
            .await
    }

    /// Sends `body` (the message each device gets for command `command` of
    /// `school`) to `devices`: handed over here to the ones this node holds,
    /// and sent as one message per other node to the ones others hold (see
    /// the module's documentation). Refused, with nothing sent, when the
    /// body leaves no room for devices in a message, or one node's devices
    /// would take more than 64 messages.
    pub async fn send(
        &self,
        presence: &Presence,
        school: i64,
        command: i64,
        body: &[u8],
        devices: &[i64],
    ) -> Result<Routed, BusError> {
        let per_part = self.per_part(body.len())?;
        let mut routed = Routed::default();
        let mut by_node: BTreeMap<NodeId, Vec<i64>> = BTreeMap::new();
        let mut devices = devices.to_vec();
        devices.sort_unstable();
        devices.dedup();
        for device in devices {
            match presence.holder(DeviceKey { school, device }) {
                None => routed.offline.push(device),
                Some(node) => by_node.entry(node).or_default().push(device),
            }
        }
        if let Some(list) = by_node
            .values()
            .find(|l| l.len().div_ceil(per_part) > MAX_PARTS)
        {
            return Err(BusError::TooLarge {
                size: list.len() * DEVICE_ROOM + body.len(),
                max: MAX_PARTS * self.shared.bus.max_payload(),
            });
        }
        if let Some(mine) = by_node.remove(&self.shared.me) {
            for device in mine {
                if self
                    .shared
                    .local
                    .deliver(DeviceKey { school, device }, command, body)
                {
                    routed.here.push(device);
                } else {
                    routed.not_connected.push(device);
                }
            }
        }
        for (node, list) in by_node {
            routed.relayed.push((node.clone(), list.len()));
            self.send_to(&node, school, command, body, list, per_part)
                .await;
        }
        Ok(routed)
    }

    /// How many devices fit one message beside `body`.
    fn per_part(&self, body: usize) -> Result<usize, BusError> {
        let max = self.shared.bus.max_payload();
        let room = max.saturating_sub(4 + HEADER_ROOM + self.shared.me.as_str().len() + body);
        match room / DEVICE_ROOM {
            0 => Err(BusError::TooLarge {
                size: body + 4 + HEADER_ROOM + DEVICE_ROOM,
                max,
            }),
            n => Ok(n),
        }
    }

    /// Sends one node its devices' parts, remembered first so that a quick
    /// receipt finds them. A part the bus refuses gets no receipt, and so
    /// its devices fail at the deadline.
    async fn send_to(
        &self,
        node: &NodeId,
        school: i64,
        command: i64,
        body: &[u8],
        devices: Vec<i64>,
        per_part: usize,
    ) {
        let parts: Vec<Vec<i64>> = devices.chunks(per_part).map(<[i64]>::to_vec).collect();
        let send = 1 + self
            .shared
            .sends
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Instant::now();
        let frames: Vec<Vec<u8>> = parts
            .iter()
            .enumerate()
            .map(|(k, devices)| {
                let header = Header {
                    from: self.shared.me.to_string(),
                    send,
                    school,
                    command,
                    part: k as u32,
                    parts: parts.len() as u32,
                    devices: devices.clone(),
                };
                frame(&header, body)
            })
            .collect();
        let cfg = &self.shared.cfg;
        lock(&self.shared.sent).insert(
            (send, node.clone()),
            Sent {
                command,
                school,
                parts,
                answered: 0,
                deadline: now + cfg.receipt_timeout,
                keep_until: now + cfg.keep,
            },
        );
        let subject = Subject::node_commands(node);
        for f in frames {
            if let Err(e) = self.shared.bus.publish(&subject, f).await {
                tracing::warn!(node = %node, command, "cannot relay a command: {e}");
            }
        }
    }

    /// What a presence event means for commands under way: a node lost or
    /// gone takes its devices' outcomes with it.
    pub fn presence_event(&self, event: &PresenceEvent) {
        match event {
            PresenceEvent::Lost { node, .. } | PresenceEvent::Left { node, .. } => {
                self.node_gone(node)
            }
            PresenceEvent::Joined(_) => {}
        }
    }

    /// Fails every device sent to `node` by a command still remembered.
    pub fn node_gone(&self, node: &NodeId) {
        let outcomes = &self.shared.outcomes;
        lock(&self.shared.sent).retain(|(_, n), s| {
            if n != node {
                return true;
            }
            for &device in s.parts.iter().flatten() {
                let _ = outcomes.send(Outcome {
                    command: s.command,
                    device: DeviceKey {
                        school: s.school,
                        device,
                    },
                    failure: Failure::GatewayLost,
                });
            }
            false
        });
    }

    /// Commands remembered (sent to a node, not yet forgotten), for metrics.
    pub fn remembered(&self) -> usize {
        lock(&self.shared.sent).len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn encode(receipt: &Receipt) -> Vec<u8> {
    serde_json::to_vec(receipt).expect("a receipt always serializes")
}

fn frame(header: &Header, body: &[u8]) -> Vec<u8> {
    let head = serde_json::to_vec(header).expect("a header always serializes");
    let mut out = Vec::with_capacity(4 + head.len() + body.len());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    out
}

fn unframe(payload: &[u8]) -> Option<(Header, &[u8])> {
    let len = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    let header = serde_json::from_slice(payload.get(4..end)?).ok()?;
    Some((header, &payload[end..]))
}

/// Whether this node has heard its own probes yet.
struct Ready {
    commands: bool,
    receipts: bool,
    tell: Option<oneshot::Sender<()>>,
}

impl Ready {
    fn check(&mut self) {
        if self.commands && self.receipts {
            if let Some(tell) = self.tell.take() {
                let _ = tell.send(());
            }
        }
    }
}

/// The relay's task: one small function per event.
async fn run(
    shared: Arc<Shared>,
    mut commands: crate::Subscription,
    mut receipts: crate::Subscription,
    tell: oneshot::Sender<()>,
) {
    let mut ready = Ready {
        commands: false,
        receipts: false,
        tell: Some(tell),
    };
    let period =
        (shared.cfg.receipt_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            m = commands.next() => match m {
                Some(m) => on_command(&shared, &m, &mut ready).await,
                None => return,
            },
            m = receipts.next() => match m {
                Some(m) => on_receipt(&shared, &m, &mut ready),
                None => return,
            },
            _ = tick.tick() => on_tick(&shared),
        }
    }
}

/// A part of a command for this node's devices: handed to each, and
/// answered with the ones not here.
async fn on_command(shared: &Shared, m: &Message, ready: &mut Ready) {
    let Some((h, body)) = unframe(&m.payload) else {
        tracing::warn!(subject = %m.subject, "a relayed command that does not parse");
        return;
    };
    let Ok(from) = NodeId::new(&h.from) else {
        tracing::warn!(subject = %m.subject, "a relayed command from no node");
        return;
    };
    if h.parts == 0 {
        if from == shared.me && h.command == PROBE {
            ready.commands = true;
            ready.check();
        }
        return;
    }
    if h.part >= h.parts || h.parts as usize > MAX_PARTS {
        tracing::warn!(subject = %m.subject, from = %from, "a relayed command out of place");
        return;
    }
    let not_here = h
        .devices
        .iter()
        .copied()
        .filter(|&device| {
            !shared.local.deliver(
                DeviceKey {
                    school: h.school,
                    device,
                },
                h.command,
                body,
            )
        })
        .collect();
    let receipt = Receipt {
        node: shared.me.to_string(),
        send: h.send,
        command: h.command,
        part: h.part,
        not_here,
    };
    if let Err(e) = shared
        .bus
        .publish(&Subject::node_receipts(&from), encode(&receipt))
        .await
    {
        // The sender gives up on the part at its deadline.
        tracing::warn!(to = %from, command = h.command, "cannot send a receipt: {e}");
    }
}

/// A gateway's receipt for a part this node sent: the devices it did not
/// hold fail (only those the part held).
fn on_receipt(shared: &Shared, m: &Message, ready: &mut Ready) {
    let Ok(r) = serde_json::from_slice::<Receipt>(&m.payload) else {
        tracing::warn!(subject = %m.subject, "a receipt that does not parse");
        return;
    };
    let Ok(node) = NodeId::new(&r.node) else {
        return;
    };
    if r.command == PROBE {
        if node == shared.me {
            ready.receipts = true;
            ready.check();
        }
        return;
    }
    let mut sent = lock(&shared.sent);
    let Some(s) = sent.get_mut(&(r.send, node)) else {
        // Forgotten, given up on, or never sent.
        return;
    };
    if s.command != r.command {
        return;
    }
    let k = r.part as usize;
    if k >= s.parts.len() || s.answered >> k & 1 == 1 {
        return;
    }
    s.answered |= 1 << k;
    let part = &mut s.parts[k];
    for device in r.not_here {
        if let Ok(at) = part.binary_search(&device) {
            part.remove(at);
            let _ = shared.outcomes.send(Outcome {
                command: s.command,
                device: DeviceKey {
                    school: s.school,
                    device,
                },
                failure: Failure::NotConnected,
            });
        }
    }
}

/// Parts unanswered past their deadline fail; commands past `keep` are
/// forgotten.
fn on_tick(shared: &Shared) {
    let now = Instant::now();
    let outcomes = &shared.outcomes;
    lock(&shared.sent).retain(|_, s| {
        if s.deadline <= now {
            for (k, part) in s.parts.iter_mut().enumerate() {
                if s.answered >> k & 1 == 1 {
                    continue;
                }
                for device in part.drain(..) {
                    let _ = outcomes.send(Outcome {
                        command: s.command,
                        device: DeviceKey {
                            school: s.school,
                            device,
                        },
                        failure: Failure::NoReceipt,
                    });
                }
                s.answered |= 1 << k;
            }
        }
        s.keep_until > now
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_apart_as_they_were_put_together() {
        let h = Header {
            from: "gw-1".into(),
            send: 9,
            school: 3,
            command: 42,
            part: 1,
            parts: 2,
            devices: vec![i64::MIN, -1, 7],
        };
        let f = frame(&h, b"{\"lock\":true}");
        let (back, body) = unframe(&f).unwrap();
        assert_eq!(
            (back.command, back.devices, body),
            (42, h.devices, &b"{\"lock\":true}"[..])
        );
        // Cut short, or a length past the end: nothing.
        assert!(unframe(&f[..3]).is_none());
        assert!(unframe(&f[..10]).is_none());
        let mut long = f.clone();
        long[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unframe(&long).is_none());
    }

    #[test]
    fn the_widest_header_fits_its_room() {
        let h = Header {
            from: "x".repeat(64),
            send: u64::MAX,
            school: i64::MIN,
            command: i64::MIN,
            part: u32::MAX,
            parts: u32::MAX,
            devices: vec![i64::MIN; 100],
        };
        let len = serde_json::to_vec(&h).unwrap().len();
        assert!(len <= HEADER_ROOM + 64 + 100 * DEVICE_ROOM, "{len}");
    }
}
