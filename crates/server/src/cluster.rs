//! This node's part in a cluster's bus (issue 16 points 5–6), when
//! `[cluster]` names NATS servers: it says which devices it holds (presence,
//! under a lease), knows which node holds the others, sends commands for
//! devices held elsewhere on to their gateways (one message per gateway),
//! hands the commands other nodes send it to its own devices, and fails
//! rather than leaves pending what a lost gateway was carrying.
//!
//! What must not be lost goes to the shared store, never only over the bus:
//! a device's outcome is written by the node it is connected to, so the
//! node a console is on reads it there.

use std::sync::{Arc, Weak};
use std::time::Duration;

use lectern_bus::{
    Bus, DeviceKey, Filter, LocalDevices, NatsConfig, NodeId, Outcome, Presence, PresenceEvent,
    Relay, RelayConfig, Routed, Subject, Subscription,
};
use lectern_proto::ServerMsg;
use lectern_store::{now_ms, SchoolId, TargetStatus, TargetUpdate};
use tokio::sync::mpsc;

use crate::engine::ClusterConfig;
use crate::state::AppState;

/// The node on the bus: its presence and its command relay.
pub struct Cluster {
    me: NodeId,
    bus: Bus,
    presence: Presence,
    relay: Relay,
}

impl Cluster {
    /// Joins the bus `cfg` names as this node and starts relaying for
    /// `state`'s hub. Returns once this node hears its own messages, so a
    /// command sent to it from then on is heard.
    pub async fn start(cfg: &ClusterConfig, state: Weak<AppState>) -> anyhow::Result<Arc<Cluster>> {
        let me = node_name(cfg)?;
        let bus = Bus::connect(&NatsConfig {
            servers: cfg.nats.clone(),
            user: cfg.nats_user.clone().zip(cfg.nats_password.clone()),
            ca_file: None,
            name: Some(me.to_string()),
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the cluster's NATS servers: {e}"))?;
        let lease = Duration::from_secs(cfg.lease_secs);
        let (presence, events) = Presence::start(bus.clone(), me.clone(), lease).await?;
        let local = Arc::new(HubDevices(state.clone()));
        let config = RelayConfig {
            keep: lease * 4,
            ..RelayConfig::default()
        };
        let (relay, outcomes) = Relay::start(bus.clone(), me.clone(), local, config).await?;
        let changes = bus.subscribe(&Filter::all_school_policy()).await?;
        let cluster = Arc::new(Cluster {
            me: me.clone(),
            bus,
            presence,
            relay,
        });
        tokio::spawn(follow(
            Arc::downgrade(&cluster),
            events,
            outcomes,
            state.clone(),
        ));
        tokio::spawn(school_changes(changes, me, state));
        tracing::info!(node = %cluster.me, "joined the cluster's bus");
        Ok(cluster)
    }

    /// This node's name on the bus.
    pub fn node(&self) -> &NodeId {
        &self.me
    }

    /// A device's connection came to this node.
    pub fn hold(&self, school: SchoolId, device: i64) {
        self.presence.hold(DeviceKey { school, device });
    }

    /// A device's connection to this node ended.
    pub fn release(&self, school: SchoolId, device: i64) {
        self.presence.release(DeviceKey { school, device });
    }

    /// Whether some node (this one included) holds the device's connection.
    pub fn is_online(&self, school: SchoolId, device: i64) -> bool {
        self.presence.holder(DeviceKey { school, device }).is_some()
    }

    /// Sends `msg` (command `command` of `school`) to `devices` held by any
    /// node: one message per other gateway; this node's own are handed to
    /// their connections here.
    pub async fn send(
        &self,
        school: SchoolId,
        command: i64,
        msg: &ServerMsg,
        devices: &[i64],
    ) -> anyhow::Result<Routed> {
        let body = serde_json::to_vec(msg)?;
        Ok(self
            .relay
            .send(&self.presence, school, command, &body, devices)
            .await?)
    }

    /// Says goodbye, so the others fail this node's commands at once
    /// rather than after the lease.
    pub async fn leave(&self) {
        if let Err(e) = self.presence.leave().await {
            tracing::warn!("leaving the cluster: {e}");
        }
    }
}

/// Tells the cluster's other nodes that `school`'s settings, groups or
/// keyword libraries changed, so that they read the school again and push
/// its devices' new policies; nothing on a single server. The message
/// names this node, which ignores its own.
pub async fn announce(st: &AppState, school: SchoolId) {
    let Some(c) = st.cluster.get() else {
        return;
    };
    let subject = Subject::school_policy(school);
    if let Err(e) = c
        .bus
        .publish(&subject, c.me.as_str().as_bytes().to_vec())
        .await
    {
        tracing::error!(school, "telling the other nodes of a change: {e}");
    }
}

/// Changes other nodes announce: the school read again here, and its
/// devices here sent their new policies and keyword lists.
async fn school_changes(mut changes: Subscription, me: NodeId, state: Weak<AppState>) {
    while let Some(m) = changes.next().await {
        if m.payload.as_ref() == me.as_str().as_bytes() {
            continue;
        }
        let Some(school) = Subject::policy_school(&m.subject) else {
            tracing::warn!(subject = %m.subject, "a school change under a strange subject");
            continue;
        };
        let Some(st) = state.upgrade() else { return };
        if let Err(e) = refresh(&st, school).await {
            tracing::error!(school, "reading a school changed on another node: {e}");
        }
    }
}

async fn refresh(st: &Arc<AppState>, school: SchoolId) -> Result<(), String> {
    close_revoked(st, school).await?;
    crate::settings::reload(st, school)
        .await
        .map_err(|e| e.message)?;
    crate::keywords::reload(st, school).await?;
    crate::keywords::push_to_agents(st, school);
    st.reload_policies_here(school).await.map_err(|e| e.message)
}

/// Closes the connections held here of the school's devices that were
/// revoked or deleted (on another node, which could not close them).
async fn close_revoked(st: &Arc<AppState>, school: SchoolId) -> Result<(), String> {
    let here: Vec<i64> = st
        .hub
        .subjects(school, None)
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    if here.is_empty() {
        return Ok(());
    }
    let live: std::collections::HashSet<i64> = st
        .db(move |s| s.list_devices(school))
        .await
        .map_err(|e| e.message)?
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| d.id)
        .collect();
    for id in here.into_iter().filter(|id| !live.contains(id)) {
        crate::api::devadmin::disconnect(st, id, "device revoked");
    }
    Ok(())
}

/// The node's name: configured, or the host name made fit for a subject.
fn node_name(cfg: &ClusterConfig) -> anyhow::Result<NodeId> {
    let name = match &cfg.node {
        Some(n) => n.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_else(|_| "node".into())
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect(),
    };
    NodeId::new(&name).map_err(|e| anyhow::anyhow!("[cluster] node {name:?}: {e}"))
}

/// Presence events (a lost or departed node fails what it was carrying)
/// and the relay's failures (written as the targets' outcomes).
async fn follow(
    cluster: Weak<Cluster>,
    mut events: mpsc::UnboundedReceiver<PresenceEvent>,
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    state: Weak<AppState>,
) {
    loop {
        tokio::select! {
            Some(e) = events.recv() => {
                let Some(c) = cluster.upgrade() else { return };
                presence_event(&c, &e);
            }
            Some(o) = outcomes.recv() => {
                let Some(st) = state.upgrade() else { return };
                failed(&st, o);
            }
            else => return,
        }
    }
}

fn presence_event(c: &Cluster, e: &PresenceEvent) {
    match e {
        PresenceEvent::Lost { node, devices } => {
            tracing::warn!(%node, devices = devices.len(), "a node was lost")
        }
        PresenceEvent::Left { node, devices } => {
            tracing::info!(%node, devices = devices.len(), "a node left")
        }
        PresenceEvent::Joined(node) => tracing::info!(%node, "a node joined"),
    }
    c.relay.presence_event(e);
}

fn failed(st: &AppState, o: Outcome) {
    let _ = st.results.send(TargetUpdate {
        command_id: o.command,
        device_id: o.device.device,
        status: TargetStatus::Failed,
        reason: Some(o.failure.reason().into()),
        at: now_ms(),
    });
}

/// Commands other nodes send this one, handed to the hub's connections.
struct HubDevices(Weak<AppState>);

impl LocalDevices for HubDevices {
    fn deliver(&self, device: DeviceKey, command: i64, body: &[u8]) -> bool {
        let Some(st) = self.0.upgrade() else {
            return false;
        };
        // Only to the school the sender named: ids are per school.
        if st.hub.subject(device.device).map(|(s, ..)| s) != Some(device.school) {
            return false;
        }
        match serde_json::from_slice::<ServerMsg>(body) {
            Ok(ServerMsg::Command {
                command_id,
                command: c,
            }) => {
                // Checked here, where the device's capabilities are known:
                // no "done" from a device that cannot.
                if let Some(reason) = crate::api::commands::lacks_capability(&st, device.device, &c)
                {
                    let _ = st.results.send(TargetUpdate {
                        command_id: command,
                        device_id: device.device,
                        status: TargetStatus::Failed,
                        reason: Some(reason),
                        at: now_ms(),
                    });
                    return true;
                }
                let msg = ServerMsg::Command {
                    command_id,
                    command: c,
                };
                st.hub.send_command(device.device, command, msg)
            }
            Ok(_) | Err(_) => {
                tracing::warn!(command, "a relayed command that is not one was dropped");
                false
            }
        }
    }
}
