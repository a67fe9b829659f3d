//! Power (issue 13.6), the server's side: Wake-on-LAN and scheduled
//! power actions of a computer group.
//!
//! **Wake-on-LAN.** MACs and addresses come from each device's stored
//! inventory (what its own authenticated session reported). For each
//! IPv4 subnet the sleeping device reported, the server sends the magic
//! packets itself when one of its own interfaces is on that subnet;
//! otherwise it asks an online agent that reported an address on that
//! subnet (the lowest device id, so the choice is stable) to send them to
//! the subnet's broadcast address ([`ServerMsg::WakeOnLan`]; the agent sends
//! only to a broadcast address of its own subnets); with neither, the server
//! sends a directed broadcast, which routers often drop, and says so.
//! `[power] wake_target` sends the server's own packets elsewhere (tests).
//!
//! **Schedules.** A timer checks each minute (server local time) which
//! schedules are due, claims each for the day in the store (so it runs once
//! a day even across restarts) and sends the power command to the group's
//! online devices as a command record with per-device results, audited
//! under the actor `schedule:<id>`.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

use lectern_proto::inventory::Inventory;
use lectern_proto::power::{broadcast_of, magic_packet, parse_mac, PowerAction, MAX_WAKE_MACS};
use lectern_proto::{Command, ServerMsg};
use lectern_store::{now_ms, PowerSchedule, SchoolId, TargetStatus};
use serde::{Deserialize, Serialize};

use crate::state::Shared;

/// `[power]` in `server.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerConfig {
    /// UDP port of Wake-on-LAN packets (9, "discard").
    pub wake_port: u16,
    /// Send the server's own packets here instead of the subnet's
    /// broadcast address (tests; a relay on another network).
    pub wake_target: Option<SocketAddr>,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig {
            wake_port: 9,
            wake_target: None,
        }
    }
}

/// How one device's wake went.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WakeResult {
    /// Device.
    pub device_id: i64,
    /// `sent` or `failed`.
    pub status: &'static str,
    /// Who sent it: `server`, `server (directed broadcast)` or the relay's
    /// host name.
    pub via: Option<String>,
    /// Why it failed, or a caveat.
    pub reason: Option<String>,
}

/// A device's MACs and IPv4 subnets from its report.
fn wake_facts(inv: &Inventory) -> (Vec<String>, Vec<(Ipv4Addr, u8)>) {
    let macs = inv
        .network
        .iter()
        .filter(|i| parse_mac(&i.mac).is_some())
        .map(|i| i.mac.clone())
        .take(MAX_WAKE_MACS)
        .collect();
    let nets = inv
        .network
        .iter()
        .flat_map(|i| i.addresses.iter())
        .filter_map(|a| subnet(a))
        .collect();
    (macs, nets)
}

/// `(broadcast, prefix)` of an IPv4 `address/prefix`.
fn subnet(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let prefix: u8 = cidr.split_once('/')?.1.parse().ok()?;
    Some((broadcast_of(cidr)?, prefix))
}

/// Whether one of the server's own interfaces is on the subnet.
fn server_on(net: (Ipv4Addr, u8)) -> bool {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) => Some(format!("{}/{}", a.ip, a.prefixlen)),
            if_addrs::IfAddr::V6(_) => None,
        })
        .any(|a| subnet(&a) == Some(net))
}

/// Sends the magic packets for `macs` to `to` from the server.
fn send_from_server(macs: &[String], to: SocketAddr) -> Result<(), String> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_broadcast(true).map_err(|e| e.to_string())?;
    for m in macs.iter().filter_map(|m| parse_mac(m)) {
        sock.send_to(&magic_packet(m), to)
            .map_err(|e| format!("cannot send to {to}: {e}"))?;
    }
    Ok(())
}

/// Wakes `ids` (the caller checked control access); one result each.
pub async fn wake(st: &Shared, school: SchoolId, ids: &BTreeSet<i64>) -> Vec<WakeResult> {
    let rows = st
        .db(move |s| s.inventories(school))
        .await
        .unwrap_or_default();
    let reports: HashMap<i64, Inventory> = rows
        .into_iter()
        .filter_map(|r| Some((r.device_id, serde_json::from_str(&r.report).ok()?)))
        .collect();
    let online = st.hub.online();
    let cfg = st.config.power.clone();
    ids.iter()
        .map(|&id| wake_one(st, &cfg, id, &reports, &online))
        .collect()
}

fn wake_one(
    st: &Shared,
    cfg: &PowerConfig,
    id: i64,
    reports: &HashMap<i64, Inventory>,
    online: &HashMap<i64, crate::hub::DeviceView>,
) -> WakeResult {
    let failed = |reason: String| WakeResult {
        device_id: id,
        status: "failed",
        via: None,
        reason: Some(reason),
    };
    let Some(inv) = reports.get(&id) else {
        return failed("no inventory yet, so no MAC address is known".into());
    };
    let (macs, nets) = wake_facts(inv);
    if macs.is_empty() {
        return failed("its inventory has no MAC address".into());
    }
    let Some(&net) = nets.first() else {
        return failed("its inventory has no IPv4 address, so its subnet is unknown".into());
    };
    let to = |b: Ipv4Addr| {
        cfg.wake_target
            .unwrap_or(SocketAddr::from((b, cfg.wake_port)))
    };
    if server_on(net) || cfg.wake_target.is_some() && relay(id, net, reports, online).is_none() {
        return match send_from_server(&macs, to(net.0)) {
            Ok(()) => sent(id, "server", None),
            Err(e) => failed(e),
        };
    }
    if let Some(relay) = relay(id, net, reports, online) {
        let target = SocketAddr::from((net.0, cfg.wake_port)).to_string();
        let msg = ServerMsg::WakeOnLan { macs, target };
        let name = online
            .get(&relay)
            .map_or(String::new(), |v| v.hostname.clone());
        return if st.hub.send(relay, msg) {
            sent(id, &name, None)
        } else {
            failed(format!("{name} went offline"))
        };
    }
    match send_from_server(&macs, to(net.0)) {
        Ok(()) => sent(
            id,
            "server (directed broadcast)",
            Some("no agent is online on its subnet; routers often drop directed broadcasts".into()),
        ),
        Err(e) => failed(e),
    }
}

fn sent(id: i64, via: &str, reason: Option<String>) -> WakeResult {
    WakeResult {
        device_id: id,
        status: "sent",
        via: Some(via.to_string()),
        reason,
    }
}

/// The online device (not `id`) with the lowest id that reported an
/// address on `net`.
fn relay(
    id: i64,
    net: (Ipv4Addr, u8),
    reports: &HashMap<i64, Inventory>,
    online: &HashMap<i64, crate::hub::DeviceView>,
) -> Option<i64> {
    let mut candidates: Vec<i64> = reports
        .iter()
        .filter(|(d, _)| **d != id && online.contains_key(d))
        .filter(|(_, inv)| wake_facts(inv).1.contains(&net))
        .map(|(d, _)| *d)
        .collect();
    candidates.sort_unstable();
    candidates.first().copied()
}

/// Checks a schedule from the API.
pub fn check_schedule(s: &PowerSchedule) -> Result<(), String> {
    if PowerAction::parse(&s.action).is_none() {
        return Err("action must be shutdown, restart or logoff".into());
    }
    if s.minute_of_day >= 24 * 60 {
        return Err("the time of day must be 00:00 to 23:59".into());
    }
    if s.days == 0 || s.days > 0x7f {
        return Err("choose at least one day of the week".into());
    }
    if s.countdown_secs > lectern_proto::power::MAX_COUNTDOWN_SECS {
        return Err(format!(
            "the countdown must be 0 to {} seconds",
            lectern_proto::power::MAX_COUNTDOWN_SECS
        ));
    }
    Ok(())
}

/// Runs due schedules each minute, for ever.
pub async fn schedule_timer(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let now = chrono::Local::now().naive_local();
        match st.db(|s| s.schools()).await {
            Ok(schools) => {
                for school in schools {
                    run_due(&st, school.id, now).await;
                }
            }
            Err(e) => tracing::error!("power schedules: cannot list the schools: {}", e.message),
        }
        // Wake at the start of the next minute.
        let secs = 60 - u64::from(chrono::Timelike::second(&chrono::Local::now()));
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(secs.max(1))) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs the schedules due at `now` (their minute has come today and they
/// have not run today).
pub async fn run_due(st: &Shared, school: SchoolId, now: chrono::NaiveDateTime) {
    use chrono::{Datelike, Timelike};
    let Ok(schedules) = st.db(move |s| s.power_schedules(school)).await else {
        return;
    };
    let minute = now.hour() * 60 + now.minute();
    let day_bit = 1u8 << now.weekday().num_days_from_monday();
    let day = now.format("%Y-%m-%d").to_string();
    for s in schedules {
        if s.days & day_bit == 0 || minute < s.minute_of_day || minute > s.minute_of_day + 5 {
            continue;
        }
        let (id, d) = (s.id, day.clone());
        if !st
            .db(move |db| db.claim_power_schedule(school, id, &d))
            .await
            .unwrap_or(false)
        {
            continue;
        }
        run_schedule(st, school, &s).await;
    }
}

/// Sends a schedule's power command to its group's devices, recorded and
/// audited like a teacher's command.
pub async fn run_schedule(st: &Shared, school: SchoolId, s: &PowerSchedule) {
    let Some(action) = PowerAction::parse(&s.action) else {
        return;
    };
    let command = Command::Power {
        action,
        countdown_secs: s.countdown_secs,
    };
    let devices = st
        .db(move |db| db.list_devices(school))
        .await
        .unwrap_or_default();
    let online = st.hub.online_ids();
    let targets: Vec<(i64, TargetStatus)> = devices
        .iter()
        .filter(|d| d.revoked_at.is_none())
        .filter(|d| {
            let user = st
                .hub
                .subjects(school, Some(d.id))
                .pop()
                .and_then(|(_, _, u)| u);
            st.device_groups(school, d.id, &d.hostname, user.as_deref())
                .contains(&s.group_id)
        })
        .map(|d| {
            let status = if online.contains(&d.id) {
                TargetStatus::Pending
            } else {
                TargetStatus::Offline
            };
            (d.id, status)
        })
        .collect();
    let actor = format!("schedule:{}", s.id);
    let body = serde_json::to_string(&command).unwrap_or_default();
    let (a, b, t) = (actor.clone(), body.clone(), targets.clone());
    let rec = match st.db(move |db| db.create_command(school, &a, &b, &t)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(
                schedule = s.id,
                "cannot record the scheduled command: {}",
                e.message
            );
            return;
        }
    };
    let mut sent = 0;
    for (device, status) in &targets {
        if *status != TargetStatus::Pending {
            continue;
        }
        let msg = ServerMsg::Command {
            command_id: rec.id as u64,
            command: command.clone(),
        };
        if st.hub.send_command(*device, rec.id, msg) {
            sent += 1;
        }
    }
    let mut entry = st.audit_entry(
        school,
        &actor,
        None,
        &format!("command.{}", command.kind()),
        "",
    );
    entry.devices = targets.iter().map(|(d, _)| *d).collect();
    entry.detail = body;
    entry.command_id = Some(rec.id);
    entry.outcome = format!(
        "scheduled {} of group {}: sent to {sent}, offline or failed {}",
        s.action,
        s.group_id,
        targets.len() - sent
    );
    st.audit(entry).await;
    tracing::info!(
        schedule = s.id,
        sent,
        at = now_ms(),
        "scheduled power action run"
    );
}
